"""Surrogate-gradient BPTT and e-prop as kernel IR, beside EventProp's plans.

Both rules train the network of an :class:`~gpuspike.bridge.training_ir.EventPropIR` with
EventProp's forward pass (:mod:`gpuspike.engine.eventprop.kernels`: exact propagation over a
step, threshold, reset to ``v_reset``, delivery of the step's spikes into ``J``). Writing
``u'_n`` for the voltage after the propagation to step ``n`` (before the threshold),
``s_n = H(u'_n - theta)`` for ``1 <= n <= N - 1``, ``sigma_n = ds/du`` its surrogate
(:mod:`.surrogate`; 0 where no spike can happen) and ``g`` the post population's gain, the
discrete map of one population is::

    u'_n = alpha u_{n-1} + P J_{n-1}          u_n = (1 - s_n) u'_n + s_n v_reset
    J_n  = beta J_{n-1} + g sum_i w_ji m_i,n    (m: the pre spikes (counts) of step n)

With a refractory period of ``R`` steps (``t_ref``), ``r_n = 1`` at the ``R`` steps after a
spike's: there ``u'_n = u_{n-1}`` (held at ``v_reset``), ``s_n = 0`` and ``sigma_n = 0``
(the refractory flag is taken as a constant, like the detached reset).

The reset is *detached* (SpyTorch's ``(1 - s) u``: ``du_n/du'_n = 1 - s_n``, no derivative
through ``s`` there), and the readout's voltage is ``v_n = u'_n + v_rest``. The loss gives
``e_n = dL/dv_n`` (``dldv``, from :mod:`gpuspike.engine.eventprop.losses`: ``source_n dt``,
the max readout's impulse at its step), the spike-count regulariser ``k_j = dL_reg/ds_j,n``
(its kick, the same at every step).

**BPTT** (:meth:`BPTTBuilder.backward`, reverse time, the forward pass taping
``sigma_n``): with ``a_u, a_J`` the adjoints of ``u_n, J_n`` (zero after step ``N``), step
``n = N .. 0``::

    spikes    the tape's spikes at n (a read pointer per neuron) -> events, flags s_n
    arrivals  per spike of pre i through (i, j):     G_ji += g a_J,j       (x count for inputs)
    feedback  per synapse (every pre, spiking or not): f_i += g w_ji a_J,j
    update    a'  = a_u (1 - s_n) + (f + k) sigma_n (+ e_n at the readout)
              n >= 1:  a_u <- alpha a' ;  a_J <- P a' + beta a_J
              (held, r_n = 1, read from the tape: a_u <- a' ; a_J <- beta a_J)

**e-prop** (:meth:`EpropBuilder.eprop`, forward time, after a forward pass that gave the
loss's ``e_n``; memory independent of ``N`` but for ``e``): per synapse (i -> j) of a hidden
population, eligibility ``eps_u = du_j/dw_ji`` along j's own state only (recurrent
spikes' dependence on ``w`` ignored: e-prop's approximation, exact without recurrence)::

    du      = alpha eps_u + P eps_J,i   (n >= 1; eps_u while held)
                                                  eps_J,i: the pre trace  beta eps_J + g m_i
    el      = sigma_n du ;  eps_u <- (1 - s_n) du
    G_ji    += (L~_j,n + k_j) el,     L~_j,n = sum_k w_kj e~_k,n+d    (learning signal)

and per readout synapse (j -> k) the exact ``G_kj += e_k,n X_u,j`` with the readout's filter
of j's spikes (``X_u <- alpha_o X_u + P_o X_J``; ``X_J <- beta_o X_J + g_o s_j``).
e-prop's readout filter ``F`` of the eligibility (``F_J <- beta_o F_J + g_o el``,
``F_u <- alpha_o F_u + P_o F_J``, ``G += L_n F_u``) is linear and time-invariant, so
``sum_n L_n (c * el)_n = sum_m el_m sum_{n > m} c(n - m) L_n``: the plan multiplies ``el``
by the *backward*-filtered learning signal instead, ``e~_m = g_o a_J(m)`` (the readout's
adjoint of ``e`` in reverse time, :meth:`EpropBuilder.readout_filter`, run once per batch
after the forward pass has given ``e``), and keeps no filter traces per synapse (two
fewer; the same gradient). Without recurrence ``sum_n L~_j,n el`` is exactly BPTT's
``sum_n f_j,n sigma_n du``, so the two rules agree to rounding there.
Gradients of a batch are summed per example (``gb``) and over the batch on the host.

**e-prop in reverse time** (the default; the forward-time plan above is ``online=True``).
The eligibility is a linear recursion along j's own state, ``x_ji,n = M_j,n x_ji,n-1 +
b_j,n eps_J,i,n-1`` (``x = (eps_u, eps_a)``: coefficients of the post j only, the drive of
the pre i only), and the gradient is ``G_ji = sum_n c_j,n . x_ji,n`` (``c``: the learning
signal and kick times the surrogate). Exchanging the sums, ``G_ji = sum_m eps_J,i,m
lambda_j,m`` with ``lambda_j`` the adjoint of that recursion, run backwards per neuron --
which is BPTT's backward pass above with the feedback ``f`` taken through the readout's
projections only (``L~`` is exactly that feedback), and the arrivals turning the pre's
trace into per-spike sums (``G_ji += g a_J,j`` at each spike of i). Same gradient, to
rounding; the work is per spike and neuron (BPTT's), not per synapse and step, and the
memory is BPTT's tape (``O(N)`` per neuron) instead of the traces (per synapse).
"""

