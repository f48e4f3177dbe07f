"""EventProp as kernel IR: the forward pass with tape and the backward pass, as two plans.

:func:`training_plans` turns an :class:`~gpuspike.bridge.training_ir.EventPropIR` into two
:class:`~gpuspike.engine.kernel_ir.Plan` objects, printed by the same generators as every
simulation (NumPy, C++, CUDA) and run by the same programs (one native call per pass on
the CPU, CUDA graphs on the GPU). Projections are synapse groups with full rows (dense
``w[pre * n_post + post]``); spikes are event lists, as in simulation.

**Forward**, program step ``n = 0 .. N`` (every population in the canonical form of
:mod:`gpuspike.bridge.adjoint`; one kernel per population does propagation and threshold)::

    propagate  n >= 1: state at the step's start kept for the tape;
               u <- alpha u + P J ;  J <- beta J ;  v_out[n] = u_out + v_rest
               (a refractory neuron, surrogate rules only: u held, not propagated, for
               R steps after a spike's; no spike while held)
    threshold  1 <= n < N: s = u >= theta: push the event, u <- v_reset
               (spiking output: first[b, k] = n at its first spike)
    tape       per event: slot k = min(count, cap - 1); step[k] = n,
               slope[k] = tau_m du/dt^- at the crossing from the states at the step's
               start and end (:mod:`.crossing`); count += 1 (overflow: count > cap,
               checked per batch)
    input      the input spikes of step n as events (a spike list per example, CSR by
               step; the count of a channel in a step is the multiplicity)
    deliver    J_post += g_post w_ji (x multiplicity for input events) for the events of
               step n, or of step n - d_ji for delayed projections

so a spike emitted in step n changes the postsynaptic current before the propagation to
step n + 1 (n + d + 1 with a delay of d steps), as the exact reference's discrete twin.

**Backward**, reverse time: the plan's ``reverse_steps = N`` makes the kernels' step
``n = N .. 0`` while the program's counter runs up (lambda holds
``lambda(t_n^+)``; EVENTPROP.md §1.3-1.7; one kernel per population does the first four)::

    propagate  n < N, backwards over (t_n, t_{n+1}] with s = dl_V/dv of step n + 1
               (outputs of voltage losses):  lambda_V <- alpha lambda_V - s (1 - alpha) ;
               lambda_I <- beta lambda_I + K lambda_V - s (1 - beta - K)
    impulse    max readout: lambda_V,out -= c / tau_m at its argmax step
    histories  the post lambdas kept for delayed arrivals (a ring of D + 1 steps, zero at
               n = N)
    spikes     the tape's spikes at n (a read pointer per neuron, newest first) -> events;
               the input counts of step n (n < N) -> events
    arrivals   per event of pre i through synapse (i, j), arrival step n + d:
                   G_w[i, j] -= tau_s g_j lambda_I,j ;  G_d[i, j] -= g_j w (lambda_I,j -
                   lambda_V,j) ;  feedback_i += g_j w (lambda_V,j - lambda_I,j)
    jump       per spike: lambda_V += [(theta - v_reset) lambda_V + feedback + dl_p/dt]
               / slope (slope <= grazing_eps: skipped and counted), then the
               regulariser's kick; feedback <- 0

Gradient and feedback sums are the kernel IR's accumulations (``AtomicAdd``): atomics on
the GPU, one fixed order per sum on the CPU (:mod:`..codegen_cpp`). On the compiled
targets input projections are event-driven like the others: spike data are sparse (SHD:
~1 % of channel-steps; latency MNIST: one spike per pixel at most), so the work is
``spikes x fan-out`` rather than the dense ``steps x batch x inputs x hidden`` of a matrix
product over the whole input (100x less on SHD), and no input product or lambda history is
stored. The NumPy engine pays per step and per kernel in Python, where one BLAS product
per batch is cheaper: there (``input_products``) an undelayed input projection is array
code: ``drive[n] = W x[n]`` for all steps before the forward pass (added to ``J`` before
the propagation to step ``n + 1``: row ``n + 1`` of the drive array) and
``G -= tau_s g sum_n lambda_I[n]^T x[n]`` after the backward pass, from the ``lambda_I``
that the plan stores at every step.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy
from gpuspike.bridge.training_ir import SPIKE_LOSSES, EventPropIR

from .. import kernel_ir as k
from .crossing import CROSSING_SLOPE

S = sympy.Symbol
STEP, B_, I_, J_, S_, MULT = (S(n) for n in ("_step_", "_b_", "_i_", "_j_", "_s_", "_mult_"))
_SLOPE = sympy.Function("gs_crossing_slope")


@dataclass(frozen=True)
class PopNames:
    """Array names of one population (prefix ``p<m>``)."""

    prefix: str

    def __getattr__(self, item: str) -> str:  # p.u -> 'p0_u'
        if item.startswith("__"):
            raise AttributeError(item)
        return f"{self.prefix}_{item}"


@dataclass(frozen=True)
class Layout:
    """Which arrays the plans hold for each IR object (for the passes' host code)."""

    pops: dict[str, PopNames]          # non-input populations
    projs: dict[str, str]              # projection name -> prefix 'q<r>' (synapse groups)
    capacity: dict[str, int]           # spiking population -> tape slots per neuron
    batch: int
    input_capacity: int                # input spike entries (distinct (step, example, channel))
    #: undelayed input projections computed as whole-batch products (post -> array names);
    #: empty when every input projection is event-driven
    drive: dict[str, str]
    lih: dict[str, str]

    def product(self, ir: EventPropIR, q) -> bool:
        """Projection ``q`` is an input product (not a synapse group of the plans)."""
        return q.post in self.drive and q.pre == ir.input.name and not q.has_delays


def _pop_size(ir: EventPropIR, name: str) -> int:
    return ir.population(name).size


def layout(ir: EventPropIR, batch: int, capacity: dict[str, int], input_capacity: int,
           input_products: bool = False) -> Layout:
    pops = {p.name: PopNames(f"p{m}") for m, p in enumerate(ir.populations) if not p.is_input}
    projs = {q.name: f"q{r}" for r, q in enumerate(ir.projections)}
    posts = sorted({q.post for q in ir.projections
                    if input_products and q.pre == ir.input.name and not q.has_delays})
    drive = {post: f"{pops[post].prefix}_drive" for post in posts}
    lih = {post: f"{pops[post].prefix}_lih" for post in posts}
    projs = {name: g for name, g in projs.items()
             if not (input_products and name.split("->")[0] == ir.input.name
                     and any(q.name == name and not q.has_delays for q in ir.projections))}
    return Layout(pops, projs, dict(capacity), batch, max(1, int(input_capacity)), drive, lih)


def _ring_depth(ir: EventPropIR, pre: str) -> int:
    return 1 + max([q.max_delay_steps for q in ir.projections if q.pre == pre], default=0)


def training_plans(ir: EventPropIR, batch: int, capacity: dict[str, int], precision: str,
                   input_capacity: int = 1, input_products: bool = False
                   ) -> tuple[k.Plan, k.Plan, Layout]:
    """The forward and backward plans of ``ir`` for batches of ``batch`` examples, tape
    rings of ``capacity[pop]`` slots per neuron, room for ``input_capacity`` input spike
    entries per batch, in ``precision`` (module docstring). ``input_products``: undelayed
    input projections as whole-batch products (the NumPy engine's choice) instead of
    events."""
    lay = layout(ir, batch, capacity, input_capacity, input_products)
    fwd = _Builder(ir, lay, precision).forward()
    bwd = _Builder(ir, lay, precision).backward()
    return fwd, bwd, lay


class _Builder:
    """Collects array declarations and kernels of one plan."""

    def __init__(self, ir: EventPropIR, lay: Layout, precision: str) -> None:
        self.ir, self.lay, self.precision = ir, lay, precision
        self.B, self.N = lay.batch, ir.n_steps
        self.arrays: dict[str, k.ArrayDecl] = {}
        self.kernels: list[k.Kernel] = []
        self.rings: list[tuple[str, int]] = []
        self.declare("__step", "int64", 1, role="runtime")
        self.declare("__origin", "int64", 1, role="runtime")

    # -- declarations ----------------------------------------------------------------------
    def declare(self, name: str, dtype: str, size: int, *, batched: bool = False,
                role: str = "state", owner: str = "") -> str:
        self.arrays[name] = k.ArrayDecl(name, dtype, int(size), batched, role, owner)
        return name

    def ring(self, name: str, size: int, depth: int, mult: bool = False) -> str:
        self.declare(f"{name}_count", "int32", depth * self.B, role="ring")
        self.declare(f"{name}_list", "int32", depth * self.B * size, role="ring")
        if mult:
            self.declare(f"{name}_mult", "int32", depth * self.B * size, role="ring")
        self.rings.append((name, depth))
        return name

    def kernel(self, name: str, domain: k.Domain, body: list, phase: str, comment: str,
               locals_: dict[str, str]) -> None:
        self.kernels.append(k.Kernel(name, domain, tuple(body), phase, comment,
                                     tuple(locals_.items())))

    def plan(self, name: str, reverse: int = 0) -> k.Plan:
        return k.Plan(name, self.precision, self.B, self.ir.dt, 0, tuple(self.arrays.values()),
                      tuple(self.kernels), tuple(self.rings), (CROSSING_SLOPE,),
                      reverse_steps=reverse)

    def pop_state(self, name: str, *extra: str) -> PopNames:
        p = self.lay.pops[name]
        n = _pop_size(self.ir, name)
        for v in extra:
            self.declare(getattr(p, v), "float", n, batched=True, owner=name)
        return p

    def tape(self, name: str) -> PopNames:
        p, n, cap = self.lay.pops[name], _pop_size(self.ir, name), self.lay.capacity[name]
        self.declare(p.count, "int32", n, batched=True, role="tape", owner=name)
        # unbatched with explicit (example, neuron, slot) indices, so that no size of them
        # appears in the code
        B = self.B
        self.declare(p.tstep, "int32", B * n * cap, role="tape", owner=name)
        self.declare(p.slope, "float", B * n * cap, role="tape", owner=name)
        # the slots per neuron as data, not text: a tape that grows reuses the compiled code
        self.declare(p.cap, "int32", 1, role="tape", owner=name)
        return p

    def synapses(self, q, transposed: bool = False) -> str:
        """Dense synapse group arrays: full rows, weights (and delays) ``[pre * n_post + post]``;
        ``transposed``: the group ``<g>t`` of rows by post neuron, ``[post * n_pre + pre]``."""
        pre, post = _pop_size(self.ir, q.pre), _pop_size(self.ir, q.post)
        g = self.lay.projs[q.name] + ("t" if transposed else "")
        self.declare(f"{g}__rowlen", "int32", post if transposed else pre, role="connectivity",
                     owner=q.name)
        self.declare(f"{g}__cols", "int32", pre * post, role="connectivity", owner=q.name)
        self.declare(f"{g}_w", "float", pre * post, role="parameter", owner=q.name)
        if q.has_delays:
            self.declare(f"{g}_d", "int32", pre * post, role="parameter", owner=q.name)
        return g

    def pathway(self, q, ring: str, depth: int, delayed: bool) -> k.PathwayDomain:
        pre, post = _pop_size(self.ir, q.pre), _pop_size(self.ir, q.post)
        g = self.lay.projs[q.name]
        return k.PathwayDomain(g, "pre", q.pre, pre, post, post, pre, ring, depth, 0,
                               f"{g}_d" if delayed else None,
                               q.max_delay_steps if delayed else 0,
                               q.pre == self.ir.input.name, dense=True)

    def _input_events(self) -> bool:
        return any(q.pre == self.ir.input.name and not self.lay.product(self.ir, q)
                   for q in self.ir.projections)

    def input_events(self, ring: str, depth: int) -> None:
        """The input spikes of this step as events, the count as multiplicity: a spike list
        per batch entry (``inp__offsets/indices/counts``, CSR by (step, example), filled per
        batch; ``capacity`` entries)."""
        ir, n_in = self.ir, self.ir.input.size
        self.declare("inp__offsets", "int32", self.N * self.B + 1, role="input")
        self.declare("inp__indices", "int32", self.lay.input_capacity, role="input")
        self.declare("inp__counts", "int32", self.lay.input_capacity, role="input")
        self.ring(ring, n_in, depth, mult=True)
        dom = k.SpikeListDomain("inp", n_in, self.N, 0, counts=True, batched=True)
        self.kernel(f"{ring}_events", dom, [k.PushEvent(ring, n_in, depth, MULT)], "input",
                    f"input spikes of {ir.input.name!r} at this step as events", {})

    # -- hooks of the other training rules (:mod:`gpuspike.engine.rules`) -----------------
    #: the spike tape's crossing slopes (EventProp's jumps need them)
    tape_kernel = True

    def step_extra(self, p, names: PopNames) -> tuple[list, dict[str, str]]:
        """Statements of the spiking population ``p``'s step kernel after the propagation
        (``e_u`` holds the voltage before the threshold) and their locals: none here."""
        return [], {}

    # -- forward ---------------------------------------------------------------------------
    def forward(self) -> k.Plan:
        self.forward_kernels()
        return self.plan(f"{_name(self.ir)}_forward")

    def forward_kernels(self) -> None:
        """The forward pass's kernels (module docstring), into :attr:`kernels`."""
        ir, B, N = self.ir, self.B, self.N
        out = ir.population(ir.output)
        self.declare("vout", "float", (N + 1) * B * out.size, role="output", owner=out.name)
        for p in ir.populations:   # propagation to this step, threshold, reset, event
            if p.is_input:
                continue
            names, nrn = self.pop_state(p.name, "u", "J"), p.neuron
            pr = nrn.propagators(ir.dt)
            u, j = S("e_u"), S("e_j")
            body: list = [k.Load("e_u", names.u), k.Load("e_j", names.J)]
            locs = {"e_u": "float", "e_j": "float", "e_un": "float"}
            if p.name in self.lay.drive:   # the input products' current of step n - 1
                self.declare(self.lay.drive[p.name], "float", (N + 1) * B * p.size,
                             role="input", owner=p.name)
                body += [k.Load("e_dr", self.lay.drive[p.name], (STEP * B + B_) * p.size + I_),
                         k.Let("e_j", j + S("e_dr"))]
                locs["e_dr"] = "float"
            if nrn.spiking:   # the state at the step's start, for the tape
                self.pop_state(p.name, "up", "Jp")
                body += [k.Store(names.up, u), k.Store(names.Jp, j)]
            held = nrn.spiking and nrn.refractory_steps(ir.dt) > 0
            if held:   # refractory: e_rf = 1 while the membrane is held at the reset
                self.pop_state(p.name, "rc")
                body += [k.Load("e_rc", names.rc),
                         k.Let("e_rf", sympy.Piecewise(
                             (1.0, sympy.And(sympy.Ge(STEP, 1), sympy.Gt(S("e_rc"), 0.5))),
                             (0.0, True)))]
                locs.update(e_rc="float", e_rf="float")
            free = sympy.Piecewise((u, sympy.Gt(S("e_rf"), 0.5)), (S("e_un"), True))
            body.append(k.If(sympy.Ge(STEP, 1), (
                k.Let("e_un", pr.alpha * u + pr.p_vi * j), k.Let("e_j", pr.beta * j),
                k.Let("e_u", free if held else S("e_un")))))
            if held:
                body.append(k.Let("e_rc", S("e_rc") - S("e_rf")))
            theta = nrn.theta
            if nrn.spiking and nrn.adaptive:   # ALIF: the threshold's adaptation decays
                self.pop_state(p.name, "a")
                body += [k.Load("e_a", names.a),
                         k.If(sympy.Ge(STEP, 1), (k.Let("e_a", nrn.rho(ir.dt) * S("e_a")),))]
                locs["e_a"] = "float"
                theta = nrn.theta + nrn.beta_a * S("e_a")
            if p.name == ir.output:
                body.append(k.Store("vout", u + nrn.v_rest, (STEP * B + B_) * p.size + I_))
            if nrn.spiking:
                extra, extra_locs = self.step_extra(p, names)
                body += extra
                locs.update(extra_locs)
                self.tape(p.name)
                depth = _ring_depth(ir, p.name)
                ring = self.ring(f"{names.prefix}_f", p.size, depth)
                spk = S("e_s")
                self.pop_state(p.name, "ue")   # the state at the crossing step's end
                after = (k.Let("e_a", S("e_a") + 1),) if nrn.adaptive else ()
                if held:
                    after += (k.Let("e_rc", sympy.Float(nrn.refractory_steps(ir.dt))),)
                free_now = (sympy.Lt(S("e_rf"), 0.5),) if held else ()
                body += [k.Let("e_s", sympy.And(sympy.Ge(u, theta), sympy.Ge(STEP, 1),
                                                sympy.Le(STEP, N - 1), *free_now), "bool"),
                         k.If(spk, (k.PushEvent(ring, p.size, depth),
                                    k.Store(names.ue, u),
                                    k.Let("e_u", sympy.Float(nrn.v_reset)), *after))]
                if nrn.adaptive:
                    body.append(k.Store(names.a, S("e_a")))
                if held:
                    body.append(k.Store(names.rc, S("e_rc")))
                locs["e_s"] = "bool"
                if p.name == ir.output:
                    self.declare("first", "int32", out.size, batched=True, role="output",
                                 owner=out.name)
                    body += [k.Load("e_f", "first"),
                             k.If(sympy.And(spk, sympy.Lt(S("e_f"), 0)),
                                  (k.Let("e_f", STEP, "int32"),)),
                             k.Store("first", S("e_f"))]
                    locs["e_f"] = "int32"
            body += [k.Store(names.u, u), k.Store(names.J, j)]
            self.kernel(f"{names.prefix}_step", k.ElementDomain(p.name, p.size), body, "update",
                        f"exact propagation, threshold and reset of {p.name!r}", locs)
        for p in ir.populations:   # the tape: one slot per spike
            if p.is_input or not p.neuron.spiking or not self.tape_kernel:
                continue
            names, nrn, cap = self.lay.pops[p.name], p.neuron, S("e_cap")
            slot = (B_ * p.size + I_) * cap + S("e_k")
            if ir.crossing == "interpolated":
                slope = _SLOPE(S("e_up"), S("e_jp"), S("e_ue"), S("e_je"), nrn.tau_m,
                               nrn.tau_s, nrn.theta, ir.dt)
            else:   # the grid sample after the crossing
                slope = S("e_je") - S("e_ue")
            body = [k.Load("e_cap", names.cap, "scalar"),
                    k.Load("e_c", names.count), k.Load("e_up", names.up),
                    k.Load("e_jp", names.Jp), k.Load("e_ue", names.ue),
                    k.Load("e_je", names.J),
                    k.Let("e_k", sympy.Piecewise((S("e_c"), sympy.Lt(S("e_c"), cap - 1)),
                                                 (cap - 1, True)), "int32"),
                    k.Store(names.tstep, STEP, slot),
                    k.Store(names.slope, slope, slot, "tau_m du/dt at the crossing"),
                    k.Store(names.count, S("e_c") + 1)]
            dom = k.EventDomain(p.name, p.size, f"{names.prefix}_f", _ring_depth(ir, p.name))
            self.kernel(f"{names.prefix}_tape", dom, body, "tape", f"spike tape of {p.name!r}",
                        {"e_cap": "int32", "e_c": "int32", "e_up": "float", "e_jp": "float",
                         "e_ue": "float", "e_je": "float", "e_k": "int32"})
        if self._input_events():
            self.input_events("inp_f", _ring_depth(ir, ir.input.name))
        for q in ir.projections:   # delivery of this step's (or delayed) events
            if self.lay.product(ir, q):
                continue
            g = self.synapses(q)
            post = ir.population(q.post)
            pre_ring = "inp_f" if q.pre == ir.input.name else f"{self.lay.pops[q.pre].prefix}_f"
            dom = self.pathway(q, pre_ring, _ring_depth(ir, q.pre), q.has_delays)
            value = post.neuron.gain * S("e_w") * (MULT if dom.mult else 1)
            body = [k.Load("e_w", f"{g}_w", "syn"),
                    k.AtomicAdd(self.lay.pops[q.post].J, value, "post")]
            self.kernel(f"{g}_deliver", dom, body, "deliver", f"spikes through {q.name}",
                        {"e_w": "float"})

    # -- backward --------------------------------------------------------------------------
    def backward(self) -> k.Plan:
        ir, B, N = self.ir, self.B, self.N
        n_rev = STEP   # the plan runs in reverse time (``reverse_steps``)
        spike_loss = ir.loss.kind in SPIKE_LOSSES
        for p in ir.populations:   # propagation to this step, impulses, histories, spikes
            if p.is_input:
                continue
            names = self.pop_state(p.name, "lv", "li")
            pr = p.neuron.propagators(ir.dt)
            lv, li = S("e_lv"), S("e_li")
            body: list = [k.Load("e_lv", names.lv), k.Load("e_li", names.li)]
            locs = {"e_lv": "float", "e_li": "float", "e_nv": "float"}
            # over (t_n, t_{n+1}] backwards, with the loss source of step n + 1
            new_v, new_i = pr.alpha * lv, pr.beta * li + pr.k_iv * lv
            inner: list = []
            if p.name == ir.output and not spike_loss and ir.loss.kind != "max_ce":
                # N + 2 rows: the NumPy engine loads row n + 1 = N + 1 too (masked out)
                self.declare("src", "float", (N + 2) * B * p.size, role="loss")
                inner.append(k.Load("e_src", "src", ((n_rev + 1) * B + B_) * p.size + I_))
                new_v = new_v - S("e_src") * (1.0 - pr.alpha)
                new_i = new_i - S("e_src") * (1.0 - pr.beta - pr.k_iv)
                locs["e_src"] = "float"
            inner += [k.Let("e_nv", new_v), k.Let("e_li", new_i), k.Let("e_lv", S("e_nv"))]
            body.append(k.If(sympy.Lt(n_rev, N), tuple(inner)))
            if p.name == ir.output and ir.loss.kind == "max_ce":
                self.declare("istep", "int32", p.size, batched=True, role="loss")
                self.declare("icoef", "float", p.size, batched=True, role="loss")
                body += [k.Load("e_is", "istep"), k.Load("e_ic", "icoef"),
                         k.If(sympy.Eq(S("e_is"), n_rev), (k.Let("e_lv", lv - S("e_ic")),))]
                locs.update(e_is="int32", e_ic="float")
            for q in ir.projections:   # pre-jump lambdas for delayed arrivals
                if q.post != p.name or not q.has_delays:
                    continue
                g, D1 = self.lay.projs[q.name], q.max_delay_steps + 1
                for var, local in (("hv", lv), ("hi", li)):
                    self.declare(f"{g}_{var}", "float", D1 * p.size, batched=True)
                    value = sympy.Piecewise((local, sympy.Lt(n_rev, N)), (0.0, True))
                    body.append(k.Store(f"{g}_{var}", value, sympy.Mod(n_rev, D1) * p.size + I_))
            if p.name in self.lay.lih:   # lambda_I of every step for the input products
                self.declare(self.lay.lih[p.name], "float", (N + 1) * B * p.size,
                             role="tape", owner=p.name)
                body.append(k.Store(self.lay.lih[p.name], li, (n_rev * B + B_) * p.size + I_))
            if p.neuron.spiking:   # the tape's spikes at n, newest first
                cap = S("e_cap")
                self.tape(p.name)
                self.declare(names.ptr, "int32", p.size, batched=True, role="tape", owner=p.name)
                ring = self.ring(f"{names.prefix}_r", p.size, 1)
                body += [k.Load("e_cap", names.cap, "scalar"), k.Load("e_p", names.ptr),
                         k.Let("e_k", sympy.Piecewise((S("e_p"), sympy.Gt(S("e_p"), 0)),
                                                      (0, True)), "int32"),
                         k.Load("e_at", names.tstep, (B_ * p.size + I_) * cap + S("e_k")),
                         k.Let("e_s", sympy.And(sympy.Ge(S("e_p"), 0),
                                                sympy.Eq(S("e_at"), n_rev)), "bool"),
                         k.If(S("e_s"), (k.PushEvent(ring, p.size, 1),
                                         k.Let("e_p", S("e_p") - 1, "int32"))),
                         k.Store(names.ptr, S("e_p"))]
                locs.update(e_cap="int32", e_p="int32", e_k="int32", e_at="int32", e_s="bool")
            body += [k.Store(names.lv, lv), k.Store(names.li, li)]
            self.kernel(f"{names.prefix}_back", k.ElementDomain(p.name, p.size), body, "update",
                        f"adjoint propagation, impulses and taped spikes of {p.name!r}", locs)
        if self._input_events():
            self.input_events("inp_r", 1)
        for q in ir.projections:   # arrivals: gradients and feedback
            if self.lay.product(ir, q):
                continue
            g = self.synapses(q)
            post = ir.population(q.post).neuron
            pn = self.lay.pops[q.post]
            ring = "inp_r" if q.pre == ir.input.name else f"{self.lay.pops[q.pre].prefix}_r"
            dom = self.pathway(q, ring, 1, False)
            m = MULT if dom.mult else 1
            body = [k.Load("e_w", f"{g}_w", "syn")]
            locs = {"e_w": "float", "e_lv": "float", "e_li": "float"}
            if q.has_delays:
                D1 = q.max_delay_steps + 1
                body += [k.Load("e_d", f"{g}_d", "syn"),
                         k.Let("e_sl", sympy.Mod(n_rev + S("e_d"), D1), "int32"),
                         k.Load("e_lv", f"{g}_hv", S("e_sl") * post_size(ir, q) + J_),
                         k.Load("e_li", f"{g}_hi", S("e_sl") * post_size(ir, q) + J_)]
                locs.update(e_d="int32", e_sl="int32")
            else:
                body += [k.Load("e_lv", pn.lv, "post"), k.Load("e_li", pn.li, "post")]
            if q.learn_weight:
                self.declare(f"{g}_gw", "float", post_size(ir, q) * _pop_size(ir, q.pre),
                             role="gradient", owner=q.name)
                body.append(k.AtomicAdd(f"{g}_gw", -post.tau_s * post.gain * S("e_li") * m,
                                        "syn"))
            if q.learn_delay:
                self.declare(f"{g}_gd", "float", post_size(ir, q) * _pop_size(ir, q.pre),
                             role="gradient", owner=q.name)
                body.append(k.AtomicAdd(f"{g}_gd", -post.gain * S("e_w") *
                                        (S("e_li") - S("e_lv")) * m, "syn"))
            if q.pre != ir.input.name:
                pre = self.pop_state(q.pre, "fb")
                body.append(k.AtomicAdd(pre.fb, post.gain * S("e_w") * (S("e_lv") - S("e_li")),
                                        "pre"))
            self.kernel(f"{g}_arrivals", dom, body, "arrivals", f"adjoint of {q.name}", locs)
        eps = max(ir.grazing_eps, 0.0)
        for p in ir.populations:   # jumps at the spikes of step n
            if p.is_input or not p.neuron.spiking:
                continue
            self.declare("skipped", "int32", 1, role="output")
            names, nrn, cap = self.lay.pops[p.name], p.neuron, S("e_cap")
            self.pop_state(p.name, "fb")
            self.declare(names.kick, "float", p.size, role="loss", owner=p.name)
            body = [k.Load("e_cap", names.cap, "scalar"), k.Load("e_p", names.ptr),
                    k.Load("e_sl", names.slope, (B_ * p.size + I_) * cap + S("e_p") + 1),
                    k.Load("e_lv", names.lv), k.Load("e_fb", names.fb),
                    k.Let("e_jmp", (nrn.theta - nrn.v_reset) * S("e_lv") + S("e_fb"))]
            locs = {"e_cap": "int32", "e_p": "int32", "e_sl": "float", "e_lv": "float",
                    "e_fb": "float", "e_jmp": "float", "e_kk": "float"}
            if p.name == ir.output and spike_loss:
                self.declare("tgrad", "float", p.size, batched=True, role="loss")
                self.declare("first", "int32", p.size, batched=True, role="output")
                body += [k.Load("e_f", "first"), k.Load("e_tg", "tgrad"),
                         k.If(sympy.Eq(S("e_f"), n_rev),
                              (k.Let("e_jmp", S("e_jmp") + S("e_tg")),))]
                locs.update(e_f="int32", e_tg="float")
            body += [k.If(sympy.Gt(S("e_sl"), eps),
                          (k.Let("e_lv", S("e_lv") + S("e_jmp") / S("e_sl")),),
                          (k.AtomicAdd("skipped", sympy.Integer(1), "scalar"),)),
                     k.Load("e_kk", names.kick, I_),
                     k.Store(names.lv, S("e_lv") - S("e_kk")),
                     k.Store(names.fb, sympy.Float(0.0))]
            dom = k.EventDomain(p.name, p.size, f"{names.prefix}_r", 1)
            self.kernel(f"{names.prefix}_jump", dom, body, "jump",
                        f"adjoint jumps at the spikes of {p.name!r}", locs)
        return self.plan(f"{_name(self.ir)}_backward", reverse=N)


def post_size(ir: EventPropIR, q) -> int:
    return _pop_size(ir, q.post)


def _name(ir: EventPropIR) -> str:
    return "eventprop_" + "_".join(str(p.size) for p in ir.populations)
