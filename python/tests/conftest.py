"""Shared fixtures: the `ebm` binary the Python results are compared with, and a policy for
optional dependencies (skipped with a message locally; required under CI=true)."""

import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def require(module: str):
    """The module, or a skip saying how to install it (a failure under CI=true, which installs it)."""
    try:
        return __import__(module)
    except ImportError:
        if os.environ.get("CI") == "true" and module != "torch":
            pytest.fail(f"{module} is not installed; .ci/run installs it")
        pytest.skip(f"{module} is not installed (pip install {module}); skipped")


@pytest.fixture(scope="session")
def ebm_bin() -> str:
    """The ebm binary: $EBM_BIN, else the repository's release or debug build."""
    candidates = [os.environ.get("EBM_BIN"), REPO / "target/release/ebm", REPO / "target/debug/ebm", shutil.which("ebm")]
    for c in candidates:
        if c and Path(c).is_file():
            return str(c)
    pytest.fail("no ebm binary to compare with: build it (cargo build --release) or set EBM_BIN")
