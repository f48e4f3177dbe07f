"""The C++ target (:mod:`gpuspike.engine.codegen_cpp`) against the NumPy engine.

The two CPU engines print the same kernel IR two ways (vectorised NumPy; the CUDA bodies as
native C++). On deterministic networks they must give the same spike trains and, in
float64, states within 1e-12 relative (sums may be taken in another order); stochastic ones
draw from the same Philox streams, so they agree draw for draw. And the C++ results must not
depend on the number of OpenMP threads. The networks here together execute every domain
kind and every statement kind of the kernel IR on the C++ target (checked below), so no
kernel body that the CUDA printer writes goes unexecuted on the CPU.
"""

from __future__ import annotations

import typing

import numpy as np
import pytest
from gpuspike.bridge import ir
from gpuspike.bridge.model import neuron_group, synapses
from gpuspike.engine import cpp_build
from gpuspike.engine import kernel_ir as k
from gpuspike.engine.backend import cuda_status
from gpuspike.engine.codegen_c import walk
from gpuspike.engine.codegen_cpp import cpp_source
from gpuspike.engine.runtime import Simulation

pytestmark = pytest.mark.skipif(cpp_build.find_compiler() is None,
                                reason="no working C++ compiler")

DT = 1e-4


def recurrent(batch: int = 1, precision: str = "float64") -> ir.NetworkIR:
    """Noisy LIF neurons with refractoriness, driven by a Poisson source and a spike array
    with multiplicities, recurrent connections with heterogeneous delays, plastic
    (STDP-like, pre and post pathways) input synapses, a summed variable, a shared counter,
    binomial draws in a pathway, and every kind of monitor."""
    g = neuron_group("g", 60, """
        dv/dt = (I + 0.2*xi*sqrt(10*ms) - v)/(10*ms) : 1 (unless refractory)
        I : 1
        Isum : 1
        n_spikes : 1 (shared)
        """, threshold="v > 1", reset="v = 0\nn_spikes += 1", refractory="2*ms",
        init={"I": "0.6 + 0.01*i", "v": "rand()"}, batched=True)
    p = ir.PoissonSourceIR("P", 40, ir.Constant(80.0))
    times = np.array([0, 0, 3, 7, 7, 20, 33]) * DT
    s_arr = ir.SpikeArraySourceIR("S", 5, times, np.array([0, 1, 2, 0, 4, 3, 1]),
                                  counts=np.array([2, 1, 1, 3, 1, 1, 2]))
    rec = synapses("rec", "g", "g", model="w : 1\nd : second", on_pre="v_post += w",
                   connector=ir.FixedProbability(0.2), delay="d", max_delay=3e-3,
                   init={"w": "0.05*rand()", "d": "rand()*3*ms"}, dt=DT,
                   post_variables=("v",))
    stdp = synapses("inp", "P", "g", model="""
        w : 1
        dapre/dt = -apre/(5*ms) : 1 (event-driven)
        dapost/dt = -apost/(5*ms) : 1 (event-driven)
        """, on_pre="v_post += w\napre += 0.01\nw = clip(w + apost, 0, 0.3)",
                    on_post="apost -= 0.012\nw = clip(w + apre, 0, 0.3)",
                    connector=ir.FixedProbability(0.3), delay=2 * DT,
                    init={"w": "0.1 + 0.1*rand()"}, dt=DT, post_variables=("v",),
                    batched=True)
    kick = synapses("kick", "S", "g", on_pre="v_post += 0.3*binomial_draw",
                    model="binomial_draw : 1", connector=ir.FixedNumberPost(3), dt=DT,
                    post_variables=("v",), batched=True)
    kick = _with_binomial(kick)
    gap = synapses("gap", "g", "g", model="Isum_post = 0.01*v_pre : 1 (summed)",
                   connector=ir.FixedProbability(0.1), dt=DT, pre_variables=("v",),
                   post_variables=("Isum",))
    mons = (ir.SpikeMonitorIR("sm", "g"), ir.SpikeMonitorIR("smv", "g", variables=("v",)),
            ir.RateMonitorIR("rm", "g"), ir.StateMonitorIR("st", "g", ("v", "Isum"), (0, 7, 59)),
            ir.SpikeMonitorIR("ss", "S"), ir.SpikeMonitorIR("sp", "P"))
    return ir.NetworkIR(dt=DT, groups=(g,), sources=(p, s_arr), synapses=(rec, stdp, kick, gap),
                        monitors=mons, batch_size=batch, precision=precision, seed=11)


