"""ruff is part of the suite: lint and format, the child side checked as Python 3.8."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO

RUFF = str(Path(sys.executable).parent / "ruff")
# Above each ruff run's own 120 s, so that its timeout is what a slow run reports.
pytestmark = pytest.mark.timeout(180)


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
