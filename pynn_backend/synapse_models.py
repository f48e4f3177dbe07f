"""PyNN's standard synapse types as synapse-group code for the IR (model, pathways, values).

:func:`synapse_code` gives, for the connections ``sel`` of a projection between one pair of
engine groups, the model lines, the ``on_pre``/``on_post`` code, the initial values (SI,
weights times the receptor's ``factor``), the baked constants and, for STDP, the delay of
the post-synaptic pathway. The pre pathway's last line is always
``<target>_post += weight...`` (:mod:`.translate` redirects it for delta synapses).

Timing (NEST's ``stdp_synapse``, which PyNN's NEST backend uses): with a delay ``d`` that
is all dendritic (``dendritic_delay_fraction = 1``) the synapse sees a pre-synaptic spike
at ``t_pre`` and a post-synaptic spike at ``t_post + d``, so a pair counts with
``dt = t_post + d - t_pre``. The engine runs the pre pathway at ``t_pre + d`` (when the
event reaches the target), so the post pathway runs ``2 d`` later than the spike:
``1 + 2 f d/dt`` engine steps for a fraction ``f`` (``f = 0``, all axonal: the synapse sees
the pre spike at ``t_pre + d`` and the post spike at ``t_post``; between 0 and 1, ``2 f d``
is rounded to the time step). Only differences of those times enter the rule. The post
pathway runs before the pre pathway of the same step. So NEST changes a weight when the pre
spike is sent and gpuspike when it arrives, ``d`` later; the weight each event carries is
the same, and ``get('weight')`` adds the updates of the pre spikes still in flight by a
look-ahead that is undone (``Projection._nest_view``), so it shows NEST's weight.
A Poisson source's event of multiplicity ``k`` runs the rule once and delivers ``k`` times
the weight (NEST's ``stdp_synapse`` with a spike of multiplicity ``k``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: (mu_plus, mu_minus) of the weight dependences with fixed exponents; Gutig's are
#: parameters (``None``)
WEIGHT_EXPONENTS: dict[str, tuple[float, float] | None] = {
    "AdditiveWeightDependence": (0.0, 0.0),
    "MultiplicativeWeightDependence": (1.0, 1.0),
    "AdditivePotentiationMultiplicativeDepression": (0.0, 1.0),
    "GutigWeightDependence": None,
}


@dataclass
class SynapseCode:
    """What :func:`gpuspike.bridge.model.synapses` needs for one synapse type."""

    model: str
    on_pre: str
    on_post: str | None = None
    init: dict = field(default_factory=dict)
    namespace: dict = field(default_factory=dict)
    #: engine steps of the post-synaptic pathway, per synapse (None: no such pathway)
    post_delay_steps: np.ndarray | None = None
    #: the post-synaptic neuron's variables the code reads (``name_post``)
    post_variables: tuple[str, ...] = ()


def _constant(code: SynapseCode, name: str, values: np.ndarray, unit: str) -> None:
    """A parameter: baked into the kernels when it is the same for every synapse, else a
    per-synapse read-only variable."""
    values = np.asarray(values, dtype=float)
    if values.size and np.all(values == values[0]):
        code.namespace[name] = float(values[0])
    else:
        code.model += f"\n{name} : {unit} (constant)"
        code.init[name] = values


def synapse_code(
    synapse_type, attrs: dict, sel: np.ndarray, target: str, factor: float, delay_steps: np.ndarray,
    tau_psc: str | None = None,
) -> SynapseCode:
    """Code of ``synapse_type`` for the connections ``sel``; ``attrs``: the projection's
    attributes in PyNN units; ``delay_steps``: the PyNN delays of ``sel`` in steps;
    ``tau_psc``: the post-synaptic neuron's parameter holding the time constant of the
    receptor's current (Tsodyks-Markram), if it has one."""
    kind = type(synapse_type).__name__
    weights = attrs["weight"][sel] * factor
    code = SynapseCode("weight : 1", f"{target}_post += weight", init={"weight": weights})
    if kind == "StaticSynapse":
        return code
    if kind == "TsodyksMarkramSynapse":
        return _tsodyks_markram(attrs, sel, target, code, tau_psc)
    if kind == "SimpleStochasticSynapse":
        # NEST's bernoulli_synapse: each event is transmitted with probability p, one
        # independent draw per synapse and event
        code.model += "\np : 1 (constant)"
        code.init["p"] = attrs["p"][sel]
        code.on_pre = f"{target}_post += weight*where(rand() < p, 1, 0)"
        return code
    if kind == "MultiQuantalSynapse":
        return _multi_quantal(attrs, sel, target, code)
    if kind == "STDPMechanism":
        return _stdp(synapse_type, attrs, sel, target, factor, delay_steps, code)
    raise NotImplementedError(f"synapse type {kind} is not supported by pyNN.gpuspike yet")


