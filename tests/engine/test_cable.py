"""The cable solve (:mod:`gpuspike.engine.cable`) on every available engine.

References derived here, independently of the engine's scheme: one backward Euler step
as a dense linear system over the compartments *and* the section nodes (current
conservation at every node), and the closed-form steady state of a sealed finite cable.
"""

from __future__ import annotations

import ctypes
import dataclasses
import shutil
import subprocess

import numpy as np
import pytest
import sympy
from gpuspike.bridge import ir
from gpuspike.bridge.errors import ModelError
from gpuspike.bridge.model import neuron_group
from gpuspike.engine import cable
from gpuspike.engine.codegen_cuda import cuda_source, kernel_arrays, launch_config

from tests.simulate import host, simulate

S = sympy.Symbol
#: a root section of 5 compartments, two children of 3 and 4, a grandchild of 2 on the
#: first child, a single-compartment child of the root's end (like a Soma in the middle)
TREE = dict(starts=[0, 5, 8, 10, 14], ends=[5, 8, 10, 14, 15], parent=[-1, 0, 1, 0, 0])


def cell(n: int, rng: np.random.Generator, batch: int = 1, **kw) -> ir.NeuronGroupIR:
    v0 = rng.uniform(-0.08, -0.04, (batch, n) if batch > 1 else n)
    return neuron_group("cell", n, """
        v : volt
        Cm : farad/meter**2
        gl : siemens/meter**2
        I : amp/meter**2
        Ic : amp/meter**2
        """, init={"v": v0, "Cm": rng.uniform(0.005, 0.015, n),
                   "gl": rng.uniform(0.5, 2.0, n), "I": rng.uniform(-0.5, 0.5, n)}, **kw)


def passive_cable(n: int, rng: np.random.Generator, tree: dict, **kw) -> ir.CableIR:
    """Random geometry; Im = gl (EL - v) + I, so gtot = gl and I0 = gl EL + I."""
    return ir.CableIR("cell_cable", "cell", S("gl"), S("gl") * -0.07 + S("I"),
                      area=rng.uniform(1, 3, n) * 1e-10,
                      r_length_1=rng.uniform(0.5, 2, n) * 1e-6,
                      r_length_2=rng.uniform(0.5, 2, n) * 1e-6, Ri=1.5,
                      starts=np.array(tree["starts"]), ends=np.array(tree["ends"]),
                      parent=np.array(tree["parent"]), capacitive_current="Ic", **kw)


def dense_step(c: ir.CableIR, v, cm, gtot, i0, dt):
    """One backward Euler step, unknowns: compartment voltages, then node voltages."""
    n, s = len(c.area), len(c.starts)
    M = np.zeros((n + s + 1, n + s + 1))
    b = np.zeros(n + s + 1)

    def link(p, q, g):
        M[p, p] += g
        M[q, q] += g
        M[p, q] -= g
        M[q, p] -= g

    area = np.asarray(c.area)
    M[np.arange(n), np.arange(n)] += area * (cm / dt + gtot)
    b[:n] = area * (cm / dt * v + i0)
    for sec, (a, e, par) in enumerate(zip(c.starts, c.ends, c.parent)):
        for q in range(a + 1, e):
            link(q - 1, q, 1 / (c.Ri * (1 / c.r_length_2[q - 1] + 1 / c.r_length_1[q])))
        link(a, n + (0 if par < 0 else par + 1), c.r_length_1[a] / c.Ri)
        link(e - 1, n + sec + 1, c.r_length_2[e - 1] / c.Ri)
    return np.linalg.solve(M, b)[:n]


@pytest.mark.parametrize("batch", [1, 2])
def test_tree_step_equals_dense_backward_euler(engine, batch):
    """20 steps on a branched tree equal the dense backward Euler solution (float64),
    per batch entry, and Ic is Cm dv/dt of the last step."""
    rng = np.random.default_rng(7)
    n, dt = 15, 2e-5
    g = cell(n, rng, batch)
    c = passive_cable(n, rng, TREE)
    net = ir.NetworkIR(dt=dt, groups=(g,), cables=(c,), batch_size=batch)
    sim = simulate(net, engine)
    v = host(sim.arrays["cell__v"]).reshape(batch, n).copy()
    cm, gl, i = (host(sim.arrays[f"cell__{x}"]).reshape(-1, n)[0] for x in ("Cm", "gl", "I"))
    for _ in range(20):
        sim.run(1)
        old = v.copy()
        v = np.array([dense_step(c, v[b], cm, gl, gl * -0.07 + i, dt) for b in range(batch)])
        got = host(sim.arrays["cell__v"]).reshape(batch, n)
        np.testing.assert_allclose(got, v, rtol=1e-11, atol=0)
    ic = host(sim.arrays["cell__Ic"]).reshape(batch, n)
    np.testing.assert_allclose(ic, cm * (v - old) / dt, rtol=1e-6, atol=1e-9)


