"""The complete generated CUDA module of each network, run on the host, equals NumPy.

Issue 12: the CUDA-only hooks (grid-stride thread indexing, atomics, barriers of the cable
tree and of ``gs_advance``) must have run before the first GPU run. Each case here builds a
network on the NumPy engine, copies its initial arrays, runs the same steps with the NumPy
kernels and with the network's whole ``cuda_source(plan)`` compiled by g++ through
:class:`tests.cuda_host.CudaOnHost` (real grid and block sizes, blocks in sequence,
barrier kernels as OpenMP teams; once in launch order and once with blocks and threads
backwards, two legal CUDA schedules), and compares every array of the plan after each
chunk:

- state, connectivity, input and sample arrays: within rtol 1e-12 (float64) or 1e-5
  (float32), relative to each array's largest finite value (atomic sums add in another
  order than NumPy's ``add.at``, so they may differ by rounding); integer arrays exactly;
- event-list counts exactly, the listed elements of each (slot, batch) as sets (CUDA
  appends in any order) and their multiplicities per element;
- spike-monitor bit buffers exactly; event-monitor buffers (``RecordEvent``) as sets of
  rows (CUDA appends in any order), rows matched by (step, element).

Runs are two chunks, as ``Simulation._run_chunk`` makes them: ``__origin`` set to the
chunk's first step and the monitor buffers cleared before each. A coverage test checks that
the networks here use every domain and every statement type of the kernel IR, so that a
new kind cannot go unexecuted.
"""

from __future__ import annotations

import dataclasses
import typing

import numpy as np
import pytest
import sympy
from gpuspike.bridge import ir
from gpuspike.bridge.expressions import parse_statements
from gpuspike.bridge.model import neuron_group, synapses
from gpuspike.engine import cable
from gpuspike.engine import kernel_ir as k
from gpuspike.engine.codegen_c import walk
from gpuspike.engine.runtime import Simulation

from tests import cuda_host
from tests.engine.test_cable import TREE, cell, passive_cable
from tests.engine.test_features import side_write_objects
from tests.engine.test_synapses_on_synapses import network as synapses_on_synapses_network
from tests.engine.test_user_functions import network as functions_network

pytestmark = pytest.mark.skipif(not cuda_host.available(), reason="g++ is not on PATH")

DT = 1e-4
#: steps of the two chunks of every run
CHUNKS = (24, 36)


# ----------------------------------------------------------------------------- networks
def spiking(batch: int, precision: str) -> ir.NetworkIR:
    """Noisy LIF neurons (normal draws, refractoriness, reset) driven by a Poisson source
    (uniform draws) through a homogeneous delay; recurrent synapses with heterogeneous
    delays and STDP on both pathways (pre and post source); every monitor kind."""
    rng = np.random.default_rng(11)
    n = 40
    exc = neuron_group("exc", n, """
        dv/dt = (I - v)/tau + sigma*sqrt(2/tau)*xi : 1 (unless refractory)
        I : 1 (constant)
        """, threshold="v > 1", reset="v = 0", refractory="1*ms",
        namespace={"tau": 5e-3, "sigma": 0.2},
        init={"v": rng.uniform(0, 1, n), "I": rng.uniform(1.2, 4.0, n)})
    poisson = ir.PoissonSourceIR("P", 30, ir.Constant(400.0))
    inp = synapses("inp", "P", "exc", model="w : 1", on_pre="v_post += w",
                   connector=ir.FixedProbability(0.3), delay=2 * DT, dt=DT,
                   init={"w": "0.05 + 0.01*j"}, post_variables=("v",))
    rec = synapses("rec", "exc", "exc", model="""
        w : 1
        d : second
        dapre/dt = -apre/taup : 1 (event-driven)
        dapost/dt = -apost/taup : 1 (event-driven)
        """, on_pre="v_post += w\napre += 0.01\nw = clip(w - apost, 0, 0.3)",
        on_post="apost += 0.01\nw = clip(w + apre, 0, 0.3)",
        connector=ir.FixedProbability(0.3), delay="d", max_delay=5 * DT, dt=DT,
        namespace={"taup": 3e-3}, init={"w": "0.02 + 0.001*i + 0.002*j",
                                        "d": "0.1*ms + 0.1*ms*((i + 2*j) % 5)"},
        post_variables=("v",), batched=True)
    mons = (ir.SpikeMonitorIR("spk", "exc"), ir.SpikeMonitorIR("spv", "exc", variables=("v",)),
            ir.SpikeMonitorIR("pspk", "P"), ir.RateMonitorIR("rate", "exc"),
            ir.StateMonitorIR("stv", "exc", ("v",), (0, 5, 17), every=2, when="end"),
            ir.StateMonitorIR("stw", "rec", ("w", "apre"), (0, 3, 10)))
    return ir.NetworkIR(dt=DT, groups=(exc,), sources=(poisson,), synapses=(inp, rec),
                        monitors=mons, batch_size=batch, precision=precision, seed=5)


