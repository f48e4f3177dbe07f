"""The Brian2 device ``'gpuspike'``: Brian2's runtime for set-up, the engine for the loop.

:class:`GpuspikeDevice` is Brian2's :class:`~brian2.devices.device.RuntimeDevice` with
three changes:

- ``code_object`` records what Brian2 hands over for every code object (abstract code,
  variables, indices, template) on the code object itself, and makes NumPy code objects
  that count any call of a per-step template during a run (``runtime_step_calls``: the
  proof that the engine, not Brian2, ran the time steps; it stays 0 unless the opt-in
  fallback is used);
- ``network_run`` repeats :meth:`brian2.Network.run`'s set-up (clocks, namespace at the
  caller's stack level, ``before_run``), translates the network into a NetworkIR
  (:mod:`.objects`), builds or reuses a :class:`~gpuspike.engine.runtime.Simulation`,
  pushes Brian2's current state into it, runs all steps there, writes state and
  recordings back (:mod:`.results`) and calls ``after_run``;
- ``network_store`` / ``network_restore`` also keep the engine's spike rings (spikes in
  flight on delayed pathways).

Set-up code (``synapses_create_*``, ``group_variable_set*``, reading and writing variables)
keeps running on Brian2's NumPy runtime: it is not part of the time loop.
"""

from __future__ import annotations

import gc
import sys
import time
import weakref
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from brian2.codegen.runtime.numpy_rt.numpy_rt import NumpyCodeObject
from brian2.core.network import Network, TextReport
from brian2.core.preferences import BrianPreference, prefs
from brian2.devices.device import RuntimeDevice
from brian2.units import second
from brian2.utils.logger import get_logger
from gpuspike.bridge.errors import UnsupportedFeature
from gpuspike.engine.runtime import Simulation

from .objects import PER_STEP_TEMPLATES, Binding, build_network, fingerprint
from .results import Written, pull_state, push_state, write_monitors

logger = get_logger(__name__)

if "devices.gpuspike.runtime_fallback" not in prefs:
    prefs.register_preferences(
        "devices.gpuspike",
        "Preferences of the gpuspike device",
        runtime_fallback=BrianPreference(
            default=False,
            docs="Run a network that contains objects the gpuspike engine cannot run on "
                 "Brian2's NumPy runtime instead, with a warning (off: raise "
                 "NotImplementedError naming the object).",
        ),
        engine=BrianPreference(
            default="auto",
            docs="Engine of the simulation loop: 'auto' (CuPy where a GPU is usable, else "
                 "compiled C++ where a compiler works, else NumPy), 'cupy', 'cpp' or "
                 "'numpy'.",
        ),
        threads=BrianPreference(
            default=0,
            docs="OpenMP threads of the 'cpp' engine (0: $GPUSPIKE_THREADS, else every "
                 "core).",
        ),
        chunk_steps=BrianPreference(
            default=1000,
            docs="Steps per engine chunk (CUDA-graph length and monitor buffer length).",
        ),
    )


@dataclass
class Captured:
    """What Brian2 handed over when it created one code object."""

    template_name: str
    abstract_code: dict
    variables: dict
    variable_indices: dict
    override_conditional_write: Any
    template_kwds: dict | None


def _count_per_step_calls(codeobj: Any, device: GpuspikeDevice) -> None:
    """Make ``codeobj`` count its runs while the device runs a network (instance-level, so
    that Brian2's function-implementation lookup still sees a plain NumpyCodeObject)."""
    run_block = codeobj.run_block

    def counted(block: str) -> Any:
        if device._in_run and block == "run":
            device.runtime_step_calls += 1
        return run_block(block)

    codeobj.run_block = counted


@dataclass
class _Cached:
    """A built simulation of one Brian2 network, reused while the model is unchanged."""

    network: Any  # weakref to the Brian2 Network
    key: str
    sim: Simulation
    binding: Binding
    written: Written = field(default_factory=Written)
    #: the network_operations' view of the engine during the current run
    host_call: Any = None