def _tsodyks_markram(attrs: dict, sel: np.ndarray, target: str, code: SynapseCode,
                     tau_psc: str | None) -> SynapseCode:
    r"""NEST's ``tsodyks_synapse`` (what PyNN's TsodyksMarkramSynapse is on pyNN.nest),
    updated event by event, exact between events.

    Resources are recovered (``x``), active (``y``: released into the current, which decays
    with the receptor's ``tau_psc``, PyNN's post-synaptic ``tau_syn``) or inactive
    (``z = 1 - x - y``, recovering with ``tau_rec``); ``u`` relaxes to 0 with ``tau_facil``
    (stays ``U`` when it is 0). Over the ``h`` since the last event:

    .. math::

        u \leftarrow u e^{-h/\tau_f}, \quad
        x \leftarrow x + P_{xy} y + (1 - e^{-h/\tau_{rec}}) z, \quad
        y \leftarrow y e^{-h/\tau_{psc}},

        P_{xy} = \frac{(e^{-h/\tau_{rec}} - 1)\tau_{rec} - (e^{-h/\tau_{psc}} - 1)
        \tau_{psc}}{\tau_{psc} - \tau_{rec}}
        \quad (\to 1 - e^{-h/\tau}(1 + h/\tau) \text{ at } \tau_{psc} = \tau_{rec})

    then at the event ``u += U (1 - u)``, the weight times ``u x`` goes to the current,
    ``y += u x``, ``x -= u x``. Resources released into a current that has not decayed yet
    do not recover, which is what makes facilitating synapses (small ``U``, long
    ``tau_facil``) differ from the two-state model ``R = 1 - (1 - R) e^{-h/tau_rec}`` by a
    few per cent at their peaks. A receptor without a time constant (delta synapses) gets
    ``tau_psc -> 0``: the two-state model.
    """
    h = "(t - last_tm)"
    code.model += ("\nU : 1\ntau_rec : second\ntau_facil : second\nu_tm : 1\nx_tm : 1"
                   "\ny_tm : 1\nlast_tm : second")
    facil = ("u_tm = where(tau_facil > 0, u_tm*exp(-(t - last_tm)/where(tau_facil > 0, "
             "tau_facil, 1*second)), 0)")
    release = ["u_tm = u_tm + U*(1 - u_tm)", f"{target}_post += weight*u_tm*x_tm",
               "y_tm = y_tm + u_tm*x_tm", "x_tm = x_tm - u_tm*x_tm", "last_tm = t"]
    if tau_psc is None:
        recover = [f"x_tm = 1 - (1 - x_tm - y_tm)*exp(-{h}/tau_rec)", "y_tm = 0"]
    else:
        tp = f"{tau_psc}_post"
        gap = f"({tp} - tau_rec)"
        pxy = (f"where(abs({gap}) > 1e-9*second, ((exp(-{h}/tau_rec) - 1)*tau_rec - "
               f"(exp(-{h}/{tp}) - 1)*{tp})/where(abs({gap}) > 1e-9*second, {gap}, 1*second), "
               f"1 - exp(-{h}/tau_rec)*(1 + {h}/tau_rec))")
        recover = [f"x_tm = x_tm + {pxy}*y_tm + (1 - exp(-{h}/tau_rec))*(1 - x_tm - y_tm)",
                   f"y_tm = y_tm*exp(-{h}/{tp})"]
        code.post_variables = (tau_psc,)
    code.on_pre = "\n".join([facil, *recover, *release])
    code.init.update(
        U=attrs["U"][sel],
        tau_rec=attrs["tau_rec"][sel] * 1e-3,
        tau_facil=attrs["tau_facil"][sel] * 1e-3,
        u_tm=np.zeros(sel.size),
        x_tm=np.ones(sel.size),
        y_tm=np.zeros(sel.size),
        last_tm=np.zeros(sel.size),
    )
    return code