def multiplicity(batch: int, precision: str) -> ir.NetworkIR:
    """Events with a multiplicity (NEST's): a group whose element i emits i spikes per
    step and a spike array with counts, through a homogeneous and a heterogeneous delay,
    into accumulations scaled by the multiplicity; monitors that list the events."""
    g = neuron_group("g", 5, "n : 1", threshold="n > 0")
    g = dataclasses.replace(g, update=(ir.Assign("n", sympy.Mod(sympy.Symbol("i"), 4)),),
                            events=(dataclasses.replace(g.events[0], multiplicity="n"),))
    src = ir.SpikeArraySourceIR("S", 3, np.array([0, 0, 3, 7, 7, 30]) * DT,
                                np.array([0, 1, 0, 2, 1, 0]), counts=np.array([3, 1, 2, 4, 1, 2]))
    post = neuron_group("post", 5, "x : 1\ny : 1")
    homo = synapses("homo", "g", "post", model="c : 1", on_pre="x_post += 0.5\nc += 1",
                    connector=ir.OneToOne(), delay=2 * DT, dt=DT, post_variables=("x",),
                    batched=True)
    hetero = synapses("hetero", "g", "post", model="c : 1\nd : second",
                      on_pre="y_post += 0.25 + 0.01*j\nc += 1", connector=ir.AllToAll(),
                      delay="d", max_delay=4 * DT, dt=DT,
                      init={"d": "0.1*ms*(1 + (i + j) % 4)"}, post_variables=("y",),
                      batched=True)
    drive = synapses("drive", "S", "post", on_pre="x_post += 100", connector=ir.AllToAll(),
                     delay=DT, dt=DT, post_variables=("x",))
    mons = (ir.SpikeMonitorIR("sm", "g"), ir.SpikeMonitorIR("ss", "S"),
            ir.SpikeMonitorIR("sn", "g", variables=("n",)))
    return ir.NetworkIR(dt=DT, groups=(g, post), sources=(src,),
                        synapses=(homo, hetero, drive), monitors=mons, batch_size=batch,
                        precision=precision)


def draws_and_clocks(batch: int, precision: str) -> ir.NetworkIR:
    """Binomial, Poisson and uniform draws in a neuron update; a shared variable written
    by every element (the commit kernel); a timed array; a group on a slower clock;
    operations every k steps; linked variables."""
    g = ir.NeuronGroupIR("g", 50, (ir.Variable("b"), ir.Variable("q"), ir.Variable("u"),
                                   ir.Variable("count", shared=True), ir.Variable("y")),
                         update=parse_statements(
                             "b = b + binomial(20, 0.3)\nq = q + poisson(0.5 + 0.02*i)\n"
                             "u = u + rand()\ncount = count + 1\n"
                             "y = stim(t) * (i + 1) + count", functions=("stim",)))
    slow = neuron_group("slow", 3, "dx/dt = (1 + i)/second : 1")
    slow = dataclasses.replace(slow, dt=3 * DT)
    linked = ir.NeuronGroupIR("linked", 2, (
        ir.Variable("k", "int32", init=ir.ArrayInit(np.array([2, 0]))),
        ir.Variable("vl", linked=("slow", "x"), linked_index="k"), ir.Variable("z")),
        update=parse_statements("z = vl + 0.5"))
    ta = ir.TimedArrayIR("stim", np.array([0.0, 1.0, 3.0, -2.0]), dt=5 * DT)
    ops = (ir.CustomOperationIR("double", "g", parse_statements("y = 2*y"), every=1,
                                when="end", order=1),
           ir.CustomOperationIR("tick", "g", parse_statements("b = b - 1"), every=4,
                                when="end", order=0))
    return ir.NetworkIR(dt=DT, groups=(g, slow, linked), timed_arrays=(ta,), operations=ops,
                        batch_size=batch, precision=precision, seed=9)


