# ruff: noqa: E501  (model equations read best one per line, however long)
"""PyNN standard cells as equations for the IR: one :class:`CellModel` per cell type.

Every model is written here from the published mathematics of the cell (and the NEST model
documentation it is compared against), in SI units, with the PyNN parameters as per-neuron
``(constant)`` variables so that ``Population.set`` changes them between runs without a
rebuild. :func:`neuron_template` turns a model into a :class:`~gpuspike.bridge.ir.NeuronGroupIR`
through :func:`gpuspike.bridge.model.neuron_group` (SymPy; cached per model), and
:func:`instantiate` gives it a name, a size and the initial values.

Conventions shared with :mod:`.translate`:

- ``i_inj`` (amp) is the summed current of the injected current sources, assigned at the
  top of the update from the group's ``cs<k>_*`` variables;
- a receptor maps to the variable a pre-synaptic event increments, with the factor from
  PyNN's weight unit to that variable's SI unit (``RECEPTORS``);
- ``dv_in`` (volt) buffers voltage jumps of delta synapses: added after the integration step
  while the neuron is not refractory, then cleared (NEST's ``iaf_psc_delta`` drops input
  during refractoriness).

Refractoriness follows NEST's grid models: a neuron that spikes in step ``s`` is clamped for
the ``round(tau_refrac/dt)`` following steps; the engine (Brian2's rule) clamps one step
less than its refractory duration, hence ``tau_refrac + dt``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from functools import cache

import numpy as np
from gpuspike.bridge import ir
from gpuspike.bridge.model import neuron_group

E = math.e

#: PyNN unit -> SI factor.
UNIT_SCALE: dict[str, float] = {
    "mV": 1e-3, "ms": 1e-3, "nA": 1e-9, "nF": 1e-9, "uS": 1e-6, "nS": 1e-9, "Hz": 1.0,
    "/ms": 1e3, "mV/ms": 1.0, "dimensionless": 1.0, "degrees": 1.0, "": 1.0, "1": 1.0,
}


@dataclass(frozen=True, eq=False)
class CellModel:
    """Equations of one cell type and how PyNN quantities map onto them."""

    equations: str
    threshold: str | None = None
    reset: str | None = None
    refractory: str | None = None
    method: str = "exact"
    #: receptor type -> (variable incremented by an event, factor from PyNN weight to SI)
    receptors: dict = field(default_factory=dict)
    #: events that reach ``dv_in`` only count outside refractoriness (delta synapses)
    delta_input: bool = False
    #: PyNN name -> IR variable name where they differ
    renames: dict = field(default_factory=dict)
    #: extra statements after the integration step (before the threshold test)
    post_update: str = ""
    #: linear synaptic variables the split update integrates exactly (default: the
    #: standard cells' names found in the equations)
    fast: tuple = ()


_LIF_PARAMS = """
v_rest : volt (constant)
cm : farad (constant)
tau_m : second (constant)
tau_refrac : second (constant)
v_reset : volt (constant)
v_thresh : volt (constant)
i_offset : amp (constant)
i_inj : amp
"""
_SYN_PARAMS = """
tau_syn_E : second (constant)
tau_syn_I : second (constant)
"""
_REV_PARAMS = """
e_rev_E : volt (constant)
e_rev_I : volt (constant)
"""
_LIF_SPIKE = dict(threshold="v >= v_thresh", reset="v = v_reset",
                  refractory="tau_refrac + dt")

# Linear current-based cells: solved exactly (propagator matrix), as NEST's iaf_psc_* do.
IF_CURR_EXP = CellModel(
    """
    dv/dt = (v_rest - v)/tau_m + (isyn_exc + isyn_inh + i_offset + i_inj)/cm : volt (unless refractory)
    disyn_exc/dt = -isyn_exc/tau_syn_E : amp
    disyn_inh/dt = -isyn_inh/tau_syn_I : amp
    """ + _LIF_PARAMS + _SYN_PARAMS, **_LIF_SPIKE, method="exact",
    receptors={"excitatory": ("isyn_exc", 1e-9), "inhibitory": ("isyn_inh", 1e-9)})

# alpha kernels: y jumps by e*w and feeds x with dx/dt = (y - x)/tau, so that x peaks at w
# one time constant after the event.
IF_CURR_ALPHA = CellModel(
    """
    dv/dt = (v_rest - v)/tau_m + (isyn_exc + isyn_inh + i_offset + i_inj)/cm : volt (unless refractory)
    disyn_exc/dt = (y_exc - isyn_exc)/tau_syn_E : amp
    dy_exc/dt = -y_exc/tau_syn_E : amp
    disyn_inh/dt = (y_inh - isyn_inh)/tau_syn_I : amp
    dy_inh/dt = -y_inh/tau_syn_I : amp
    """ + _LIF_PARAMS + _SYN_PARAMS, **_LIF_SPIKE, method="exact",
    receptors={"excitatory": ("y_exc", 1e-9 * E), "inhibitory": ("y_inh", 1e-9 * E)})

IF_CURR_DELTA = CellModel(
    """
    dv/dt = (v_rest - v)/tau_m + (i_offset + i_inj)/cm : volt (unless refractory)
    dv_in : volt
    """ + _LIF_PARAMS, **_LIF_SPIKE, method="exact", delta_input=True,
    receptors={"excitatory": ("dv_in", 1e-3), "inhibitory": ("dv_in", 1e-3)})

# Conductance-based cells are not linear in v: classic Runge-Kutta (NEST: adaptive RKF45).
IF_COND_EXP = CellModel(
    """
    dv/dt = (v_rest - v)/tau_m + (gsyn_exc*(e_rev_E - v) + gsyn_inh*(e_rev_I - v) + i_offset + i_inj)/cm : volt (unless refractory)
    dgsyn_exc/dt = -gsyn_exc/tau_syn_E : siemens
    dgsyn_inh/dt = -gsyn_inh/tau_syn_I : siemens
    """ + _LIF_PARAMS + _SYN_PARAMS + _REV_PARAMS, **_LIF_SPIKE, method="split",
    receptors={"excitatory": ("gsyn_exc", 1e-6), "inhibitory": ("gsyn_inh", 1e-6)})

IF_COND_ALPHA = CellModel(
    """
    dv/dt = (v_rest - v)/tau_m + (gsyn_exc*(e_rev_E - v) + gsyn_inh*(e_rev_I - v) + i_offset + i_inj)/cm : volt (unless refractory)
    dgsyn_exc/dt = (y_exc - gsyn_exc)/tau_syn_E : siemens
    dy_exc/dt = -y_exc/tau_syn_E : siemens
    dgsyn_inh/dt = (y_inh - gsyn_inh)/tau_syn_I : siemens
    dy_inh/dt = -y_inh/tau_syn_I : siemens
    """ + _LIF_PARAMS + _SYN_PARAMS + _REV_PARAMS, **_LIF_SPIKE, method="split",
    receptors={"excitatory": ("y_exc", 1e-6 * E), "inhibitory": ("y_inh", 1e-6 * E)})

# Spike-frequency adaptation and relative refractoriness as two extra conductances that
# jump at each spike (Muller et al. 2007; NEST iaf_cond_exp_sfa_rr).
IF_COND_EXP_GSFA_GRR = CellModel(
    """
    dv/dt = (v_rest - v)/tau_m + (gsyn_exc*(e_rev_E - v) + gsyn_inh*(e_rev_I - v) + g_s*(e_rev_sfa - v) + g_r*(e_rev_rr - v) + i_offset + i_inj)/cm : volt (unless refractory)
    dgsyn_exc/dt = -gsyn_exc/tau_syn_E : siemens
    dgsyn_inh/dt = -gsyn_inh/tau_syn_I : siemens
    dg_s/dt = -g_s/tau_sfa : siemens
    dg_r/dt = -g_r/tau_rr : siemens
    tau_sfa : second (constant)
    e_rev_sfa : volt (constant)
    q_sfa : siemens (constant)
    tau_rr : second (constant)
    e_rev_rr : volt (constant)
    q_rr : siemens (constant)
    """ + _LIF_PARAMS + _SYN_PARAMS + _REV_PARAMS, threshold="v >= v_thresh",
    reset="v = v_reset\ng_s = g_s + q_sfa\ng_r = g_r + q_rr",
    refractory="tau_refrac + dt", method="split",
    receptors={"excitatory": ("gsyn_exc", 1e-6), "inhibitory": ("gsyn_inh", 1e-6)})

# Adaptive exponential integrate-and-fire (Brette & Gerstner 2005); the exponential is
# evaluated at min(v, v_spike) so that the step that crosses v_spike stays finite.
_ADEX_PARAMS = """
v_spike : volt (constant)
a : siemens (constant)
b : amp (constant)
delta_T : volt (constant)
tau_w : second (constant)
"""
_ADEX_V = ("dv/dt = ((v_rest - v) + delta_T*exp((minimum(v, v_spike) - v_thresh)/delta_T))/tau_m"
           " + (gsyn_exc*(e_rev_E - v) + gsyn_inh*(e_rev_I - v) - w + i_offset + i_inj)/cm"
           " : volt (unless refractory)\n"
           "dw/dt = (a*(v - v_rest) - w)/tau_w : amp\n")
EIF_COND_EXP_ISFA_ISTA = CellModel(
    _ADEX_V + """
    dgsyn_exc/dt = -gsyn_exc/tau_syn_E : siemens
    dgsyn_inh/dt = -gsyn_inh/tau_syn_I : siemens
    """ + _LIF_PARAMS + _SYN_PARAMS + _REV_PARAMS + _ADEX_PARAMS, threshold="v >= v_spike",
    reset="v = v_reset\nw = w + b", refractory="tau_refrac + dt", method="split",
    receptors={"excitatory": ("gsyn_exc", 1e-6), "inhibitory": ("gsyn_inh", 1e-6)})
EIF_COND_ALPHA_ISFA_ISTA = CellModel(
    _ADEX_V + """
    dgsyn_exc/dt = (y_exc - gsyn_exc)/tau_syn_E : siemens
    dy_exc/dt = -y_exc/tau_syn_E : siemens
    dgsyn_inh/dt = (y_inh - gsyn_inh)/tau_syn_I : siemens
    dy_inh/dt = -y_inh/tau_syn_I : siemens
    """ + _LIF_PARAMS + _SYN_PARAMS + _REV_PARAMS + _ADEX_PARAMS, threshold="v >= v_spike",
    reset="v = v_reset\nw = w + b", refractory="tau_refrac + dt", method="split",
    receptors={"excitatory": ("y_exc", 1e-6 * E), "inhibitory": ("y_inh", 1e-6 * E)})

# Izhikevich (2003) in its native units (mV, ms): 1 mV/ms = 1 V/s, the input current adds
# 1 mV/ms per pA as in NEST's izhikevich; synapses are voltage jumps (weight in mV).
IZHIKEVICH = CellModel(
    """
    dv/dt = (0.04*(v/mV)**2 + 5*(v/mV) + 140)*(mV/ms) - u + (i_offset + i_inj)/pA*(mV/ms) : volt
    du/dt = a*(b*v - u) : volt/second
    dv_in : volt
    a : 1/second (constant)
    b : 1/second (constant)
    c : volt (constant)
    d : volt/second (constant)
    i_offset : amp (constant)
    i_inj : amp
    """, threshold="v >= 0.03*volt", reset="v = c\nu = u + d", method="euler",
    delta_input=True,
    receptors={"excitatory": ("dv_in", 1e-3), "inhibitory": ("dv_in", 1e-3)})

# Hodgkin-Huxley with Traub & Miles (1991) kinetics (NEST hh_cond_exp_traub); rates in
# 1/ms of u = v - v_offset in mV.
HH_COND_EXP = CellModel(
    """
    dv/dt = (g_leak*(e_rev_leak - v) + gbar_Na*m**3*h*(e_rev_Na - v) + gbar_K*n**4*(e_rev_K - v) + gsyn_exc*(e_rev_E - v) + gsyn_inh*(e_rev_I - v) + i_offset + i_inj)/cm : volt
    dm/dt = (alpha_m*(1 - m) - beta_m*m) : 1
    dh/dt = (alpha_h*(1 - h) - beta_h*h) : 1
    dn/dt = (alpha_n*(1 - n) - beta_n*n) : 1
    dgsyn_exc/dt = -gsyn_exc/tau_syn_E : siemens
    dgsyn_inh/dt = -gsyn_inh/tau_syn_I : siemens
    u_mV = (v - v_offset)*1000/volt : 1
    alpha_m = 0.32*4/exprel((13 - u_mV)/4)/ms : 1/second
    beta_m = 0.28*5/exprel((u_mV - 40)/5)/ms : 1/second
    alpha_h = 0.128*exp((17 - u_mV)/18)/ms : 1/second
    beta_h = 4/(1 + exp((40 - u_mV)/5))/ms : 1/second
    alpha_n = 0.032*5/exprel((15 - u_mV)/5)/ms : 1/second
    beta_n = 0.5*exp((10 - u_mV)/40)/ms : 1/second
    gbar_Na : siemens (constant)
    gbar_K : siemens (constant)
    g_leak : siemens (constant)
    cm : farad (constant)
    v_offset : volt (constant)
    e_rev_Na : volt (constant)
    e_rev_K : volt (constant)
    e_rev_leak : volt (constant)
    i_offset : amp (constant)
    i_inj : amp
    """ + _SYN_PARAMS + _REV_PARAMS,
    threshold="v > v_offset + 0.03*volt", refractory="v > v_offset + 0.03*volt",
    method="exponential_euler",
    receptors={"excitatory": ("gsyn_exc", 1e-6), "inhibitory": ("gsyn_inh", 1e-6)})


def _split_update(eqs_text: str, fast: tuple[str, ...]) -> tuple[ir.Statement, ...]:
    """One step of a conductance-based cell: the linear synaptic variables ``fast`` exactly,
    the others (``v``, adaptation) with classic RK4 that reads the exact synaptic values at
    ``t``, ``t + dt/2`` and ``t + dt``. Synaptic time constants far below ``dt`` (PyNN's
    default 0.3 ms alpha synapses) then cost no accuracy; NEST integrates the whole system
    with adaptive RKF45."""
    import sympy
    from gpuspike.bridge.equations import parse_equations
    from gpuspike.bridge.integrators import integrate

    eqs = parse_equations(eqs_text, external={"t", "dt", "i", "N", "not_refractory",
                                              "lastspike"})
    odes = eqs.odes(event_driven=None)
    flagged = {ln.name for ln in eqs.of_kind("diff", "unless refractory")}
    dt = sympy.Symbol("dt")
    exact: dict[str, sympy.Expr] = {}
    temps: dict[sympy.Symbol, sympy.Expr] = {}
    for st in integrate({k: odes[k] for k in fast}, "exact"):
        e = st.expr.xreplace(temps)
        if st.target.startswith("_"):
            temps[sympy.Symbol(st.target)] = e
        else:
            exact[st.target] = e
    slow = [k for k in odes if k not in fast]
    out: list[ir.Statement] = []
    stage_g = {}
    for tag, frac in (("h", sympy.Rational(1, 2)), ("f", sympy.Integer(1))):
        stage_g[tag] = {}
        for k in fast:
            out.append(ir.Assign(f"_{tag}_{k}", exact[k].xreplace({dt: frac * dt})))
            stage_g[tag][sympy.Symbol(k)] = sympy.Symbol(f"_{tag}_{k}")

    def f(var, state, g):
        return odes[var].xreplace({**state, **g})

    y0 = {sympy.Symbol(k): sympy.Symbol(k) for k in slow}
    ks = []
    for n, (shift, g) in enumerate(((0, {}), (sympy.Rational(1, 2), stage_g["h"]),
                                    (sympy.Rational(1, 2), stage_g["h"]),
                                    (1, stage_g["f"]))):
        st = {sympy.Symbol(k): sympy.Symbol(k) + shift * dt * ks[-1][k] for k in slow} \
            if n else y0
        kn = {}
        for k in slow:
            out.append(ir.Assign(f"_k{n + 1}_{k}", f(k, st, g)))
            kn[k] = sympy.Symbol(f"_k{n + 1}_{k}")
        ks.append(kn)
    for k in slow:
        new = sympy.Symbol(k) + dt / 6 * (ks[0][k] + 2 * ks[1][k] + 2 * ks[2][k] + ks[3][k])
        st = ir.Assign(k, new)
        out.append(ir.Conditional(sympy.Symbol("not_refractory"), (st,)) if k in flagged
                   else st)
    for k in fast:
        out.append(ir.Assign(k, sympy.Symbol(f"_f_{k}")))
    return tuple(out)


@cache
def neuron_template(model: CellModel) -> ir.NeuronGroupIR:
    """The model's group (SymPy integration is slow: one build per model)."""
    eqs = "\n".join(line.strip() for line in model.equations.strip().splitlines())
    method = "euler" if model.method == "split" else model.method
    g = neuron_group("template", 1, eqs, threshold=model.threshold, reset=model.reset,
                     refractory=model.refractory, method=method)
    if model.method == "split":
        fast = model.fast or tuple(
            k for k in ("gsyn_exc", "y_exc", "gsyn_inh", "y_inh", "g_s", "g_r")
            if f"d{k}/dt" in eqs.replace(" ", ""))
        g = dataclasses.replace(g, update=_split_update(eqs, fast))
    if model.delta_input:
        import sympy

        v, dv = sympy.Symbol("v"), sympy.Symbol("dv_in")
        add = ir.Assign("v", v + dv)
        if model.refractory is not None:
            add = ir.Conditional(sympy.Symbol("not_refractory"), (add,))
        g = dataclasses.replace(g, update=g.update + (add, ir.Assign("dv_in", sympy.Integer(0))))
    return g


def instantiate(template: ir.NeuronGroupIR, name: str, size: int,
                values: dict[str, np.ndarray], extra_variables: tuple[ir.Variable, ...] = (),
                pre_update: tuple[ir.Statement, ...] = ()) -> ir.NeuronGroupIR:
    """A copy of ``template`` named ``name`` with ``size`` neurons; ``values``: SI arrays
    (or scalars) that initialise the variables of those names."""
    variables = []
    for v in template.variables:
        if v.name in values:
            val = np.asarray(values[v.name], dtype=float)
            init = ir.Constant(float(val)) if val.ndim == 0 else ir.ArrayInit(val)
            v = dataclasses.replace(v, init=init)
        variables.append(v)
    for v in extra_variables:
        if v.name in values:
            v = dataclasses.replace(v, init=ir.ArrayInit(np.asarray(values[v.name], float)))
        variables.append(v)
    return dataclasses.replace(template, name=name, size=int(size), variables=tuple(variables),
                               update=tuple(pre_update) + template.update)