def _with_binomial(s: ir.SynapseGroupIR) -> ir.SynapseGroupIR:
    """The kick pathway draws its size from binomial(4, 0.5) and poisson(1.5)."""
    import dataclasses

    from gpuspike.bridge.expressions import parse_statements

    body = parse_statements("binomial_draw = binomial(4, 0.5) + poisson(1.5)\n"
                            "v_post += 0.3*binomial_draw")
    pw = dataclasses.replace(s.pathways[0], statements=body)
    return dataclasses.replace(s, pathways=(pw,))


def run(net: ir.NetworkIR, engine: str, steps: int, min_work: int | None = 0,
        **kw) -> Simulation:
    """``steps`` steps in chunks of 97; on cpp, every kernel that can be split is (even
    tiny ones: ``min_work=0``) unless ``min_work`` says otherwise."""
    sim = Simulation(net, engine=engine, chunk_steps=97, **kw)
    if engine == "cpp":
        sim.program.min_work = sim.program.min_work if min_work is None else min_work
    sim.run(steps)
    return sim


def outcome(sim: Simulation) -> dict[str, np.ndarray]:
    out = {}
    for m in ("sm", "smv", "ss", "sp"):
        r = sim.spikes(m)
        order = np.lexsort((r.i, r.t, r.batch))
        out[f"{m}.i"], out[f"{m}.t"], out[f"{m}.b"] = r.i[order], r.t[order], r.batch[order]
        for v, vals in r.values.items():
            out[f"{m}.{v}"] = vals[order]
    out["rm"] = sim.rates("rm")[1]
    st = sim.states("st")
    for v, vals in st.values.items():
        out[f"st.{v}"] = vals
    for owner, var in (("g", "v"), ("g", "Isum"), ("g", "n_spikes"), ("inp", "w"),
                       ("inp", "apre")):
        out[f"{owner}.{var}"] = sim.get(owner, var)
    return out


def assert_same(a: dict, b: dict, rtol: float) -> None:
    for key in a:
        if key.endswith((".i", ".t", ".b")):
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)
        else:
            np.testing.assert_allclose(a[key], b[key], rtol=rtol, atol=1e-12, err_msg=key)


#: The compiled engines to hold against NumPy: C++ always, CuPy where a GPU is usable.
COMPILED = ["cpp"] + (["cupy"] if cuda_status()[0] else [])


@pytest.mark.parametrize("engine", COMPILED)
@pytest.mark.parametrize("batch", [1, 3])
def test_compiled_engine_equals_numpy_in_float64(batch, engine):
    """Same spike trains, states within 1e-12 (on CuPy too: the GPU's first run meets a
    reference that the CPU engines already agree on)."""
    net = recurrent(batch)
    a = run(net, "numpy", 400)
    b = run(net, engine, 400, **({"threads": 2} if engine == "cpp" else {}))
    oa, ob = outcome(a), outcome(b)
    assert oa["sm.i"].size > 100 and oa["ss.i"].size == 11 * batch  # the net is active
    assert_same(oa, ob, rtol=1e-12)


@pytest.mark.parametrize("batch", [1, 3])
def test_cpp_results_do_not_depend_on_threads(batch):
    """1, 2 and 3 threads (uneven static chunks) and the default work threshold: the same
    spike trains and bit-identical states."""
    net = recurrent(batch)
    runs = [outcome(run(net, "cpp", 300, threads=t)) for t in (1, 2, 3)]
    runs.append(outcome(run(net, "cpp", 300, threads=2, min_work=None)))
    for other in runs[1:]:
        assert_same(runs[0], other, rtol=0)


def test_cpp_float32_close_to_numpy():
    """float32: the same draws and schedule; threshold crossings may move by rounding, so
    compare the total activity and the first spikes."""
    net = recurrent(2, "float32")
    a, b = outcome(run(net, "numpy", 200)), outcome(run(net, "cpp", 200))
    assert abs(a["sm.i"].size - b["sm.i"].size) <= max(3, 0.02 * a["sm.i"].size)
    first = min(a["sm.i"].size, 20)
    np.testing.assert_array_equal(a["sm.t"][:first], b["sm.t"][:first])