#: MultiQuantalSynapse's state: PyNN's name -> the synapse group's variable
MULTI_QUANTAL_STATE = {"a": "a_mq", "u": "u_mq"}


def _multi_quantal(attrs: dict, sel: np.ndarray, target: str, code: SynapseCode) -> SynapseCode:
    r"""NEST's ``quantal_stp_synapse`` (Fuhrmann et al. 2002; what PyNN's
    MultiQuantalSynapse is on pyNN.nest): ``n`` release sites of which ``a`` are available,
    a release probability ``u``. At each event after an interval ``h`` (not at the first
    one), in NEST's order:

    .. math::

        u \leftarrow U + u (1 - U) e^{-h/\tau_{fac}} \ (\text{no memory when }
        \tau_{fac} < 10^{-10}\,\text{ms}), \qquad
        a \leftarrow a + \mathrm{Binomial}(n - a, 1 - e^{-h/\tau_{rec}})

    then ``r = Binomial(a, u)`` sites release: the target gets ``r`` times the weight and
    ``a -= r``. NEST draws one Bernoulli number per site; the engine's binomial draws
    have the same law. An event of multiplicity ``k`` (a Poisson source) runs this once and
    delivers ``k r`` weights, as NEST's receivers do. ``a`` and ``u`` start at
    ``Projection.initialize(a=..., u=...)``, else at ``n`` and ``U`` (NEST's documented
    defaults; NEST itself keeps the ``a = 1``, ``u = 0.5`` of its default connection
    when only ``n`` and ``U`` are given, which is why PyNN's example initialises both).
    """
    h = "(t - last_mq)"
    seen = "last_mq >= 0*second"  # NEST: no recovery nor facilitation at the first event
    fac = "tau_facil > 1e-13*second"
    code.model += ("\nn_sites : 1\nU : 1\ntau_rec : second\ntau_facil : second\nu_mq : 1\na_mq : 1"
                   "\nr_mq : 1\nlast_mq : second")
    code.on_pre = "\n".join([
        f"u_mq = where({seen}, U + u_mq*(1 - U)*where({fac}, exp(-{h}/maximum(tau_facil, "
        "1e-13*second)), 0), u_mq)",
        f"a_mq = a_mq + where({seen}, binomial(n_sites - a_mq, 1 - exp(-{h}/tau_rec)), 0)",
        "r_mq = binomial(a_mq, u_mq)",
        f"{target}_post += weight*r_mq",
        "a_mq = a_mq - r_mq",
        "last_mq = t",
    ])
    code.init.update(
        n_sites=np.round(attrs["n"][sel]),
        U=attrs["U"][sel],
        tau_rec=attrs["tau_rec"][sel] * 1e-3,
        tau_facil=attrs["tau_facil"][sel] * 1e-3,
        u_mq=attrs.get("_init_u", attrs["U"])[sel],
        a_mq=np.round(attrs.get("_init_a", attrs["n"])[sel]),
        r_mq=np.zeros(sel.size),
        last_mq=np.full(sel.size, -1.0),
    )
    return code


