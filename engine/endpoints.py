"""Synapse groups as the pre- or post-synaptic side of other synapse groups.

Brian2 lets Synapses act on Synapses (``Synapses(modulator, conn, on_pre='w_post += 1')``,
summed variables into synapse variables). The elements of such a side are the target
synapse group's synapses in their user order (Brian2's synapse index ``k``): that is how
the connectivity on top of it is built (``N_post`` = its number of synapses) and what
``j`` means there. The target stores its variables at padded slots
(:mod:`.connectivity`), so the side reaches them through the target's slot map
``<S>__gs_slot[k]`` (the padded slot of synapse ``k``, int32, filled by the runtime):
``x_post`` is ``<S>__x[<S>__gs_slot[j]]`` and ``x_post += e`` an atomic add at that slot.
``i_post`` / ``j_post`` (the target's own pre/post indices of synapse ``k``) are read
from ``<S>__gs_i`` / ``<S>__gs_j``.

A synapse group emits no events, so no pathway starts on one (as in Brian2). Synapse
groups are connected in dependency order (:func:`build_order`): the size of a group must
be known before a group on top of it is built.
"""

from __future__ import annotations

from collections.abc import Mapping

import sympy
from gpuspike.bridge import ir
from gpuspike.bridge.errors import ModelError

from . import kernel_ir as k

#: Per-synapse arrays of a synapse group used as a side: padded slot, pre and post index.
SLOT, PRE_INDEX, POST_INDEX = "gs_slot", "gs_i", "gs_j"


def slot_local(side: str) -> str:
    """The kernel local that holds the padded slot of the ``side`` element."""
    return f"{SLOT}_{side}"


def used_as_endpoint(net: ir.NetworkIR) -> tuple[str, ...]:
    """Names of the synapse groups that are the pre or post side of another one."""
    names = {s.name for s in net.synapses}
    return tuple(sorted({x for s in net.synapses for x in (s.pre, s.post) if x in names}))


def build_order(net: ir.NetworkIR) -> tuple[ir.SynapseGroupIR, ...]:
    """The synapse groups, each after the synapse groups it connects (stable otherwise)."""
    by_name = {s.name: s for s in net.synapses}
    done: dict[str, ir.SynapseGroupIR] = {}
    visiting: list[str] = []

    def visit(s: ir.SynapseGroupIR) -> None:
        if s.name in done:
            return
        if s.name in visiting:
            cycle = " -> ".join([*visiting[visiting.index(s.name) :], s.name])
            raise ModelError(
                f"synapse groups connect each other in a cycle ({cycle}); the "
                "synapses of one must exist before another connects them"
            )
        visiting.append(s.name)
        for side in (s.pre, s.post):
            if side in by_name:
                visit(by_name[side])
        visiting.pop()
        done[s.name] = s

    for s in net.synapses:
        visit(s)
    return tuple(done.values())


def endpoint_size(net: ir.NetworkIR, name: str, n_synapses: Mapping[str, int]) -> int:
    """Elements of the side ``name``: neurons, or synapses of a group built already."""
    side = net.endpoint(name)
    if isinstance(side, ir.SynapseGroupIR):
        return int(n_synapses[name])
    return side.size


def side_arrays(syn: ir.SynapseGroupIR, side: str) -> dict[str, tuple[str, k.Index, str]]:
    """Scope entries (``name_<side>`` -> array, index, dtype) of the synapse group
    ``syn`` seen as the ``side`` of another synapse group."""
    slot = sympy.Symbol(slot_local(side))
    out: dict[str, tuple[str, k.Index, str]] = {
        slot_local(side): (f"{syn.name}__{SLOT}", side, "int32"),
        f"i_{side}": (f"{syn.name}__{PRE_INDEX}", side, "int32"),
        f"j_{side}": (f"{syn.name}__{POST_INDEX}", side, "int32"),
    }
    for v in syn.variables:
        out[f"{v.name}_{side}"] = (f"{syn.name}__{v.name}", "scalar" if v.shared else slot, v.dtype)
    return out


def accumulate_targets(syn: ir.SynapseGroupIR, side: str) -> dict[str, tuple[str, k.Index]]:
    """Variables of ``syn`` that synapses on top of it may accumulate into, at the slot."""
    slot = sympy.Symbol(slot_local(side))
    return {
        v.name: (f"{syn.name}__{v.name}", slot)
        for v in syn.variables
        if not v.read_only and not v.shared
    }


def endpoint_arrays(syn: str, n_synapses: int) -> list[k.ArrayDecl]:
    """The index arrays a synapse group needs when another one connects its synapses."""
    return [
        k.ArrayDecl(f"{syn}__{name}", "int32", max(1, n_synapses), role="connectivity", owner=syn)
        for name in (SLOT, PRE_INDEX, POST_INDEX)
    ]