def summed_and_dynamics(batch: int, precision: str) -> ir.NetworkIR:
    """A summed variable (gap junctions, every synapse each step), clock-driven synapse
    dynamics, an operation on synapses, and periodic spike arrays (no counts) into pre- and
    post-source pathways with per-synapse delays (the column map)."""
    n = 6
    rng = np.random.default_rng(2)
    g = neuron_group("g", n, "dv/dt = (Igap - v)/(5*ms) : 1\nIgap : 1",
                     init={"v": rng.uniform(-1, 1, n)})
    gap = synapses("gap", "g", "g", model="w : 1\nds/dt = -s/(2*ms) : 1 (clock-driven)\n"
                   "Igap_post = w*(v_pre - v_post) + s : 1 (summed)",
                   connector=ir.AllToAll(), init={"w": rng.uniform(0, 1, n * n), "s": 1.0},
                   dt=DT, pre_variables=("v",), post_variables=("v", "Igap"), batched=True)
    pre = ir.SpikeArraySourceIR("A", 3, np.array([0, 2]) * DT, np.array([0, 2]),
                                period=7 * DT)
    post = ir.SpikeArraySourceIR("B", 4, np.array([1, 4, 4]) * DT, np.array([0, 3, 1]),
                                 period=5 * DT)
    count = synapses("count", "A", "B", model="npost : 1\nnpre : 1\nd : second",
                     on_pre="npre += 1", on_post="npost += 1 + i",
                     connector=ir.FromList(np.array([0, 2, 1, 0]), np.array([3, 1, 1, 0])),
                     delay="d", max_delay=3 * DT, init={"d": np.array([1, 0, 3, 2]) * DT},
                     dt=DT, batched=True)
    # the post pathway with the same per-synapse delays (the builder delays only on_pre)
    count = dataclasses.replace(count, pathways=tuple(
        dataclasses.replace(pw, delay=ir.HeterogeneousDelay("d_steps", 3))
        if pw.source == "post" else pw for pw in count.pathways))
    op = ir.CustomOperationIR("bump", "gap", parse_statements("w = w * 0.999"), every=5)
    return ir.NetworkIR(dt=DT, groups=(g,), sources=(pre, post), synapses=(gap, count),
                        operations=(op,), batch_size=batch, precision=precision)


def side_writes(batch: int, precision: str) -> ir.NetworkIR:
    """A uniform cross-write (``v_post = v_reset_post`` from every synapse), a shared
    variable, a summed variable over part of a group and into both sides."""
    src, post, s = side_write_objects([3 * DT, 9 * DT], [0, 1],
                                      "count = count + 1\nv = v + 0.5")
    g = neuron_group("g", 4, "v : 1\nS : 1", init={"v": np.array([1.0, 2.0, 3.0, 4.0])})
    h = neuron_group("h", 2, "v : 1\nS : 1", init={"v": np.array([10.0, 20.0])})
    both = synapses("both", "g", "h", model="S_post = v_pre : 1 (summed)\n"
                    "S_pre = v_post : 1 (summed)", connector=ir.AllToAll(), dt=DT,
                    pre_variables=("v", "S"), post_variables=("v", "S"))
    return ir.NetworkIR(dt=DT, groups=(post, g, h), sources=(src,), synapses=(s, both),
                        batch_size=batch, precision=precision)


def cable_cell(batch: int, precision: str) -> ir.NetworkIR:
    """A passive branched cable (both solve stages: sections, and the tree whose block
    synchronises with barriers) with a state monitor."""
    rng = np.random.default_rng(5)
    n = 15
    return ir.NetworkIR(dt=2e-5, groups=(cell(n, rng, batch),),
                        cables=(passive_cable(n, rng, TREE),), batch_size=batch,
                        precision=precision,
                        monitors=(ir.StateMonitorIR("stc", "cell", ("v",), (0, 9, 14)),))


def on_synapses(batch: int, precision: str) -> ir.NetworkIR:
    """Synapse groups whose pre or post side is another synapse group."""
    readc = synapses("readc", "conn", "tgt",
                     model="y_post = w_pre + 100*i_pre + 1000*j_pre : 1 (summed)",
                     connector=ir.FromList(np.array([0, 1, 2, 3]), np.array([0, 0, 1, 2])),
                     pre_variables=("w", "i", "j"), dt=DT)
    net = synapses_on_synapses_network(readc)
    return dataclasses.replace(net, batch_size=batch, precision=precision)


def user_functions(batch: int, precision: str) -> ir.NetworkIR:
    """User functions (their CUDA text) in an update, a reset and a pathway."""
    return dataclasses.replace(functions_network(), batch_size=batch, precision=precision)