from __future__ import annotations

import sympy
from gpuspike.bridge.errors import UnsupportedFeature
from gpuspike.bridge.training_ir import SPIKE_LOSSES, EventPropIR

from .. import kernel_ir as k
from ..eventprop.kernels import (
    B_,
    I_,
    J_,
    MULT,
    STEP,
    Layout,
    PopNames,
    _Builder,
    _name,
    _ring_depth,
    layout,
)
from .surrogate import Surrogate

S = sympy.Symbol
RULES = ("eventprop", "bptt", "eprop")


def check_rule(ir: EventPropIR, rule: str) -> None:
    """What BPTT and e-prop need of the network, as errors naming the way out."""
    if rule == "eventprop":
        return
    if rule not in RULES:
        raise UnsupportedFeature(f"unknown training rule {rule!r}; choose from {RULES}")
    if ir.loss.kind in SPIKE_LOSSES:
        raise UnsupportedFeature(
            f"rule {rule!r} trains voltage readouts (avg_ce, exp_avg_ce, sum_ce, max_ce, "
            f"per_timestep_ce, mse); the first-spike loss {ir.loss.kind!r} needs "
            "rule='eventprop'")
    learnt = [q.name for q in ir.projections if q.learn_delay]
    if learnt:
        raise UnsupportedFeature(
            f"rule {rule!r} learns weights only; the delays of {learnt} are set to be learnt: "
            "use rule='eventprop' (which learns delays) or keep the delays fixed")
    if rule == "eprop":
        for p in ir.populations:
            if p.is_input or p.name == ir.output:
                continue
            outs = [q for q in ir.projections if q.pre == p.name and q.post == ir.output]
            if not outs:
                raise UnsupportedFeature(
                    f"e-prop feeds the readout's error back through the readout weights, "
                    f"but hidden population {p.name!r} does not project to {ir.output!r}; "
                    "connect every hidden population to the readout (one hidden layer, "
                    "recurrent or not) or use rule='bptt'")


def _distance(nrn) -> sympy.Expr:
    """The voltage the surrogate compares with ``theta``: ``e_u`` (ALIF: ``e_u - beta_a
    e_a``, the adaptive threshold moved onto the voltage)."""
    return S("e_u") - nrn.beta_a * S("e_a") if nrn.adaptive else S("e_u")


class _RuleBuilder(_Builder):
    """EventProp's forward builder with a surrogate's per-step quantities."""

    def __init__(self, ir: EventPropIR, lay: Layout, precision: str,
                 surrogate: Surrogate) -> None:
        super().__init__(ir, lay, precision)
        self.surrogate = surrogate

    def sigma(self, p) -> sympy.Expr:
        """``sigma_n`` of the voltage ``e_u`` (0 where the threshold is not applied)."""
        nrn = p.neuron
        return sympy.Piecewise((self.surrogate.expr(_distance(nrn), nrn.theta, nrn.v_reset),
                                self.active(p)), (0.0, True))

    def active(self, p) -> sympy.Basic:
        """The threshold is applied at this step: ``1 <= n <= N - 1``, not refractory
        (``e_rf``, the step kernel's flag)."""
        held = (sympy.Lt(S("e_rf"), 0.5),) if p.neuron.refractory_steps(self.ir.dt) else ()
        return sympy.And(sympy.Ge(STEP, 1), sympy.Le(STEP, self.N - 1), *held)

    @staticmethod
    def adjoint_step(alpha, p_vi, beta, *extra) -> k.If:
        """The adjoint of one step's propagation (``u'_n = alpha u_{n-1} + P J_{n-1}``,
        ``J_n = beta J_{n-1} + ...``), from ``e_a = dL/du'_n`` and ``e_aj = dL/dJ_n``:
        ``a_u <- alpha e_a``, ``a_J <- P e_a + beta a_J`` (``n >= 1``; ``extra``: more
        statements of the same step)."""
        return k.If(sympy.Ge(STEP, 1), (k.Let("e_au", alpha * S("e_a")),
                                        k.Let("e_aj", p_vi * S("e_a") + beta * S("e_aj")),
                                        *extra))

    def dense_synapses(self, q) -> k.SynapseDomain:
        """Every synapse of ``q`` (full rows, ``s = pre * n_post + post``) as a domain."""
        g = self.synapses(q)
        pre, post = self.ir.population(q.pre).size, self.ir.population(q.post).size
        self.declare(f"{g}__valid", "int32", pre * post, role="connectivity", owner=q.name)
        return k.SynapseDomain(g, pre, post, post, dense=True)


