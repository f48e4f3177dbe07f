#!/usr/bin/env bash
# Download, on a machine with network, the wheels that benchmarks/gpu_check.sh installs on
# the GPU machine (Python 3.12, x86-64, cupy-cuda13x 14.2 + torch image, no network) into
# .whl/ at the repository root (git-ignored: never commit wheels).
#
# What the GPU image lacks: brian2 and snntorch (pure Python, no Requires-Dist: needs only
# the image's torch; used by benchmarks/train_shd.py). Brian2's Requires-Dist (2.10.1):
#   numpy>=2.0, cython<3.1.4,>=0.29.21, sympy>=1.2, pyparsing>=3,!=3.2.4, jinja2>=2.7,
#   setuptools>=61, packaging (+ py-cpuinfo on Windows only)
# all of which the image has (numpy, cython, sympy, mpmath, pyparsing, jinja2, markupsafe,
# setuptools, packaging), as it has what the tests need (pytest, pytest-xdist, execnet,
# iniconfig, pluggy, pytest-timeout, hypothesis, sortedcontainers, scipy, h5py, tqdm).
# Cython's pin only matters for Brian2's cython target, which the benchmarks do not use.
# EXTRA="name==version ..." adds more wheels (for instance numpy==2.3.5 if Brian2 2.10.1
# turns out to break with the image's numpy 2.5).
#
# Usage: bash benchmarks/fetch_wheels.sh   (PYTHON=... to pick the pip)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
mkdir -p .whl
WHEELS=(brian2==2.10.1 snntorch==1.0.0 ${EXTRA:-})
"$PYTHON" -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    --platform manylinux1_x86_64 -d .whl "${WHEELS[@]}"
for w in .whl/*.whl; do
    echo "== $w"
    unzip -p "$w" '*/METADATA' | grep '^Requires-Dist' | grep -v 'extra ==' || true
done
du -sh .whl