class GpuspikeDevice(RuntimeDevice):
    """Brian2 device running the simulation loop on the gpuspike engine.

    Use ``import gpuspike; set_device('gpuspike')`` at the top of a Brian2 script.

    Attributes
    ----------
    engine_steps : int
        Time steps run by the engine in total.
    kernels_executed : int
        Engine kernels run in total (steps x kernels per step).
    runtime_step_calls : int
        Calls of Brian2 per-step code objects during runs (0 unless the fallback ran).
    last_run : dict
        Figures of the last run: steps, kernels per step, whether the simulation was
        rebuilt, timings.
    """

    def __init__(self) -> None:
        super().__init__()
        self._in_run = False
        self._cache: dict[int, _Cached] = {}
        self._stored_rings: dict[tuple[int, str], dict[str, np.ndarray]] = {}
        self.engine_steps = 0
        self.engines_used: set[str] = set()
        self.kernels_executed = 0
        self.runtime_step_calls = 0
        self.builds = 0
        self.last_run: dict[str, Any] = {}
        self._seed: int | None = None
        #: while a network_operation runs: what it may read lazily (see _HostCall)
        self._host_call: _HostCall | None = None
        #: network_operation calls and their time (calls, seconds incl. pulls and pushes)
        self.operation_calls = 0
        self.operation_seconds = 0.0

    # ------------------------------------------------------------------ device API
    def activate(self, build_on_run: bool = True, **kwargs: Any) -> None:
        """Brian2 calls this on ``set_device``; standalone options (``directory``, ...)
        are accepted and ignored: there is nothing to build."""
        super().activate(build_on_run=build_on_run, **kwargs)

    def build(self, **kwds: Any) -> None:
        """Nothing to do: every ``run()`` already ran on the engine (run mode)."""

    def reinit(self) -> None:
        """Forget the built simulations (Brian2's tests call this between tests)."""
        self._cache.clear()
        self._stored_rings.clear()
        super().reinit()

    def seed(self, seed: int | None = None) -> None:
        """Seed NumPy (Brian2's set-up code) and the engine's counter-based generator."""
        super().seed(seed)
        self._seed = seed
        self._cache.clear()  # a new seed must change the next run's random numbers

    def code_object(self, owner: Any, name: str, abstract_code: dict, variables: dict,
                    template_name: str, variable_indices: dict, codeobj_class: Any = None,
                    template_kwds: dict | None = None, override_conditional_write: Any = None,
                    compiler_kwds: dict | None = None) -> Any:
        """Brian2's code object (NumPy), with what Brian2 handed over recorded on it."""
        codeobj = super().code_object(owner, name, abstract_code, variables, template_name,
                                      variable_indices, NumpyCodeObject, template_kwds,
                                      override_conditional_write, compiler_kwds)
        codeobj._gs_captured = Captured(template_name, dict(abstract_code), dict(variables),
                                        dict(variable_indices), override_conditional_write,
                                        template_kwds)
        if template_name in PER_STEP_TEMPLATES:
            _count_per_step_calls(codeobj, self)
        return codeobj

    def code_object_class(self, codeobj_class: Any = None,
                          fallback_pref: str = "codegen.target") -> Any:
        return NumpyCodeObject

    # ------------------------------------------------------------------ lazy state
    def get_value(self, var: Any, access_data: bool = True) -> Any:
        """Brian2's array of ``var``; inside a network_operation, brought from the engine
        the first time the operation touches it (and pushed back after the call)."""
        call = self._host_call
        if call is not None:
            call.touch(var)
        return super().get_value(var, access_data)

    def fill_with_array(self, var: Any, arr: Any) -> None:
        call = self._host_call
        if call is not None:
            call.touch(var, read=False)
        super().fill_with_array(var, arr)

    # ------------------------------------------------------------------ running
    def network_run(self, net: Network, duration: Any, report: Any = None,
                    report_period: Any = 10 * second, namespace: dict | None = None,
                    profile: bool | None = None, level: int = 0) -> None:
        """Brian2's ``Network.run`` with the time loop on the engine."""
        from brian2.core.namespace import get_local_namespace
        from brian2.groups.group import Group
        from brian2.units.fundamentalunits import fail_for_dimension_mismatch

        fail_for_dimension_mismatch(duration, second, "duration must be a time")
        fail_for_dimension_mismatch(report_period, second, "report_period must be a time")
        if duration < 0:
            raise ValueError(
                f"Function 'run' expected a non-negative duration but got '{duration}'")
        # Brian2 collects here so that objects created but never run warn. A full
        # collection costs ~80 ms per run() with SymPy and the engine in the heap; objects
        # made for this run are young: a network's first run sweeps the two young
        # generations, its later runs the youngest (a warning for an older object comes at
        # Python's next full collection).
        gc.collect(1 if id(net) not in self._cache else 0)
        all_objects = net.sorted_objects
        net._clocks = {obj.clock for obj in all_objects}
        t_start = net.t
        t_end = net.t + duration
        for clock in net._clocks:
            clock.set_interval(net.t, t_end)
        if namespace is None:
            # caller -> device_override wrapper -> here (Brian2's run has one more frame)
            namespace = get_local_namespace(level=level + 2)
        net.before_run(namespace)
        net._profiling_info = None
        if profile is None:
            profile = self.build_options.get("profile", False)
        if len(all_objects) == 0:
            return
        try:
            cached, rebuilt = self._simulation(net)
        except UnsupportedFeature as err:
            if not prefs["devices.gpuspike.runtime_fallback"]:
                raise
            logger.warn(f"gpuspike cannot run this network on its engine ({err}); running "
                        "it on Brian2's runtime instead (runtime_fallback is on)",
                        "runtime_fallback")
            self._in_run = True
            try:
                Network.run.original_function(net, duration, report=report,
                                              report_period=report_period,
                                              namespace=namespace, profile=profile)
            finally:
                self._in_run = False
            return
        sim = cached.sim
        base = min(net._clocks, key=lambda c: c.dt_)
        first = int(base.variables["timestep"].get_value()[0])
        n_steps = n_total = int(base._i_end) - first
        if sim.step != first:
            sim.step = first
            sim.arrays["__step"][...] = first
        push_state(sim, cached.binding)
        cached.host_call = None   # built for this run's binding on the first operation

        start_time = time.time()
        callback = _report_callback(report)
        if callback is not None:
            callback(0 * second, 0.0, t_start, duration)
        self._in_run = True
        try:
            chunk = n_steps if callback is None else max(1, min(n_steps, sim.chunk_steps))
            hosts = cached.binding.host_monitors
            ops = cached.binding.host_operations
            if hosts:
                _warn_host_monitors(hosts)
            flushed = [first]   # monitors written into Brian2 up to this step
            done = 0
            # Brian2's stop() (from a network_operation): the step in progress completes,
            # then the run ends there
            net._stopped = False
            Network._globally_stopped = False
            while done < n_steps:
                k = min(chunk, n_steps - done)
                if ops:
                    # operations before step s (when='start') and after it ('end')
                    step = first + done
                    self._operations(sim, cached, ops, step, net, after=False, flushed=flushed)
                    k = min(k, _until_next_operation(ops, step, k))
                    if k == 0 or _stopped(net):
                        k = 1
                if hosts:
                    k = _until_next_sample(hosts, first + done, k)
                    if k == 0:
                        _sample(sim, hosts, first + done, after=False)
                        k = 1
                        sim.run(1)
                        _sample(sim, hosts, first + done, after=True)
                        done += 1
                        if ops:
                            self._operations(sim, cached, ops, first + done - 1, net,
                                             after=True, flushed=flushed)
                        if _stopped(net):
                            break
                        continue
                sim.run(k)
                done += k
                if ops:
                    self._operations(sim, cached, ops, first + done - 1, net, after=True,
                                     flushed=flushed)
                    if _stopped(net):
                        break
                if callback is not None and done < n_steps:
                    callback((time.time() - start_time) * second, done / n_steps, t_start,
                             duration)
        finally:
            self._in_run = False
        end_time = time.time()

        pull_state(sim, cached.binding)
        start = flushed[0] if ops else first   # operations may have written some already
        write_monitors(sim, cached.binding, cached.written, start, first + done - start)
        stopped = done < n_steps
        for clock in net._clocks:
            end = clock._i_end if not stopped else int(round(
                (first + done) * float(base.dt_) / float(clock.dt_)))
            clock.variables["timestep"].set_value(end)
            clock.variables["t"].set_value(end * clock.dt_)
        net.t_ = float(t_end) if not stopped else (first + done) * float(base.dt_)
        n_steps = done
        kernels = len(sim.plan.step_kernels) if hasattr(sim.plan, "step_kernels") else len(
            sim.plan.kernels)
        self.engine_steps += n_steps
        self.engines_used.add(sim.backend.name)
        self.kernels_executed += n_steps * kernels
        self.last_run = {"steps": n_steps, "kernels_per_step": kernels, "rebuilt": rebuilt,
                         "engine": sim.backend.name, "wall_s": end_time - start_time,
                         **sim.timings}
        self._last_run_time = end_time - start_time
        self._last_run_completed_fraction = 1.0 if not stopped else done / max(1, n_total)
        for obj in all_objects:
            if isinstance(obj, Group):
                obj._check_for_invalid_states()
        if profile:
            net._profiling_info = _profiling_info(all_objects, end_time - start_time)
        if callback is not None:
            callback((end_time - start_time) * second, 1.0, t_start, duration)
        net.after_run()

    def _operations(self, sim: Simulation, cached: _Cached, ops: list[tuple], step: int,
                    net: Network, *, after: bool, flushed: list[int]) -> None:
        """Call the network_operations due at ``step`` (before it runs, or after it), each
        seeing the engine's state: what it reads is brought to the host on first touch,
        what it touched goes back to the engine after the call."""
        due = [op for op, every, when_after in ops if when_after == after and step % every == 0]
        if not due:
            return
        t0 = time.perf_counter()
        call = cached.host_call
        if call is None or call.sim is not sim:
            call = cached.host_call = _HostCall(sim, cached, flushed)
        call.step, call.flushed = step + (1 if after else 0), flushed
        for op in due:
            for clock in (op.clock, *net._clocks):   # the time the operation sees
                clock.variables["timestep"].get_value()[0] = int(round(
                    step * sim.net.dt / float(clock.dt_)))
                clock.variables["t"].get_value()[0] = step * sim.net.dt
            self._host_call = call
            try:
                op.run()
            finally:
                self._host_call = None
            call.push()
        self.operation_calls += len(due)
        self.operation_seconds += time.perf_counter() - t0

    def _simulation(self, net: Network) -> tuple[_Cached, bool]:
        """The cached simulation of ``net`` if its model is unchanged, else a new one."""
        dt = float(min(c.dt_ for c in net._clocks))
        precision = "float32" if prefs["core.default_float_dtype"] == np.float32 else "float64"
        net_ir, binding = build_network(net, dt, precision, seed=0)
        key = fingerprint(net_ir)
        cached = self._cache.get(id(net))
        if cached is not None and cached.network() is net and cached.key == key:
            cached.binding = binding
            return cached, False
        if self._seed is not None:
            seed = int(self._seed) + 1000003 * self.builds
        else:
            seed = int(np.random.randint(0, 2**31 - 1))
        import dataclasses

        net_ir = dataclasses.replace(net_ir, seed=seed)
        sim = Simulation(net_ir, engine=prefs["devices.gpuspike.engine"],
                         chunk_steps=int(prefs["devices.gpuspike.chunk_steps"]),
                         threads=int(prefs["devices.gpuspike.threads"]) or None)
        self.builds += 1
        cached = _Cached(weakref.ref(net), key, sim, binding)
        if id(net) in self._cache:
            _carry_rings(self._cache[id(net)].sim, sim)
        self._cache[id(net)] = cached
        return cached, True

    # ------------------------------------------------------------------ store / restore
    def network_store(self, net: Network, name: str = "default", filename: str | None = None
                      ) -> None:
        """Brian2's store, plus the engine's spike rings (spikes still in flight)."""
        Network.store.original_function(net, name=name, filename=filename)
        cached = self._cache.get(id(net))
        if cached is not None:
            self._stored_rings[(id(net), name)] = {
                k: np.array(cached.sim._to_host(v)) for k, v in cached.sim.arrays.items()
                if "__ring_" in k}

    def network_restore(self, net: Network, name: str = "default",
                        filename: str | None = None, restore_random_state: bool = False
                        ) -> None:
        """Brian2's restore; the engine state is pushed again at the next run."""
        Network.restore.original_function(net, name=name, filename=filename,
                                          restore_random_state=restore_random_state)
        cached = self._cache.get(id(net))
        rings = self._stored_rings.get((id(net), name))
        if cached is not None:
            for k, v in cached.sim.arrays.items():
                if "__ring_" in k:
                    if rings is not None and k in rings and rings[k].shape == v.shape:
                        v[...] = cached.sim.xp.asarray(rings[k])
                    else:
                        v[...] = 0