NETWORKS = {f.__name__: f for f in (spiking, multiplicity, draws_and_clocks,
                                    summed_and_dynamics, side_writes, cable_cell, on_synapses,
                                    user_functions)}
CASES = [(name, batch, "float64") for name in NETWORKS for batch in (1, 3)] + [
    ("spiking", 3, "float32"), ("multiplicity", 1, "float32"), ("cable_cell", 3, "float32"),
    ("summed_and_dynamics", 1, "float32")]


# ----------------------------------------------------------------------------- comparison
#: Arrays of one engine only: the CUDA sections stage's Thomas sweep keeps its pivots in
#: ``cprime``, NumPy's banded solver (LAPACK) has no such scratch.
SCRATCH_OF_CUDA = ("cprime",)


def start_chunk(plan: k.Plan, arrays: dict[str, np.ndarray], origin: int) -> None:
    """What ``Simulation._run_chunk`` does before a chunk: the recording origin, cleared
    monitor buffers."""
    arrays["__origin"][...] = origin
    for a in plan.arrays:
        if a.role == "monitor" and not a.name.endswith("__idx"):
            arrays[a.name][...] = 0


def event_buffers(plan: k.Plan) -> dict[str, k.RecordEvent]:
    return {st.buffer: st for kern in plan.step_kernels for st in walk(kern.body)
            if isinstance(st, k.RecordEvent)}


def compare(plan: k.Plan, got: dict[str, np.ndarray], want: dict[str, np.ndarray],
            rtol: float, where: str) -> None:
    """Every array of ``plan``: ``got`` (the CUDA module) against ``want`` (NumPy)."""
    B = plan.batch_size
    rings = dict(plan.ring_depths)
    records = event_buffers(plan)
    cable_names = {kern.domain.cable for kern in plan.step_kernels
                   if isinstance(kern.domain, k.CableDomain)}
    for a in plan.arrays:
        name, x, y = a.name, got[a.name], want[a.name]
        msg = f"{where}: array {name!r} ({a.role})"
        assert x.shape == y.shape and x.dtype == y.dtype, msg
        if a.role == "ring" and name.endswith("_list"):
            ring = name[:-len("_list")]
            depth, count = rings[ring], want[f"{ring}_count"].reshape(-1)
            lst_x, lst_y = x.reshape(depth * B, -1), y.reshape(depth * B, -1)
            mult = f"{ring}_mult" in want
            for row in range(depth * B):
                ex, ey = lst_x[row, :count[row]], lst_y[row, :count[row]]
                slot, b = divmod(row, B)
                assert sorted(ex) == sorted(ey), f"{msg}, slot {slot}, batch {b}"
                if mult:  # the multiplicities of the listed elements
                    mx = got[f"{ring}_mult"].reshape(depth * B, -1)[row, ey]
                    my = want[f"{ring}_mult"].reshape(depth * B, -1)[row, ey]
                    np.testing.assert_array_equal(mx, my, err_msg=f"{msg} mult, slot {slot}")
        elif a.role == "ring" and name.endswith("_mult"):
            continue  # compared with the lists: only listed elements carry a value
        elif a.owner in cable_names and name in {cable.name(a.owner, scratch)
                                                 for scratch in SCRATCH_OF_CUDA}:
            continue
        elif name in records:
            rec = records[name]
            width = 2 + len(rec.values)
            cnt = want[name.replace("__events", "__count")].reshape(-1)
            for b in range(B):
                rows = [v.reshape(B, -1, width)[b, :cnt[b]] for v in (x, y)]
                rows = [r[np.lexsort((r[:, 1], r[:, 0]))] for r in rows]  # by (step, elem)
                np.testing.assert_array_equal(rows[0][:, :2], rows[1][:, :2],
                                              err_msg=f"{msg}, batch {b}: events")
                _close(rows[0][:, 2:], rows[1][:, 2:], rtol, f"{msg}, batch {b}: values")
        elif x.dtype.kind in "iub":
            np.testing.assert_array_equal(x, y, err_msg=msg)
        else:
            _close(x, y, rtol, msg)


def _close(x: np.ndarray, y: np.ndarray, rtol: float, msg: str) -> None:
    finite = np.abs(y[np.isfinite(y)])
    scale = float(finite.max()) if finite.size else 0.0
    np.testing.assert_allclose(x, y, rtol=rtol, atol=rtol * scale, err_msg=msg)


def copy_arrays(sim: Simulation) -> dict[str, np.ndarray]:
    return {a.name: np.array(sim.arrays[a.name], copy=True, order="C") for a in sim.plan.arrays}