def _stdp(st, attrs, sel, target, factor, delay_steps, code: SynapseCode) -> SynapseCode:
    r"""NEST's ``stdp_synapse`` with PyNN's parameters (all-to-all spike pairs).

    Traces, advanced exactly between the synapse's events (``x`` is the weight):

    .. math::

        \dot a_{pre} = -a_{pre}/\tau_+, \qquad \dot a_{post} = -a_{post}/\tau_-

    At a post-synaptic spike (as the synapse sees it), facilitation with the pre trace
    (which does not yet count a pre spike seen at the same time), then ``a_post += 1``:

    .. math:: x \leftarrow w_{max} \min(x/w_{max} + A_+ (1 - x/w_{max})^{\mu_+} a_{pre},\ 1)

    At a pre-synaptic spike, depression with the post trace of the post spikes seen
    strictly earlier, ``a_pre += 1``, then the event carries the new weight:

    .. math::

        x \leftarrow w_{max} \max(x/w_{max} - A_- ((x - w_{min})/w_{max})^{\mu_-} a_{post},\
        w_{min}/w_{max})

    ``(mu_+, mu_-)`` is (0, 0) additive, (1, 1) multiplicative, (0, 1) additive
    potentiation / multiplicative depression, Gutig's parameters otherwise; with
    ``w_min = 0`` these are NEST's ``facilitate_``/``depress_`` with ``lambda = A_+``,
    ``alpha = A_-/A_+`` (NEST applies no depression when ``A_+ = 0``; here ``A_-`` still
    acts). NEST applies the facilitations lazily, at the next pre spike, and shows the
    weight as of the last pre spike: ``weight`` (what PyNN reads and the event carries) is
    set to the running value ``w_stdp`` at every pre spike, so it equals NEST's weight.
    """
    if st.voltage_dependence is not None:
        raise NotImplementedError("pyNN.gpuspike: STDP voltage dependence is not supported")
    td, wd = type(st.timing_dependence).__name__, type(st.weight_dependence).__name__
    if td != "SpikePairRule" or wd not in WEIGHT_EXPONENTS:
        raise NotImplementedError(
            f"pyNN.gpuspike: STDP with {td} and {wd} is not supported; "
            "use SpikePairRule with the Additive, Multiplicative, "
            "AdditivePotentiationMultiplicativeDepression or Gutig "
            "weight dependence"
        )
    fraction = np.unique(attrs["dendritic_delay_fraction"][sel])
    if fraction.size != 1:
        raise ValueError("dendritic_delay_fraction must be the same for every connection")
    w_stdp = attrs.get("_w_stdp", attrs["weight"])[sel] * factor
    code.model += (
        "\nw_stdp : 1\ntpost : second"
        "\ndapre/dt = -apre/tau_plus : 1 (event-driven)"
        "\ndapost/dt = -apost/tau_minus : 1 (event-driven)"
    )
    code.init.update(w_stdp=w_stdp, tpost=-1.0)
    for name in ("tau_plus", "tau_minus"):
        _constant(code, name, attrs[name][sel] * 1e-3, "second")
    for name in ("A_plus", "A_minus"):
        _constant(code, name, attrs[name][sel], "1")
    for name in ("w_min", "w_max"):
        _constant(code, name, attrs[name][sel] * factor, "1")
    mu = WEIGHT_EXPONENTS[wd]
    if mu is None:
        mu = tuple(attrs[n][sel] for n in ("mu_plus", "mu_minus"))
        mu = tuple(float(m[0]) if m.size and np.all(m == m[0]) else None for m in mu)
        for name, m in zip(("mu_plus", "mu_minus"), mu):
            if m not in (0.0, 1.0):
                _constant(code, name, attrs[name][sel], "1")
    # NEST's form: the weight in units of w_max (so a negative w_max, for inhibitory
    # current-based synapses, mirrors the rule)
    norm = "(w_stdp/w_max)"
    gain = {0.0: "1", 1.0: f"(1 - {norm})"}.get(mu[0], f"(1 - {norm})**mu_plus")
    loss = {0.0: "1", 1.0: "((w_stdp - w_min)/w_max)"}.get(
        mu[1], "((w_stdp - w_min)/w_max)**mu_minus"
    )
    # the post trace without a post spike seen in this same step (NEST: strictly earlier)
    k_minus = "(apost - where(abs(t - tpost) < 0.5*dt, 1, 0))"
    code.on_post = f"w_stdp = w_max*minimum({norm} + A_plus*{gain}*apre, 1)\napost += 1\ntpost = t"
    code.on_pre = (
        f"w_stdp = w_max*maximum({norm} - A_minus*{loss}*{k_minus}, w_min/w_max)\n"
        "apre += 1\n"
        "weight = w_stdp\n"
        f"{target}_post += weight"
    )
    code.post_delay_steps = 1 + np.round(2 * float(fraction[0]) * delay_steps).astype(np.int64)
    return code
