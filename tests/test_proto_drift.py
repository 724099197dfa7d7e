"""The committed stubs are exactly what the pinned generator makes of the .proto sources."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO


@pytest.mark.timeout(420)  # above the generator's own 300 s, which makes a throwaway venv
def test_regenerated_stubs_match_the_committed_ones(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, str(REPO / "proto" / "generate.py"), "--out", str(tmp_path)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    fresh = {
        str(p.relative_to(tmp_path)): p.read_bytes()
        for p in (tmp_path / "supervisor").glob("_proto*/*.py")
    }
    committed = {
        str(p.relative_to(REPO)): p.read_bytes()
        for p in (REPO / "supervisor").glob("_proto*/*.py")
        if p.name != "__init__.py"
    }
    assert sorted(fresh) == sorted(committed)
    drifted = [name for name in fresh if fresh[name] != committed[name]]
    assert not drifted, f"stubs differ from the .proto sources: {drifted}; run proto/generate.py"
