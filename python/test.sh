#!/usr/bin/env bash
# The Python package's tests: a virtualenv (python/.venv) with maturin, pytest, NumPy and Ray,
# the package built into it from this checkout (release), then pytest, whose Ray tests start a
# local cluster of two CPUs. PyTorch is not installed here (a multi-GB wheel): the PyTorch test
# runs where it is (`pip install torch` into python/.venv) and says it was skipped otherwise.
set -euo pipefail
cd "$(dirname "$0")"
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/pip install -q --disable-pip-version-check "maturin>=1.7,<2" "numpy>=1.21" pytest "ray>=2.9"
# shellcheck disable=SC1091
source .venv/bin/activate
maturin develop --release --quiet
python -m pytest -q -rs tests