def test_nonlinear_current_linearised_each_step(engine):
    """A current with ``gtot`` and ``I0`` from statements (a v-dependent conductance):
    each step solves the system linearised at the step's start, as the dense reference."""
    rng = np.random.default_rng(3)
    n, dt = 15, 1e-5
    g = cell(n, rng)
    gk = S("_L_gk")
    c = passive_cable(n, rng, TREE)
    conductance = ir.Assign("_L_gk", S("gl") * (1 + 50 * (S("v") + 0.06)**2))
    c = dataclasses.replace(c, current=(conductance,), gtot=gk, I0=gk * -0.07 + S("I"))
    sim = simulate(ir.NetworkIR(dt=dt, groups=(g,), cables=(c,)), engine)
    v = sim.get("cell", "v")
    cm, gl, i = sim.get("cell", "Cm"), sim.get("cell", "gl"), sim.get("cell", "I")
    for _ in range(10):
        sim.run(1)
        gtot = gl * (1 + 50 * (v + 0.06)**2)
        v = dense_step(c, v, cm, gtot, gtot * -0.07 + i, dt)
        np.testing.assert_allclose(sim.get("cell", "v"), v, rtol=1e-11, atol=0)


def test_float32_network_solves_in_float64(engine):
    """A float32 network keeps float32 state but solves in float64: it stays close to the
    float64 network (the node system cancels nearly equal terms; in float32 it would not)."""
    rng = np.random.default_rng(11)
    g, c = cell(15, rng), passive_cable(15, rng, TREE)
    runs = {p: simulate(ir.NetworkIR(dt=2e-5, groups=(g,), cables=(c,), precision=p),
                        engine, steps=200) for p in ("float64", "float32")}
    assert runs["float32"].arrays["cell__v"].dtype == np.float32
    assert runs["float32"].arrays["cell_cable__vstar"].dtype == np.float64
    v64, v32 = runs["float64"].get("cell", "v"), runs["float32"].get("cell", "v")
    np.testing.assert_allclose(v32, v64, rtol=0, atol=2e-6)


def test_sealed_finite_cable_steady_state(engine):
    """Current I into the sealed end of a cylinder of length L (diameter d): the steady
    state is v(x) - EL = r_a lambda I cosh((L - x)/lambda) / sinh(L/lambda), r_a = 4 Ri /
    (pi d^2), lambda = sqrt(d / (4 Ri gL)). Backward Euler is stable for any dt: large
    steps reach it in a few hundred of them."""
    n, d, L, Ri, gL, EL, I = 200, 1e-6, 300e-6, 1.5, 1.0, -0.07, 2e-11
    dx = L / n
    area = np.full(n, np.pi * d * dx)
    r_half = np.full(n, np.pi / 2 * d * d / dx)  # Brian2: pi/2 d1 d2 / length
    g = neuron_group("cell", n, "v : volt\nCm : farad/meter**2\nI : amp/meter**2",
                     init={"v": EL, "Cm": 0.01, "I": np.r_[I / area[0], np.zeros(n - 1)]})
    c = ir.CableIR("cell_cable", "cell", sympy.Float(gL), gL * EL + S("I"), area, r_half,
                   r_half, Ri, np.array([0]), np.array([n]), np.array([-1]))
    sim = simulate(ir.NetworkIR(dt=1e-3, groups=(g,), cables=(c,)), engine, steps=400)
    x = (np.arange(n) + 0.5) * dx
    lam = np.sqrt(d / (4 * Ri * gL))
    ra = 4 * Ri / (np.pi * d * d)
    theory = ra * lam * I * np.cosh((L - x) / lam) / np.sinh(L / lam)
    np.testing.assert_allclose(sim.get("cell", "v") - EL, theory, rtol=1e-4)


def test_threshold_reads_the_solved_voltage(engine):
    """The cable writes v after the group's update: the threshold must not be fused into
    the update kernel (it would test the voltage of the previous step)."""
    rng = np.random.default_rng(1)
    n = 15
    g = cell(n, rng, threshold="v > -0.05")
    c = passive_cable(n, rng, TREE)
    net = ir.NetworkIR(dt=2e-5, groups=(g,), cables=(c,),
                       monitors=(ir.SpikeMonitorIR("sm", "cell"),))
    sim = simulate(net, engine)
    names = [kern.name for kern in sim.plan.step_kernels]
    assert names.index("cell_threshold") > names.index("cell_cable_voltage")
    sim.run(1)
    above = np.flatnonzero(sim.get("cell", "v") > -0.05)
    np.testing.assert_array_equal(np.sort(sim.spikes("sm").i), above)


def test_constants_and_tree_layout():
    """Levels, children and node indices of the tree; the morphology's coefficients make
    every row of the axial matrix sum to zero (no current from equal voltages) but for
    the links to the nodes."""
    rng = np.random.default_rng(0)
    c = passive_cable(15, rng, TREE)
    const = cable.constants(c)
    np.testing.assert_array_equal(const["parent"], [0, 1, 2, 1, 1])
    np.testing.assert_array_equal(const["level_start"], [0, 1, 4, 5])
    np.testing.assert_array_equal(const["level_sections"], [0, 1, 3, 4, 2])
    np.testing.assert_array_equal(const["child_start"], [0, 1, 4, 5, 5, 5, 5])
    np.testing.assert_array_equal(const["children"], [0, 1, 3, 4, 2])
    assert cable.widest_level(c) == 3
    np.testing.assert_allclose(const["lower"] + const["upper"] + const["axial"]
                               - const["eplus"] - const["eminus"], 0, atol=1e-9)


