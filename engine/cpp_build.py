"""Compiling generated C++ with the system compiler into a per-user disk cache.

A source is compiled once per (source, compiler, flags, CPU) into a shared library named by
the SHA-256 of those: the next process (or the next network of the same structure) loads
it in milliseconds, as Brian2's Cython cache does. Concurrent builds of one key are
serialised by a file lock and the library is moved into place atomically, so a half-written
file is never loaded.

The compiler is ``$CXX``, else ``g++``, else ``clang++``. OpenMP is used where the compiler
takes ``-fopenmp``. The cache is ``$GPUSPIKE_CACHE_DIR``, else
``$XDG_CACHE_HOME/gpuspike/cpp``, else ``~/.cache/gpuspike/cpp``.
"""

from __future__ import annotations

import ctypes
import fcntl
import functools
import hashlib
import json
import os
import platform
import shlex
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from gpuspike.bridge import disk_cache
from gpuspike.bridge.errors import EngineUnavailable

from .codegen_cpp import PARALLEL_MIN_WORK

#: Optimisation flags. No -ffast-math and no FMA contraction: results must equal the NumPy
#: engine's to rounding (``a*b + c`` rounded twice, NaN and infinity kept).
BASE_FLAGS = ("-O2", "-std=c++14", "-fPIC", "-shared", "-ffp-contract=off",
              "-fno-math-errno", "-Wno-unknown-pragmas", "-Wno-unused-variable",
              "-Wno-unused-but-set-variable")


class CompileError(RuntimeError):
    """The generated C++ did not compile (a bug of gpuspike's code generation)."""


@dataclass(frozen=True)
class Compiler:
    """A working C++ compiler and the flags gpuspike builds with."""

    path: str
    version: str
    openmp: bool
    flags: tuple[str, ...]

    def describe(self) -> str:
        first = self.version.splitlines()[0] if self.version else self.path
        return f"{first}{', OpenMP' if self.openmp else ', no OpenMP'}"


def cache_dir() -> Path:
    """The per-user directory of compiled libraries (created on demand)."""
    path = disk_cache.folder("cpp")
    if path is None:
        raise EngineUnavailable(f"cannot create {disk_cache.cache_root() / 'cpp'} for compiled "
                                "code; set GPUSPIKE_CACHE_DIR to a writable folder")
    return path


@functools.lru_cache(maxsize=1)
def _cpu_signature() -> str:
    """What ``-march=native`` depends on: the CPU model and its feature flags."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.machine()
    keep = [line for line in text.splitlines()
            if line.startswith(("model name", "flags", "Features"))]
    return platform.machine() + "|".join(sorted(set(keep)))


def _try(cmd: list[str], src: str, tmp: str) -> bool:
    path = os.path.join(tmp, "probe.cpp")
    with open(path, "w") as fh:
        fh.write(src)
    proc = subprocess.run(cmd + [path, "-o", os.path.join(tmp, "probe.so")],
                          capture_output=True, text=True)
    return proc.returncode == 0


def _probe_record(cmd: list[str]) -> Path | None:
    """Where the probe's result for this compiler binary is kept (None: no cache dir)."""
    try:
        st = os.stat(os.path.realpath(cmd[0]))
        key = hashlib.sha256(json.dumps([cmd, st.st_mtime_ns, st.st_size, BASE_FLAGS,
                                         _cpu_signature()]).encode()).hexdigest()[:24]
        return cache_dir() / f"compiler-{key}.json"
    except OSError:
        return None


@functools.lru_cache(maxsize=1)
def find_compiler() -> Compiler | None:
    """The compiler to use, or None where none works (probed once per compiler binary and
    machine; the result is kept in the cache directory)."""
    candidates = [os.environ["CXX"]] if os.environ.get("CXX") else ["g++", "clang++"]
    for cand in candidates:
        parts = shlex.split(cand)
        exe = shutil.which(parts[0]) if parts else None
        if exe is None:
            continue
        cmd = [exe, *parts[1:]]
        record = _probe_record(cmd)
        if record is not None and record.exists():
            try:
                data = json.loads(record.read_text())
                return Compiler(data["path"], data["version"], data["openmp"],
                                tuple(data["flags"]))
            except (OSError, ValueError, KeyError):
                pass  # a damaged record: probe again
        try:
            version = subprocess.run(cmd + ["--version"], capture_output=True, text=True,
                                     timeout=60).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            continue
        probe = "#include <cmath>\nextern \"C\" double f(double x) { return std::exp(x); }\n"
        omp_probe = ("#include <omp.h>\nextern \"C\" int f() { int n = 0;\n"
                     "#pragma omp parallel reduction(+:n)\n n += 1;\n return n; }\n")
        with tempfile.TemporaryDirectory() as tmp:
            base = [*cmd, *BASE_FLAGS]
            if not _try(base, probe, tmp):
                continue
            native = ["-march=native"] if _try([*base, "-march=native"], probe, tmp) else []
            openmp = _try([*base, "-fopenmp"], omp_probe, tmp)
        flags = (*BASE_FLAGS, *native, *(("-fopenmp",) if openmp else ()))
        comp = Compiler(" ".join(shlex.quote(c) for c in cmd), version, openmp, flags)
        if record is not None:
            tmp = record.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps({"path": comp.path, "version": version,
                                       "openmp": openmp, "flags": list(flags)}))
            os.replace(tmp, record)
        return comp
    return None