class BPTTBuilder(_RuleBuilder):
    """Forward with the surrogate taped per step; the reverse-time plan (module docstring).

    ``rule='eprop'``: the feedback through the readout's projections only, which is
    e-prop's gradient in reverse time (module docstring, *e-prop in reverse time*)."""

    def __init__(self, ir: EventPropIR, lay: Layout, precision: str, surrogate: Surrogate,
                 rule: str = "bptt") -> None:
        super().__init__(ir, lay, precision, surrogate)
        self.rule = rule

    def step_extra(self, p, names: PopNames):
        size = (self.N + 1) * self.B * p.size
        self.declare(names.sg, "float", size, role="tape", owner=p.name)
        return [k.Store(names.sg, self.sigma(p), (STEP * self.B + B_) * p.size + I_)], {}

    def feedback(self, q) -> tuple:
        """``f_i += g w_ji a_J,j(n + d_ji)`` for every synapse, as events of every post
        neuron ``j`` over its transposed row: per (example, j) an ``axpy`` into ``f``."""
        ir, lay = self.ir, self.lay
        pre, post = ir.population(q.pre), ir.population(q.post)
        gt = self.synapses(q, transposed=True)   # rows contiguous in the pre neurons
        pn = self.pop_state(q.post, "aJ")
        fb = self.pop_state(q.pre, "fb").fb
        dom = k.PathwayDomain(gt, "pre", q.post, post.size, pre.size, pre.size, post.size,
                              f"{pn.prefix}_all", 1, 0, None, 0, False, dense=True)
        if q.has_delays:
            D1 = q.max_delay_steps + 1
            aj = [k.Load("e_d", f"{gt}_d", "syn"),
                  k.Load("e_aj", f"{lay.projs[q.name]}_ha",
                         sympy.Mod(STEP + S("e_d"), D1) * post.size + I_)]
        else:
            aj = [k.Load("e_aj", pn.aJ, "pre")]   # the event is the post neuron
        body = [k.Load("e_w", f"{gt}_w", "syn"), *aj,
                k.AtomicAdd(fb, post.neuron.gain * S("e_w") * S("e_aj"), "post")]
        return (dom, body, "arrivals", f"adjoint of the spikes through {q.name}",
                {"e_w": "float", "e_aj": "float", "e_d": "int32"})

    def arrival_adjoint(self, q) -> list:
        """``e_aj``: the post's ``a_J`` at the step where this step's spike through the
        synapse arrives (``n + d``, from the history ring with delays)."""
        pn = self.pop_state(q.post, "aJ")
        if not q.has_delays:
            return [k.Load("e_aj", pn.aJ, "post")]
        g, D1 = self.lay.projs[q.name], q.max_delay_steps + 1
        size = self.ir.population(q.post).size
        return [k.Load("e_d", f"{g}_d", "syn"),
                k.Load("e_aj", f"{g}_ha", sympy.Mod(STEP + S("e_d"), D1) * size + J_)]

    def backward(self) -> k.Plan:
        ir, lay, B, N = self.ir, self.lay, self.B, self.N
        n = STEP
        hidden = [p for p in ir.populations if not p.is_input and p.neuron.spiking]
        for p in hidden:   # this step's spikes, from the tape (newest first)
            names, cap = self.tape(p.name), S("e_cap")
            self.declare(names.ptr, "int32", p.size, batched=True, role="tape", owner=p.name)
            self.pop_state(p.name, "spk")
            ring = self.ring(f"{names.prefix}_r", p.size, 1)
            body = [k.Load("e_cap", names.cap, "scalar"), k.Load("e_p", names.ptr),
                    k.Let("e_k", sympy.Piecewise((S("e_p"), sympy.Gt(S("e_p"), 0)), (0, True)),
                          "int32"),
                    k.Load("e_at", names.tstep, (B_ * p.size + I_) * cap + S("e_k")),
                    k.Let("e_s", sympy.And(sympy.Ge(S("e_p"), 0), sympy.Eq(S("e_at"), n)),
                          "bool"),
                    k.Let("e_f", sympy.Float(0.0)),
                    k.If(S("e_s"), (k.PushEvent(ring, p.size, 1),
                                    k.Let("e_p", S("e_p") - 1, "int32"),
                                    k.Let("e_f", sympy.Float(1.0)))),
                    k.Store(names.ptr, S("e_p")), k.Store(names.spk, S("e_f"))]
            R = p.neuron.refractory_steps(ir.dt)
            if R:   # held at step n: the previous spike lies within R steps before n
                self.pop_state(p.name, "rfb")
                body += [k.Let("e_k", sympy.Piecewise((S("e_p"), sympy.Gt(S("e_p"), 0)),
                                                      (0, True)), "int32"),
                         k.Load("e_at", names.tstep, (B_ * p.size + I_) * cap + S("e_k")),
                         k.Store(names.rfb, sympy.Piecewise(
                             (1.0, sympy.And(sympy.Ge(S("e_p"), 0), sympy.Ge(n, 1),
                                             sympy.Le(n - S("e_at"), R))), (0.0, True)))]
            self.kernel(f"{names.prefix}_spikes", k.ElementDomain(p.name, p.size), body,
                        "update", f"the taped spikes of {p.name!r} at this step",
                        {"e_cap": "int32", "e_p": "int32", "e_k": "int32", "e_at": "int32",
                         "e_s": "bool", "e_f": "float"})
        if self._input_events():
            self.input_events("inp_r", 1)
        for q in ir.projections:   # a_J of the last D + 1 steps for delayed arrivals
            if not q.has_delays:
                continue
            post, D1 = ir.population(q.post), q.max_delay_steps + 1
            pn = self.pop_state(q.post, "aJ")
            hist = self.declare(f"{lay.projs[q.name]}_ha", "float", D1 * post.size,
                                batched=True, owner=q.name)
            self.kernel(f"{lay.projs[q.name]}_history", k.ElementDomain(q.post, post.size),
                        [k.Load("e_aj", pn.aJ),
                         k.Store(hist, S("e_aj"), sympy.Mod(n, D1) * post.size + I_)],
                        "arrivals", f"a_J of {q.post!r} kept for {q.name}'s delays",
                        {"e_aj": "float"})
        for q in ir.projections:   # arrivals: weight gradients of the step's spikes
            if lay.product(ir, q) or not q.learn_weight:
                continue
            g = self.synapses(q)
            post, pn = ir.population(q.post).neuron, self.pop_state(q.post, "aJ")
            ring = "inp_r" if q.pre == ir.input.name else f"{lay.pops[q.pre].prefix}_r"
            dom = self.pathway(q, ring, 1, False)
            self.declare(f"{g}_gw", "float", ir.population(q.post).size
                         * ir.population(q.pre).size, role="gradient", owner=q.name)
            body = [*self.arrival_adjoint(q),
                    k.AtomicAdd(f"{g}_gw", post.gain * S("e_aj") * (MULT if dom.mult else 1),
                                "syn")]
            self.kernel(f"{g}_arrivals", dom, body, "arrivals", f"gradient of {q.name}",
                        {"e_aj": "float", "e_d": "int32"})
        fed = [q for q in ir.projections if q.pre != ir.input.name
               and (q.post == ir.output or self.rule != "eprop")]
        for name in sorted({q.post for q in fed}):   # every post neuron as an event
            post = ir.population(name)
            ring = self.ring(f"{lay.pops[name].prefix}_all", post.size, 1)
            self.kernel(f"{lay.pops[name].prefix}_every", k.ElementDomain(name, post.size),
                        [k.PushEvent(ring, post.size, 1)], "arrivals",
                        f"every neuron of {name!r}: the rows of the dense feedback", {})
        for q in fed:   # feedback to every pre neuron (dense: the surrogate is never 0)
            self.kernel(f"{lay.projs[q.name]}_feedback", *self.feedback(q))
        for p in ir.populations:   # the adjoint of the step's reset and propagation
            if p.is_input:
                continue
            names = self.pop_state(p.name, "au", "aJ")
            pr = p.neuron.propagators(ir.dt)
            body: list = [k.Load("e_au", names.au), k.Load("e_aj", names.aJ)]
            locs = {"e_au": "float", "e_aj": "float", "e_a": "float"}
            if p.name in lay.lih:   # a_J of every step for the input products
                self.declare(lay.lih[p.name], "float", (N + 1) * B * p.size, role="tape",
                             owner=p.name)
                body.append(k.Store(lay.lih[p.name], S("e_aj"), (n * B + B_) * p.size + I_))
            a = S("e_au")
            if p.neuron.spiking:
                self.pop_state(p.name, "fb")
                self.declare(names.kick, "float", p.size, role="loss", owner=p.name)
                self.declare(names.sg, "float", (N + 1) * B * p.size, role="tape",
                             owner=p.name)
                body += [k.Load("e_sp", names.spk), k.Load("e_fb", names.fb),
                         k.Load("e_sg", names.sg, (n * B + B_) * p.size + I_),
                         k.Load("e_kk", names.kick, I_)]
                sig = S("e_fb") + S("e_kk")
                if p.neuron.adaptive:   # a = a' + s: the spike's adjoint takes a_a too
                    self.pop_state(p.name, "aa")
                    body.append(k.Load("e_aa", names.aa))
                    sig = sig + S("e_aa")
                    locs["e_aa"] = "float"
                body.append(k.Let("e_as", sig))
                a = S("e_au") * (1 - S("e_sp")) + S("e_as") * S("e_sg")
                if p.neuron.adaptive:   # ds/da' = -beta_a sigma
                    body.append(k.Let("e_aa", S("e_aa") - p.neuron.beta_a * S("e_sg")
                                      * S("e_as")))
                locs.update(e_sp="float", e_fb="float", e_sg="float", e_kk="float",
                            e_as="float")
            body.append(k.Let("e_a", a))
            if p.name == ir.output:
                self.declare("dldv", "float", (N + 1) * B * p.size, role="loss")
                body += [k.Load("e_e", "dldv", (n * B + B_) * p.size + I_),
                         k.Let("e_a", S("e_a") + S("e_e"))]
                locs["e_e"] = "float"
            decay = ((k.Let("e_aa", p.neuron.rho(ir.dt) * S("e_aa")),)
                     if p.neuron.spiking and p.neuron.adaptive else ())
            alpha, p_vi = pr.alpha, pr.p_vi
            if p.neuron.spiking and p.neuron.refractory_steps(ir.dt):
                # held: u'_n = u_{n-1}, no drive from J_{n-1}
                body.append(k.Load("e_rf", self.pop_state(p.name, "rfb").rfb))
                alpha = alpha + (1 - alpha) * S("e_rf")
                p_vi = p_vi * (1 - S("e_rf"))
                locs["e_rf"] = "float"
            body.append(self.adjoint_step(alpha, p_vi, pr.beta, *decay))
            body += [k.Store(names.au, S("e_au")), k.Store(names.aJ, S("e_aj"))]
            if decay:
                body.append(k.Store(names.aa, S("e_aa")))
            if p.neuron.spiking:
                body.append(k.Store(names.fb, sympy.Float(0.0)))
            self.kernel(f"{names.prefix}_adjoint", k.ElementDomain(p.name, p.size), body,
                        "update", f"adjoint of the reset and propagation of {p.name!r}", locs)
        return self.plan(f"{_name(ir)}_{self.rule}_backward", reverse=N)


