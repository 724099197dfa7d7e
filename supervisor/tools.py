"""Locate the external tools the host runs (uv)."""

from __future__ import annotations

import shutil
import sys
from functools import cache
from pathlib import Path

from supervisor.errors import SupervisorError


@cache
def uv_binary() -> str:
    """Return the uv executable: the one installed beside this interpreter, else on PATH."""
    # uv's own find_uv_bin() fails on interpreters whose sysconfig lacks EXE.
    for candidate in (Path(sys.executable).parent / "uv", Path(sys.prefix) / "bin" / "uv"):
        if candidate.is_file():
            return str(candidate)
    found = shutil.which("uv")
    if found:
        return found
    raise SupervisorError(
        "uv not found beside this Python or on PATH; install it with `pip install uv`"
    )
