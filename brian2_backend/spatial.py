"""Brian2's ``SpatialNeuron`` -> a :class:`~gpuspike.bridge.ir.CableIR` on its group.

A SpatialNeuron is a NeuronGroup with one element per compartment: its ordinary state
updater (gating variables; ``v`` is a parameter there) becomes the group's update as for
any group. Its ``SpatialStateUpdater`` (template ``spatialstateupdate``, after the state
updater in the ``groups`` slot) evaluates ``_gtot = gtot__private`` and
``_I0 = I0__private`` (Brian2 has already split the membrane current ``Im`` into
``I0 - gtot v`` symbolically, point currents included) and then solves the cable
equation on the morphology. Here that becomes a CableIR: the two statements, translated
as any abstract code, plus the morphology read once from Brian2's arrays (``area``,
``r_length_1/2``, ``Ri``, the flattened sections); the engine precomputes the matrix
coefficients from them. ``Cm`` stays a variable of the group (read every step; Brian2
lets it differ per compartment), and ``Ic`` receives the capacitive current.

Ri, the areas and the half-compartment terms are fixed before the first run in Brian2;
they are part of the IR, so changing them anyway rebuilds the simulation.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import sympy
from gpuspike.bridge import ir
from gpuspike.bridge.errors import UnsupportedFeature

from .names import ir_name
from .neurons import GroupDraft
from .translate import LOCAL_PREFIX, Context, runner_block


def spatial_cable(o: Any, g: GroupDraft, ctx: Context, every: int, order: int
                  ) -> ir.CableIR:
    """The CableIR of the SpatialStateUpdater ``o`` of the SpatialNeuron ``g.brian``."""
    neuron = g.brian
    what = f"SpatialStateUpdater {o.name!r}"
    tr, code = runner_block(o, ctx)
    stmts = tuple(tr.statements(code))
    defined = {st.target for st in stmts if isinstance(st, ir.Assign)}
    gtot, i0 = LOCAL_PREFIX + "_gtot", LOCAL_PREFIX + "_I0"
    if not {gtot, i0} <= defined:
        raise UnsupportedFeature(f"{what}: its code does not define _gtot and _I0 "
                                 f"({code.strip()!r})")
    morph = neuron.flat_morphology
    variables = neuron.variables

    def values(name: str) -> np.ndarray:
        return np.array(variables[name].get_value(), dtype=np.float64)

    starts = np.asarray(morph.starts, dtype=np.int64)
    ends = np.asarray(morph.ends, dtype=np.int64)
    parent = np.asarray(morph.morph_parent_i, dtype=np.int64) - 1  # Brian2 counts from 1
    return ir.CableIR(
        ir_name(o.name), g.name, sympy.Symbol(gtot), sympy.Symbol(i0),
        area=values("area"), r_length_1=values("r_length_1"),
        r_length_2=values("r_length_2"), Ri=float(values("Ri")[0]),
        starts=starts, ends=ends, parent=parent, current=stmts, v="v", capacitance="Cm",
        capacitive_current="Ic", every=every, order=order)