class EpropBuilder(_RuleBuilder):
    """The forward pass with e-prop's eligibility traces and gradients (module docstring)."""

    tape_kernel = False

    def step_extra(self, p, names: PopNames):
        self.pop_state(p.name, "sgc", "spc")
        spike = sympy.Piecewise((1.0, sympy.And(sympy.Ge(_distance(p.neuron), p.neuron.theta),
                                                self.active(p))), (0.0, True))
        out = [k.Store(names.sgc, self.sigma(p)), k.Store(names.spc, spike)]
        if p.neuron.refractory_steps(self.ir.dt):   # held this step: du = eps_u
            out.append(k.Store(self.pop_state(p.name, "rfc").rfc, S("e_rf")))
        return out, {}

    def _pre_trace(self, q) -> str:
        return self.declare(f"{self.lay.projs[q.name]}_pj", "float",
                            self.ir.population(q.pre).size, batched=True, owner=q.name)

    def _grad(self, q) -> str:
        g = self.lay.projs[q.name]
        size = self.ir.population(q.pre).size * self.ir.population(q.post).size
        return self.declare(f"{g}_gb", "float", size, batched=True, role="gradient",
                            owner=q.name)

    def _adaptive_eligibility(self, nrn, traces: dict[str, str], first) -> list:
        """``el = sigma (du - beta_a da')`` with ``da' = rho eps_a`` (ALIF; LIF: ``sigma
        du``): the spike's dependence on the weight through voltage and threshold."""
        if not nrn.adaptive:
            return [k.Let("e_el", S("e_sg") * S("e_du"))]
        return [k.Load("e_ea", traces["ea"], "syn"),
                k.Let("e_ea", sympy.Piecewise((nrn.rho(self.ir.dt) * S("e_ea"), first),
                                              (0.0, True))),
                k.Let("e_el", S("e_sg") * (S("e_du") - nrn.beta_a * S("e_ea")))]

    def _history(self, q) -> None:
        """Kernels keeping the pre's spikes (counts) of the last D + 1 steps of ``q``
        (``<g>_sh``, slot ``m mod (D + 1)``), written before the traces read them."""
        ir, g = self.ir, self.lay.projs[q.name]
        pre, D1 = ir.population(q.pre), q.max_delay_steps + 1
        hist = self.declare(f"{g}_sh", "float", D1 * pre.size, batched=True, owner=q.name)
        slot = sympy.Mod(STEP, D1) * pre.size + I_
        self.kernel(f"{g}_shclear", k.ElementDomain(q.pre, pre.size),
                    [k.Store(hist, sympy.Float(0.0), slot)], "eligibility",
                    f"the oldest spikes of {q.pre!r} in {q.name}'s history dropped", {})
        if pre.is_input:
            dom = k.EventDomain(q.pre, pre.size, "inp_f", _ring_depth(ir, q.pre), mult=True)
            add = MULT
        else:
            dom = k.EventDomain(q.pre, pre.size, f"{self.lay.pops[q.pre].prefix}_f",
                                _ring_depth(ir, q.pre))
            add = 1
        self.kernel(f"{g}_shspikes", dom, [k.Store(hist, sympy.Float(1.0) * add, slot)],
                    "eligibility", f"this step's spikes of {q.pre!r} into the history", {})

    def _loss_rows(self) -> None:
        """``dldv`` and its backward-filtered ``dlf``: rows ``0 .. N + lag`` (delayed
        readouts read ``d`` steps ahead; zero after ``N``)."""
        ir = self.ir
        out = ir.population(ir.output)
        lag = max([q.max_delay_steps for q in ir.projections if q.post == ir.output],
                  default=0)
        for name in ("dldv", "dlf"):
            self.declare(name, "float", (self.N + 1 + lag) * self.B * out.size, role="loss")

    def readout_filter(self) -> k.Plan:
        """The reverse-time plan giving ``dlf[m] = g_o a_J(m)``: the readout's adjoint
        (``a' = a_u + e_n``; ``a_u <- alpha_o a'``, ``a_J <- P_o a' + beta_o a_J``), i.e.
        ``sum_{n > m} c(n - m) e_n``, the loss's future seen through the readout's response
        ``c`` to a current impulse at step ``m`` (module docstring)."""
        ir, B, n = self.ir, self.B, STEP
        out = ir.population(ir.output)
        pr, gain = out.neuron.propagators(ir.dt), out.neuron.gain
        names = self.pop_state(ir.output, "lu", "lJ")
        self._loss_rows()
        row = (n * B + B_) * out.size + I_
        body = [k.Load("e_au", names.lu), k.Load("e_aj", names.lJ),
                k.Store("dlf", gain * S("e_aj"), row),
                k.Load("e_e", "dldv", row), k.Let("e_a", S("e_au") + S("e_e")),
                self.adjoint_step(pr.alpha, pr.p_vi, pr.beta),
                k.Store(names.lu, S("e_au")), k.Store(names.lJ, S("e_aj"))]
        self.kernel(f"{names.prefix}_filter", k.ElementDomain(ir.output, out.size), body,
                    "update", f"the loss's future through the readout {ir.output!r}",
                    {"e_au": "float", "e_aj": "float", "e_e": "float", "e_a": "float"})
        return self.plan(f"{_name(ir)}_eprop_filter", reverse=self.N)

    def eprop(self) -> k.Plan:
        ir, lay, B = self.ir, self.lay, self.B
        self.forward_kernels()
        first = sympy.Ge(STEP, 1)
        out = ir.population(ir.output)
        po = out.neuron.propagators(ir.dt)
        readouts = [q for q in ir.projections if q.post == ir.output]
        learnt_hidden = [q for q in ir.projections if q.post != ir.output and q.learn_weight]
        signalled = {q.post for q in learnt_hidden}
        for q in readouts:   # X_u of the readout's pre neurons
            g = lay.projs[q.name]
            pj = self._pre_trace(q)
            xu = self.declare(f"{g}_xu", "float", ir.population(q.pre).size, batched=True,
                              owner=q.name)
            body = [k.Load("e_x", xu), k.Load("e_pj", pj),
                    k.If(first, (k.Store(xu, po.alpha * S("e_x") + po.p_vi * S("e_pj")),))]
            self.kernel(f"{g}_xu", k.ElementDomain(q.pre, ir.population(q.pre).size), body,
                        "eligibility", f"readout filter of the spikes into {q.name}",
                        {"e_x": "float", "e_pj": "float"})
        for q in readouts:   # learning signals and the readout's own (exact) gradients
            g = lay.projs[q.name]
            row = STEP
            body = [k.Load("e_w", f"{g}_w", "syn")]
            if q.has_delays:   # j's spike of step m moves the readout from m + d on
                body.append(k.Load("e_d", f"{g}_d", "syn"))
                row = STEP + S("e_d")
            locs = {"e_w": "float", "e_e": "float", "e_f": "float", "e_d": "int32"}
            if q.learn_weight:
                gb = self._grad(q)
                body += [k.Load("e_e", "dldv", (row * B + B_) * out.size + J_),
                         k.Load("e_gb", gb, "syn"), k.Load("e_x", f"{g}_xu", "pre"),
                         k.Store(gb, S("e_gb") + S("e_e") * S("e_x"), "syn")]
                locs.update(e_gb="float", e_x="float")
            if q.pre in signalled:
                ls = self.pop_state(q.pre, "ls").ls
                body += [k.Load("e_f", "dlf", (row * B + B_) * out.size + J_),
                         k.AtomicAdd(ls, S("e_w") * S("e_f"), "pre")]
            self.kernel(f"{g}_signal", self.dense_synapses(q), body, "eligibility",
                        f"learning signals through {q.name}", locs)
        self._loss_rows()
        for q in learnt_hidden:   # arrivals of delayed spikes: the pre's last D + 1 steps
            if q.has_delays:
                self._history(q)
        for q in learnt_hidden:   # eligibility traces and gradients of hidden synapses
            g, post = lay.projs[q.name], ir.population(q.post)
            pr, pn = post.neuron.propagators(ir.dt), lay.pops[q.post]
            self.declare(pn.kick, "float", post.size, role="loss", owner=q.post)
            gb = self._grad(q)
            names = ("eu",) + (("ej",) if q.has_delays else ()) + (
                ("ea",) if post.neuron.adaptive else ())
            traces = {v: self.declare(f"{g}_{v}", "float", ir.population(q.pre).size
                                      * post.size, batched=True, owner=q.name)
                      for v in names}
            if q.has_delays:   # eps_J per synapse: the pre's spikes arrive d steps later
                D1, n_pre = q.max_delay_steps + 1, ir.population(q.pre).size
                pre_trace = [k.Load("e_d", f"{g}_d", "syn"),
                             k.Load("e_ar", f"{g}_sh",
                                    sympy.Mod(STEP - S("e_d") + D1, D1) * n_pre + I_),
                             k.Load("e_pj", traces["ej"], "syn"),
                             k.Store(traces["ej"], pr.beta * S("e_pj")
                                     + post.neuron.gain * S("e_ar"), "syn")]
            else:
                pre_trace = [k.Load("e_pj", self._pre_trace(q), "pre")]
            held, free = [], first   # a held membrane keeps its eligibility: du = eps_u
            if post.neuron.refractory_steps(ir.dt):
                held = [k.Load("e_rf", pn.rfc, "post")]
                free = sympy.And(first, sympy.Lt(S("e_rf"), 0.5))
            body = [k.Load("e_eu", traces["eu"], "syn"), k.Load("e_gb", gb, "syn"),
                    *pre_trace, k.Load("e_sg", pn.sgc, "post"),
                    k.Load("e_sp", pn.spc, "post"), k.Load("e_l", pn.ls, "post"),
                    k.Load("e_kk", pn.kick, J_),
                    *held,
                    k.Let("e_du", sympy.Piecewise((pr.alpha * S("e_eu") + pr.p_vi * S("e_pj"),
                                                   free), (S("e_eu"), first), (0.0, True))),
                    *self._adaptive_eligibility(post.neuron, traces, first),
                    k.Store(gb, S("e_gb") + (S("e_l") + S("e_kk")) * S("e_el"), "syn"),
                    k.Store(traces["eu"], (1 - S("e_sp")) * S("e_du"), "syn")]
            if post.neuron.adaptive:   # eps_a <- da' + el  (a = a' + s)
                body.append(k.Store(traces["ea"], S("e_ea") + S("e_el"), "syn"))
            locs = {v: "float" for v in ("e_eu", "e_gb", "e_pj", "e_sg",
                                         "e_sp", "e_l", "e_kk", "e_du", "e_el", "e_ar",
                                         "e_ea", "e_rf")}
            locs["e_d"] = "int32"
            self.kernel(f"{g}_eligibility", self.dense_synapses(q), body, "eligibility",
                        f"e-prop eligibility of {q.name}", locs)
        for name in sorted(signalled):   # the learning signals are consumed
            p = ir.population(name)
            self.kernel(f"{lay.pops[name].prefix}_lsclear", k.ElementDomain(name, p.size),
                        [k.Store(lay.pops[name].ls, sympy.Float(0.0))], "eligibility",
                        f"learning signals of {name!r} used", {})
        for q in readouts + [q for q in learnt_hidden if not q.has_delays]:
            # the pre traces take this step's spikes
            g, post = lay.projs[q.name], ir.population(q.post).neuron
            pr, pre = post.propagators(ir.dt), ir.population(q.pre)
            pj = self._pre_trace(q)
            self.kernel(f"{g}_pjdecay", k.ElementDomain(q.pre, pre.size),
                        [k.Load("e_pj", pj), k.Store(pj, pr.beta * S("e_pj"))], "eligibility",
                        f"presynaptic trace of {q.name}", {"e_pj": "float"})
            if pre.is_input:
                dom = k.EventDomain(q.pre, pre.size, "inp_f", _ring_depth(ir, q.pre), mult=True)
                add = post.gain * MULT
            else:
                dom = k.EventDomain(q.pre, pre.size, f"{lay.pops[q.pre].prefix}_f",
                                    _ring_depth(ir, q.pre))
                add = post.gain
            self.kernel(f"{g}_pjspikes", dom, [k.Load("e_pj", pj), k.Store(pj, S("e_pj") + add)],
                        "eligibility", f"this step's spikes into {q.name}'s trace",
                        {"e_pj": "float"})
        return self.plan(f"{_name(ir)}_eprop")


