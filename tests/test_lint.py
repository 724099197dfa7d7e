"""ruff is part of the suite: lint and format, the child side checked as Python 3.8."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.helpers import REPO

RUFF = str(Path(sys.executable).parent / "ruff")


def test_ruff_check() -> None:
    out = subprocess.run(
        [RUFF, "check", "--no-cache", str(REPO)], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_ruff_format() -> None:
    out = subprocess.run(
        [RUFF, "format", "--check", "--no-cache", str(REPO)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stdout + out.stderr
