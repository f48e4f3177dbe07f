#!/usr/bin/env bash
# The one script to run on a GPU machine (Python 3.12, cupy-cuda13x 14.2 and torch
# preinstalled, NO network): install the carried wheels, make gpuspike importable, print
# the device, run the whole test suite on the NumPy, C++ and CuPy engines (CuPy against
# NumPy and C++ in tests/engine/test_cpp_target.py), run the benchmarks on CuPy,
# write $OUT/RESULTS.md. A failing test does not stop the benchmarks or the report.
#
# Wheels to carry in .whl/ (download them on the CPU machine: `bash benchmarks/fetch_wheels.sh`):
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#       --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
#       --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
#       --platform manylinux1_x86_64 -d .whl brian2==2.10.1 snntorch==1.0.0
# Only brian2 and snntorch (pure Python, for train_shd.py; needs the image's torch) are
# missing there: brian2's Requires-Dist (numpy>=2, cython<3.1.4, sympy, pyparsing,
# jinja2, setuptools, packaging) and the test tools (pytest, pytest-xdist, pytest-timeout,
# hypothesis, sortedcontainers, execnet, iniconfig, pluggy) and h5py, tqdm, scipy are in the
# image. If brian2 2.10.1 fails with the image's numpy 2.5, add EXTRA="numpy==2.3.5" to
# fetch_wheels.sh; the Brian2 peers are skipped with a reason either way.
#
# Device-tool call (from the repository root):  run(command="bash benchmarks/gpu_check.sh",
#   carry=[".whl"], timeout_s=600). Files come back from $OUT: tests.log, bench.jsonl,
#   bench.log, env.txt, RESULTS.md.
# The PyNN microcircuit benchmark (scale 1, DC drive, run_all's "pynn_microcircuit") needs
#   PyNN and its pure-Python dependencies among the wheels: fetch them with
#   EXTRA="PyNN==0.13.0 lazyarray neo quantities" bash benchmarks/fetch_wheels.sh; without
#   them it prints a skipped line. Time-box it alone with
#   BENCH_ARGS="--only pynn_microcircuit" SKIP_TESTS=1 BENCH_TIMEOUT=500.
# Knobs: TEST_TIMEOUT (s, default 240), BENCH_TIMEOUT (s, default 330), BENCH_ARGS (extra
#   run_all.py arguments, e.g. "--only cuba"), SKIP_TESTS=1, PYTHON (default python3).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=${OUT:-$ROOT/out}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1
T_START=$(date +%s)

# ---------------------------------------------------------------- (a) packages, gpuspike
if compgen -G ".whl/*.whl" >/dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl || echo "WARNING: installing .whl/ failed" >&2
else
    echo "NOTE: no .whl/ wheels carried; Brian2 peers will be skipped if brian2 is missing" >&2
fi
# gpuspike maps bridge/ -> gpuspike.bridge etc. (setup.cfg package_dir). A symlink farm on
# PYTHONPATH is not enough: the repository root is on sys.path first (python -m, pytest's
# rootdir) and its gpuspike/ directory, which lacks bridge/ and engine/, shadows the farm.
# So a sitecustomize.py puts the package_dir mapping in front of sys.meta_path (what
# setuptools' editable finder does), without pip or network.
GS_SRC=${GS_SRC:-/tmp/gs_src}
rm -rf "$GS_SRC"
mkdir -p "$GS_SRC"
cat >"$GS_SRC/sitecustomize.py" <<EOF_SC
"""gpu_check.sh: import gpuspike from $ROOT through setup.cfg's package_dir mapping."""
import importlib.util
import os
import sys

_ROOT = "$ROOT"
_MAP = {"gpuspike": "gpuspike", "gpuspike.bridge": "bridge", "gpuspike.engine": "engine",
        "gpuspike.brian2_backend": "brian2_backend", "pyNN.gpuspike": "pynn_backend"}


class _GpuspikeFinder:
    @classmethod
    def find_spec(cls, name, path=None, target=None):
        sub = _MAP.get(name)
        if sub is None:
            return None
        where = os.path.join(_ROOT, sub)
        return importlib.util.spec_from_file_location(
            name, os.path.join(where, "__init__.py"), submodule_search_locations=[where])