def bptt_plans(ir: EventPropIR, batch: int, capacity: dict[str, int], precision: str,
               surrogate: Surrogate, input_capacity: int = 1, input_products: bool = False,
               rule: str = "bptt") -> tuple[k.Plan, k.Plan, Layout]:
    """The forward (taping ``sigma``) and reverse-time plans of BPTT; ``rule='eprop'``:
    e-prop's gradient in reverse time (the feedback through the readout only)."""
    check_rule(ir, rule)
    lay = layout(ir, batch, capacity, input_capacity, input_products)
    fwd = BPTTBuilder(ir, lay, precision, surrogate).forward()
    bwd = BPTTBuilder(ir, lay, precision, surrogate, rule).backward()
    return fwd, bwd, lay


def eprop_plans(ir: EventPropIR, batch: int, capacity: dict[str, int], precision: str,
                surrogate: Surrogate, input_capacity: int = 1, input_products: bool = False
                ) -> tuple[k.Plan, k.Plan, Layout, k.Plan]:
    """EventProp's forward plan (loss, counts, raster), e-prop's forward-time plan, their
    layout and the readout filter's reverse-time plan (run between them; its arrays are
    declared in the e-prop plan too). Input spikes are events (the traces need them per
    step)."""
    from ..eventprop.kernels import training_plans

    check_rule(ir, "eprop")
    fwd, _, lay = training_plans(ir, batch, capacity, precision, input_capacity, False)
    filt = EpropBuilder(ir, lay, precision, surrogate).readout_filter()
    b = EpropBuilder(ir, lay, precision, surrogate)
    b.arrays.update({a.name: a for a in filt.arrays})
    return fwd, b.eprop(), lay, filt