def test_cuda_source_of_the_solve():
    """The generated CUDA: one thread per section for the sweeps, one block per batch
    entry for the tree (level loops separated by barriers)."""
    rng = np.random.default_rng(0)
    net = ir.NetworkIR(dt=1e-5, groups=(cell(15, rng, 3),),
                       cables=(passive_cable(15, rng, TREE),), batch_size=3)
    sim = simulate(net, "numpy")
    src = cuda_source(sim.plan)
    assert "k_cell_cable_sections" in src and "k_cell_cable_tree" in src
    tree = src[src.index("void k_cell_cable_tree"):src.index("void k_cell_cable_voltage")]
    assert tree.count("__syncthreads()") == 4
    from gpuspike.engine.codegen_cuda import launch_config

    kern = {x.name: x for x in sim.plan.step_kernels}
    assert launch_config(kern["cell_cable_tree"], 3) == ((3, 1, 1), (32, 1, 1))
    assert launch_config(kern["cell_cable_sections"], 3)[0][0] >= 1


@pytest.mark.parametrize("change, message", [
    (dict(parent=np.array([-1, 0, 3, 0, 0])), "parent"),
    (dict(ends=np.array([5, 8, 10, 14, 16])), "cover"),
    (dict(area=np.ones(14)), "compartment"),
])
def test_bad_morphology_is_a_model_error(change, message):
    rng = np.random.default_rng(0)
    c = passive_cable(15, rng, TREE)
    fields = {f.name: getattr(c, f.name) for f in dataclasses.fields(c)}
    with pytest.raises(ModelError, match=message):
        ir.CableIR(**{**fields, **change})


def test_unknown_variable_is_a_model_error():
    rng = np.random.default_rng(0)
    c = dataclasses.replace(passive_cable(15, rng, TREE), capacitance="C")
    with pytest.raises(ModelError, match="capacitance 'C'"):
        simulate(ir.NetworkIR(dt=1e-5, groups=(cell(15, rng),), cables=(c,)), "numpy")


@pytest.mark.skipif(shutil.which("g++") is None, reason="g++ is not on PATH")
@pytest.mark.parametrize("precision", ["float64", "float32"])
def test_cuda_stages_run_on_the_host(tmp_path, precision):
    """Without a GPU: the generated CUDA of both solve stages, compiled for the CPU as
    one thread per block (barriers are then no-ops), gives the NumPy stages' results."""
    rng = np.random.default_rng(5)
    n, batch = 15, 2
    net = ir.NetworkIR(dt=2e-5, groups=(cell(n, rng, batch),),
                       cables=(passive_cable(n, rng, TREE),), batch_size=batch,
                       precision=precision)
    sim = simulate(net, "numpy")
    src = cuda_source(sim.plan)
    kernels = {x.name: x for x in sim.plan.step_kernels}
    stages = ("cell_cable_sections", "cell_cable_tree")
    parts = ["struct gs_dim3 { unsigned int x, y, z; };",
             "static gs_dim3 threadIdx, blockIdx, blockDim, gridDim;",
             "#define __global__", "#define __syncthreads()",
             'extern "C" void gs_block(unsigned int b, unsigned int grid) {',
             "    blockIdx = {b, 0, 0}; gridDim = {grid, 1, 1};",
             "    threadIdx = {0, 0, 0}; blockDim = {1, 1, 1};", "}"]
    for name in stages:
        start = src.index(f'extern "C" __global__ void k_{name}(')
        parts.append(src[start:src.index("\n}\n", start) + 3])
    (tmp_path / "stages.cpp").write_text("\n".join(parts))
    lib_path = tmp_path / "stages.so"
    subprocess.run(["g++", "-O1", "-shared", "-fPIC", "-o", str(lib_path),
                    str(tmp_path / "stages.cpp")], check=True)
    lib = ctypes.CDLL(str(lib_path))
    fns = dict(zip(kernels, sim.program.step_kernels))
    A = sim.arrays
    outputs = ("vstar", "uplus", "uminus", "node_v", "pdiag")
    for step in range(5):
        fns["cell_cable_currents"](A, step)
        B = {key: value.copy() for key, value in A.items()}
        for name in stages:
            fns[name](A, step)
            args = [B[a].ctypes.data_as(ctypes.c_void_p)
                    for a in (*kernel_arrays(kernels[name]), "__step", "__origin")]
            grid = launch_config(kernels[name], batch)[0][0]
            for block in range(grid):
                lib.gs_block(block, grid)
                getattr(lib, f"k_{name}")(*args)
        for x in outputs:
            a = cable.name("cell_cable", x)
            np.testing.assert_allclose(B[a], A[a], rtol=1e-12, err_msg=f"{x}, step {step}")
        fns["cell_cable_voltage"](A, step)