def _profiling_info(objects: list[Any], seconds: float) -> list[tuple[str, Any]]:
    """Brian2's ``profiling_info``: (name, time) of every object that ran per step.

    NOTE: the engine runs the objects fused into kernels and does not time them one by
    one: each object gets an equal share of the run's wall time."""
    from brian2.groups.group import CodeRunner

    runners = [o.name for o in objects if o.active and isinstance(o, CodeRunner)]
    share = seconds / max(1, len(runners))
    return [(name, share * second) for name in runners]


class _HostCall:
    """One network_operation call's view of the engine (what it touched is pulled once,
    pushed after the call). Monitors are written into Brian2 up to the call's step the
    first time the operation reads one of them."""

    def __init__(self, sim: Simulation, cached: _Cached, flushed: list[int]) -> None:
        self.sim, self.cached, self.step, self.flushed = sim, cached, 0, flushed
        binding = cached.binding
        self.keys = {id(v): key for key, v in binding.state.items()}
        # variables know their owner through a weak proxy: compare names
        self.monitors = {m.name for m, _kind, _extra in binding.monitors.values()}
        self.touched: dict[int, tuple[Any, tuple[str, str]]] = {}
        #: variables without an engine array (compiled in as constants): their values
        #: when first touched, to catch a write that the engine would not see
        self.constants: dict[int, tuple[Any, np.ndarray]] = {}
        self.seen: set[int] = set()

    def touch(self, var: Any, read: bool = True) -> None:
        if id(var) in self.seen:
            return
        self.seen.add(id(var))
        key = self.keys.get(id(var))
        if key is not None:
            self.touched[id(var)] = (var, key)
            if read:
                target = var.get_value()
                target[...] = self.sim.get(*key).astype(target.dtype, copy=False)
        elif getattr(getattr(var, "owner", None), "name", None) in self.monitors:
            if self.flushed[0] < self.step:
                write_monitors(self.sim, self.cached.binding, self.cached.written,
                               self.flushed[0], self.step - self.flushed[0])
                self.flushed[0] = self.step
        elif not getattr(var, "read_only", True) and hasattr(var, "get_value"):
            self.constants[id(var)] = (var, np.array(var.get_value(), copy=True))

    def push(self) -> None:
        """What the operation touched -> the engine (read-only variables stay)."""
        for var, key in self.touched.values():
            if not var.read_only:
                self.sim.set(*key, np.asarray(var.get_value()))
        for var, before in self.constants.values():
            if not np.array_equal(np.asarray(var.get_value()), before):
                owner = getattr(getattr(var, "owner", None), "name", "?")
                raise UnsupportedFeature(
                    f"a network_operation changed {owner}.{var.name} during a run, which the "
                    "gpuspike engine compiled into its kernels as a constant; change it "
                    "between runs (a new run rebuilds), or make it a state variable")
        self.touched.clear()
        self.constants.clear()
        self.seen.clear()