sys.meta_path.insert(0, _GpuspikeFinder)
EOF_SC
export PYTHONPATH=/tmp/site:$GS_SRC${PYTHONPATH:+:$PYTHONPATH}
if ! "$PY" -c "import gpuspike.engine.runtime"; then
    echo "NOTE: the sitecustomize mapping failed; trying an editable install" >&2
    "$PY" -m pip install -q --no-index --no-deps --no-build-isolation -e . ||
        echo "WARNING: gpuspike is not importable" >&2
fi

# ---------------------------------------------------------------- (b) device and versions
{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "git: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
    nvidia-smi || echo "nvidia-smi failed"
    "$PY" - <<'EOF'
import importlib, platform
print("python", platform.python_version())
for name in ("numpy", "cupy", "sympy", "scipy", "brian2", "pytest", "hypothesis", "gpuspike"):
    try:
        m = importlib.import_module(name)
        print(name, getattr(m, "__version__", "?"), getattr(m, "__file__", ""))
    except Exception as exc:
        print(name, "NOT IMPORTABLE:", exc.__class__.__name__, exc)
try:
    from gpuspike.engine.backend import cuda_status
    print("gpuspike cuda_status:", cuda_status())
except Exception as exc:
    print("gpuspike cuda_status failed:", exc)
EOF
} 2>&1 | tee "$OUT/env.txt"
GPU_NAME=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)
GPU_NAME=${GPU_NAME:-unknown GPU}

# ---------------------------------------------------------------- (c) tests, CuPy enabled
TEST_RC=skipped
if [ "${SKIP_TESTS:-0}" != 1 ]; then
    GPUSPIKE_TEST_ENGINES=numpy,cpp,cupy timeout "${TEST_TIMEOUT:-240}" \
        "$PY" -m pytest -q -n 8 --dist loadgroup -p no:cacheprovider -o addopts="" tests 2>&1 | tee "$OUT/tests.log"
    TEST_RC=${PIPESTATUS[0]}
    echo "tests exit status: $TEST_RC (124: timed out)" | tee -a "$OUT/tests.log"
fi

# ---------------------------------------------------------------- (d) benchmarks on CuPy
# shellcheck disable=SC2086
timeout "${BENCH_TIMEOUT:-330}" "$PY" benchmarks/run_all.py --engine cupy ${BENCH_ARGS:-} \
    2>"$OUT/bench.log" | tee "$OUT/bench.jsonl"
BENCH_RC=${PIPESTATUS[0]}
echo "benchmarks exit status: $BENCH_RC (124: timed out)" | tee -a "$OUT/bench.log"
tail -n 40 "$OUT/bench.log"

# ---------------------------------------------------------------- (e) report
PRE=$(mktemp)
{
    echo "GPU: $GPU_NAME; date $(date -u +%Y-%m-%d); git $(git rev-parse --short HEAD 2>/dev/null)"
    echo
    echo "Command: \`bash benchmarks/gpu_check.sh\` (run_all.py --engine cupy ${BENCH_ARGS:-})."
    echo "Tests: exit status $TEST_RC; last line: \`$(grep -E 'passed|failed|error' "$OUT/tests.log" 2>/dev/null | tail -1)\`."
    echo "Benchmarks: exit status $BENCH_RC; wall $(( $(date +%s) - T_START )) s for the whole check."
    echo
    echo "Targets (DESIGN.md): CUBA per-step overhead <= 5 us/step; COBAHH 1e5 x 1000 <= 0.2 s"
    echo "per simulated s (Brian2CUDA published 0.80 on an H200, not measured here); 1e8"
    echo "synapses built on the device in <= 1 s (Brian2CUDA: 1.2 M/s on the host)."
} >"$PRE"
"$PY" benchmarks/results_md.py "$OUT/bench.jsonl" --title "gpuspike on $GPU_NAME" \
    --preamble "$PRE" >"$OUT/RESULTS.md" || cp "$PRE" "$OUT/RESULTS.md"
rm -f "$PRE"
cat "$OUT/RESULTS.md"
echo "gpu_check done in $(( $(date +%s) - T_START )) s: tests $TEST_RC, benchmarks $BENCH_RC"