def require_compiler() -> Compiler:
    """The compiler, or :class:`EngineUnavailable` saying what to install."""
    comp = find_compiler()
    if comp is None:
        asked = os.environ.get("CXX")
        what = f"CXX={asked!r} does not compile C++" if asked else "no g++ or clang++ on PATH"
        raise EngineUnavailable(
            f"engine='cpp' needs a C++17 compiler but {what}. Install one "
            "(Debian/Ubuntu: apt-get install g++; conda: conda install gxx_linux-64; macOS: "
            "xcode-select --install), or set CXX, or use engine='numpy' / 'auto'.")
    return comp


def user_flags() -> tuple[str, ...]:
    """``$GPUSPIKE_CXXFLAGS``: flags appended to gpuspike's (e.g. ``-O2`` to compile large
    networks faster; part of the cache key)."""
    return tuple(shlex.split(os.environ.get("GPUSPIKE_CXXFLAGS", "")))


def library_key(source: str, compiler: Compiler) -> str:
    h = hashlib.sha256()
    for part in (source, compiler.path, compiler.version,
                 " ".join((*compiler.flags, *user_flags())), _cpu_signature()):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()[:32]


def build(source: str, name: str = "net", key_source: str | None = None,
          units: list[str] | None = None) -> tuple[Path, bool]:
    """(path of the shared library of ``source``, whether it came from the cache).

    ``key_source``: the text that identifies the library (default ``source``); sources
    with equal keys must build interchangeable libraries. ``units``: the same code as
    several translation units, compiled in parallel (one process each) and linked."""
    comp = require_compiler()
    key = library_key(source if key_source is None else key_source, comp)
    root = cache_dir()
    lib = root / f"{key}.so"
    if lib.exists():
        return lib, True
    with open(root / f"{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if lib.exists():  # another process built it while we waited
                return lib, True
            src_path = root / f"{key}.cpp"
            src_path.write_text(source)
            fd, tmp_lib = tempfile.mkstemp(suffix=".so", dir=root)
            os.close(fd)
            try:
                _compile(comp, src_path if not units or len(units) == 1 else units, tmp_lib)
            except CompileError as err:
                os.unlink(tmp_lib)
                raise CompileError(
                    f"the generated C++ of network {name!r} did not compile (a gpuspike bug: "
                    f"please report it with {src_path}):\n{err}") from None
            os.replace(tmp_lib, lib)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return lib, False


def _compile(comp: Compiler, source: Path | list[str], out: str) -> None:
    """Compile one source file, or several units in parallel and link them, into ``out``."""
    cxx = [*shlex.split(comp.path), *comp.flags, *user_flags()]
    if isinstance(source, Path):
        proc = subprocess.run([*cxx, str(source), "-o", out], capture_output=True, text=True)
        if proc.returncode != 0:
            raise CompileError(proc.stderr[-4000:])
        return
    with tempfile.TemporaryDirectory() as tmp:
        procs, objects = [], []
        for n, unit in enumerate(source):
            path = os.path.join(tmp, f"part{n}.cpp")
            Path(path).write_text(unit)
            objects.append(os.path.join(tmp, f"part{n}.o"))
            compile_only = [f for f in cxx if f != "-shared"]
            procs.append(subprocess.Popen([*compile_only, "-c", path, "-o", objects[-1]],
                                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                          text=True))
        errors = [p.communicate()[1] for p in procs]
        if any(p.returncode for p in procs):
            raise CompileError("\n".join(e for e in errors if e)[-4000:])
        proc = subprocess.run([*cxx, *objects, "-o", out], capture_output=True, text=True)
        if proc.returncode != 0:
            raise CompileError(proc.stderr[-4000:])


def load(path: Path) -> ctypes.CDLL:
    """The library at ``path`` with ``gs_run``'s signature declared."""
    lib = ctypes.CDLL(str(path))
    lib.gs_run.argtypes = (ctypes.POINTER(ctypes.c_void_p), ctypes.c_longlong, ctypes.c_int,
                           ctypes.c_longlong)
    lib.gs_run.restype = ctypes.c_int
    lib.gs_table_size.restype = ctypes.c_int
    return lib


def default_min_work() -> int:
    """``$GPUSPIKE_PARALLEL_MIN_WORK``, else :data:`.codegen_cpp.PARALLEL_MIN_WORK`."""
    env = os.environ.get("GPUSPIKE_PARALLEL_MIN_WORK")
    return int(env) if env else PARALLEL_MIN_WORK


def default_threads() -> int:
    """``$GPUSPIKE_THREADS``, else every core this process may use."""
    env = os.environ.get("GPUSPIKE_THREADS")
    if env:
        try:
            n = int(env)
        except ValueError:
            raise EngineUnavailable(f"GPUSPIKE_THREADS={env!r} is not a whole number") from None
        if n < 1:
            raise EngineUnavailable(f"GPUSPIKE_THREADS={env!r} must be at least 1")
        return n
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - macOS
        return max(1, os.cpu_count() or 1)