def _stopped(net: Network) -> bool:
    """Whether Brian2's ``stop()`` (or ``net.stop()``) was called during this run."""
    return bool(net._stopped or Network._globally_stopped)


def _until_next_operation(ops: list[tuple], step: int, limit: int) -> int:
    """Steps that can run from ``step`` before an operation is due (0: before this one)."""
    best = limit
    for _op, every, after in ops:
        nxt = -(-step // every) * every          # the next due step at or after ``step``
        if after:                                # runs after that step: include it
            best = min(best, nxt - step + 1)
        else:
            best = min(best, nxt - step if nxt > step else every)
    return max(1, best)


def _until_next_sample(hosts: list[tuple], step: int, limit: int) -> int:
    """Steps that can run before a host-recorded monitor needs a sample (0: this one)."""
    best = limit
    for _mon, _owner, _vars, _idx, every, _after in hosts:
        nxt = -(-step // every) * every
        best = min(best, nxt - step)
    return max(0, best)


def _sample(sim: Simulation, hosts: list[tuple], step: int, after: bool) -> None:
    """Record the host monitors that sample at ``step`` (before or after it runs)."""
    for mon, owner, variables, idx, every, when_after in hosts:
        if step % every or when_after != after:
            continue
        old = int(mon.variables["N"].get_value()[0])
        mon.resize(old + 1)
        mon.variables["t"].get_value()[old] = step * sim.net.dt
        for var in variables:
            mon.variables[var].get_value()[old, :] = sim.get(owner, var)[idx]


def _warn_host_monitors(hosts: list[tuple]) -> None:
    names = ", ".join(repr(h[0].name) for h in hosts)
    logger.warn(f"StateMonitor(s) {names} record Synapses: gpuspike pulls their variables "
                "from the engine at every recorded step, which is slow (record less often "
                "with dt=... to speed it up)", "host_monitor", once=True)


def _carry_rings(old: Simulation, new: Simulation) -> None:
    """Spikes in flight survive a rebuild where the ring of a group kept its shape."""
    for k, v in old.arrays.items():
        if "__ring_" in k and k in new.arrays and new.arrays[k].shape == v.shape:
            new.arrays[k][...] = v


def _report_callback(report: Any) -> Any:
    if report is None:
        return None
    if report in ("text", "stdout"):
        return TextReport(sys.stdout)
    if report == "stderr":
        return TextReport(sys.stderr)
    if isinstance(report, str):
        raise ValueError(f'Do not know how to handle report argument "{report}".')
    if callable(report):
        return report
    raise TypeError("Do not know how to handle report argument, it has to be one of 'text', "
                    f"'stdout', 'stderr', or a callable function/object, but it is of type "
                    f"{type(report)}")