def test_runs_continue_and_host_writes_take_effect():
    """Chunks, several runs and writes between them (delays too) give the NumPy result."""
    net = recurrent(1)
    sims = [Simulation(net, engine=e, chunk_steps=50) for e in ("numpy", "cpp")]
    for sim in sims:
        sim.run(120)
        sim.set("g", "I", 1.2)
        sim.set("rec", "d_steps", np.ones(len(sim.get("rec", "w")), dtype=np.int32))
        sim.run(80)
    assert_same(outcome(sims[0]), outcome(sims[1]), rtol=1e-12)


def test_generated_cpp_is_deterministic_and_executes_every_kind():
    """Same network, same source; the networks of this module cover every domain kind and
    statement kind of the kernel IR (the CUDA printer's whole vocabulary)."""
    from tests.engine.test_cable import TREE, cell, passive_cable

    assert cpp_source(Simulation(recurrent(), "numpy").plan) == cpp_source(
        Simulation(recurrent(), "numpy").plan)
    rng = np.random.default_rng(0)
    cable_net = ir.NetworkIR(dt=1e-5, groups=(cell(15, rng, 2),),
                             cables=(passive_cable(15, rng, TREE),), batch_size=2)
    seen_domains, seen_stmts = set(), set()
    for net in (recurrent(), cable_net):
        plan = run(net, "cpp", 5).plan
        for kern in plan.step_kernels:
            seen_domains.add(type(kern.domain))
            seen_stmts |= {type(st) for st in walk(kern.body)}
    assert seen_domains == set(typing.get_args(k.Domain))
    assert seen_stmts == set(typing.get_args(k.KStmt))


def test_cable_on_cpp_equals_numpy():
    from tests.engine.test_cable import TREE, cell, passive_cable

    rng = np.random.default_rng(4)
    net = ir.NetworkIR(dt=2e-5, groups=(cell(15, rng, 3, threshold="v > -0.05"),),
                       cables=(passive_cable(15, rng, TREE),), batch_size=3,
                       monitors=(ir.SpikeMonitorIR("sm", "cell"),))
    a, b = run(net, "numpy", 50), run(net, "cpp", 50, threads=2)
    np.testing.assert_allclose(b.get("cell", "v"), a.get("cell", "v"), rtol=1e-12)
    np.testing.assert_array_equal(b.spikes("sm").i, a.spikes("sm").i)


def test_compiled_library_is_cached(tmp_path, monkeypatch):
    """A second build of the same network loads the cached library; another network
    compiles anew."""
    monkeypatch.setenv("GPUSPIKE_CACHE_DIR", str(tmp_path))
    net = recurrent(1)
    first = Simulation(net, "cpp").program
    second = Simulation(net, "cpp").program
    assert not first.cached and second.cached
    assert first.library_path == second.library_path
    assert list((tmp_path / "cpp").glob("*.so")) == [first.library_path]
    other = Simulation(recurrent(2), "cpp").program
    assert not other.cached and other.library_path != first.library_path


def test_threads_from_environment(monkeypatch):
    monkeypatch.setenv("GPUSPIKE_THREADS", "3")
    assert Simulation(recurrent(1), "cpp").program.threads == 3
    monkeypatch.setenv("GPUSPIKE_THREADS", "zero")
    from gpuspike.bridge.errors import EngineUnavailable

    with pytest.raises(EngineUnavailable, match="GPUSPIKE_THREADS"):
        Simulation(recurrent(1), "cpp")


def test_network_compiled_as_parallel_units_equals_numpy(tmp_path, monkeypatch):
    """A large network compiles as several translation units at once (linked into one
    library): the same results as NumPy."""
    from gpuspike.engine.codegen_cpp import CppTarget

    monkeypatch.setenv("GPUSPIKE_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(CppTarget, "parts_for", lambda self, cores: 3)
    units = CppTarget(Simulation(recurrent(1), "numpy").plan).units(3)
    assert len(units) == 4 and all("GS_KERNEL" in u for u in units)
    net = recurrent(1)
    assert_same(outcome(run(net, "numpy", 150)), outcome(run(net, "cpp", 150)), rtol=1e-12)


def test_compile_error_names_the_network_and_keeps_the_source(tmp_path, monkeypatch):
    from gpuspike.engine import cpp_build

    monkeypatch.setenv("GPUSPIKE_CACHE_DIR", str(tmp_path))
    with pytest.raises(cpp_build.CompileError, match="'broken'.*gpuspike bug") as err:
        cpp_build.build("this is not C++", "broken")
    kept = list((tmp_path / "cpp").glob("*.cpp"))
    assert len(kept) == 1 and str(kept[0]) in str(err.value)
    assert not list((tmp_path / "cpp").glob("*.so"))
