"""The EventProp plans: what the code depends on (and what it must not), their layout."""

from __future__ import annotations

from gpuspike.engine.codegen_cpp import CppTarget, structural_key
from gpuspike.engine.codegen_cuda import cuda_source
from gpuspike.engine.eventprop.builders import LayeredConfig, layered_ir
from gpuspike.engine.eventprop.kernels import training_plans


def ir_of(delay_max: float = 0.0):
    return layered_ir(LayeredConfig(10, 8, 3, True, 1e-3, 20, delay_max=delay_max))


def test_tape_and_input_sizes_are_data_not_code():
    """A tape that grows, or a batch with more input spikes, reuses the compiled code: the
    C++ and CUDA sources (with names and comments set aside) do not depend on them."""
    ir = ir_of()
    sources = []
    for cap, n_in in ((8, 100), (64, 5000)):
        fwd, bwd, _ = training_plans(ir, 4, {"hidden": cap}, "float32", n_in)
        sources.append([structural_key(p, CppTarget(p).source()) for p in (fwd, bwd)]
                       + [cuda_source(p) for p in (fwd, bwd)])
    assert sources[0] == sources[1]


def test_backward_plan_runs_in_reverse_time_and_layouts_follow_the_engine():
    ir = ir_of(delay_max=3e-3)
    fwd, bwd, events = training_plans(ir, 2, {"hidden": 8}, "float64", 10)
    assert fwd.reverse_steps == 0 and bwd.reverse_steps == ir.n_steps
    assert "const long long _step_ = (20 - __step[0]);" in cuda_source(bwd)
    # compiled targets: every projection is a synapse group, input spikes are events
    assert set(events.projs) == {q.name for q in ir.projections} and not events.drive
    assert any(a.name == "inp__indices" for a in fwd.arrays)
    # NumPy: undelayed input projections are products (this one has delays: still events)
    _, _, numpy_layout = training_plans(ir, 2, {"hidden": 8}, "float64", 10,
                                        input_products=True)
    assert set(numpy_layout.projs) == set(events.projs) and not numpy_layout.drive
    plain = ir_of()
    _, _, products = training_plans(plain, 2, {"hidden": 8}, "float64", 10,
                                    input_products=True)
    assert "in->hidden" not in products.projs and set(products.drive) == {"hidden"}