def run_both(name: str, batch: int, precision: str, teams: str = "barriers",
             chunks: tuple[int, ...] = CHUNKS, reverse: tuple[bool, ...] = (False, True)
             ) -> tuple[Simulation, cuda_host.CudaOnHost]:
    """Run a network in chunks on NumPy and on the host-compiled CUDA module (once per
    schedule in ``reverse``), comparing after every chunk."""
    net = NETWORKS[name](batch, precision)
    sim = Simulation(net, engine="numpy", chunk_steps=max(chunks))
    copies = {rev: copy_arrays(sim) for rev in reverse}
    cuda = cuda_host.CudaOnHost(sim.plan, teams=teams)
    rtol = 1e-12 if precision == "float64" else 1e-5
    for n in chunks:
        origin = sim.step
        sim.run(n)
        for rev, arrays in copies.items():
            start_chunk(sim.plan, arrays, origin)
            cuda.run(arrays, n, reverse=rev)
            compare(sim.plan, arrays, sim.arrays, rtol,
                    f"{name} (batch {batch}, {precision}), steps {origin}..{sim.step - 1}"
                    f"{', blocks and threads backwards' if rev else ''}")
    return sim, cuda


# ----------------------------------------------------------------------------- tests
@pytest.mark.parametrize("name,batch,precision", [
    *CASES], ids=[f"{n}-b{b}-{p}" for n, b, p in CASES])
def test_cuda_module_on_host_equals_numpy(name, batch, precision):
    """The whole CUDA module, launched with its real grids on the host, leaves every array
    as the NumPy kernels do (see the module docstring for what is compared how)."""
    sim, cuda = run_both(name, batch, precision)
    launched = {fn for fn, *_ in cuda.launches}
    assert launched == {f"k_{kern.name}" for kern in sim.plan.step_kernels} | {"gs_advance"}


def test_every_kernel_as_a_team_with_racing_atomics():
    """Every block as an OpenMP team of blockDim threads (appends, accumulations and
    monitor bits then race for real): still NumPy's result."""
    run_both("spiking", 3, "float64", teams="all", chunks=(6, 6), reverse=(False,))


def test_barrier_kernels_run_as_teams():
    """The cable tree and ``gs_advance`` synchronise with ``__syncthreads``: they run as
    teams of blockDim threads; kernels without barriers run their threads in a loop."""
    sim = Simulation(cable_cell(3, "float64"), engine="numpy")
    cuda = cuda_host.CudaOnHost(sim.plan)
    teams = {fn: (block, team) for fn, _, _, block, team in cuda.launches}
    assert teams["k_cell_cable_tree"] == ((32, 1, 1), True)
    assert teams["gs_advance"] == ((3, 1, 1), True)
    assert teams["k_cell_cable_sections"][1] is False


def test_networks_cover_every_domain_and_statement():
    """The networks above use every domain and statement type of the kernel IR (nested
    ones included): a new kind must get a case here before it counts as executed."""
    domains: set[type] = set()
    statements: set[type] = set()
    cable_stages, pathway_kinds, spike_lists, mult_pushes = set(), set(), set(), False
    draws = set()
    for name, batch, precision in CASES:
        plan = Simulation(NETWORKS[name](batch, precision), engine="numpy").plan
        for kern in plan.step_kernels:
            dom = kern.domain
            domains.add(type(dom))
            if isinstance(dom, k.CableDomain):
                cable_stages.add(dom.stage)
            if isinstance(dom, k.PathwayDomain):
                pathway_kinds.add((dom.source, dom.delay_array is not None, dom.mult))
            if isinstance(dom, k.SpikeListDomain):
                spike_lists.add((dom.counts, dom.period_steps > 0))
            for st in walk(kern.body):
                statements.add(type(st))
                if isinstance(st, k.Draw):
                    draws.add(st.kind)
                mult_pushes |= isinstance(st, k.PushEvent) and st.multiplicity is not None
    assert domains == set(typing.get_args(k.Domain))
    assert statements == set(typing.get_args(k.KStmt))
    assert cable_stages == {"sections", "tree"}
    assert {(s, h) for s, h, _ in pathway_kinds} == {(s, h) for s in ("pre", "post")
                                                     for h in (False, True)}
    assert {m for *_, m in pathway_kinds} == {False, True}
    assert {c for c, _ in spike_lists} == {False, True}
    assert {p for _, p in spike_lists} == {False, True}
    assert draws == {"uniform", "normal", "binomial", "poisson"} and mult_pushes
