"""Shared test helpers: interpreters, real environments, waiting with deadlines."""

from __future__ import annotations

import glob
import os
import re
import select
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from supervisor.runtime import install_runtime
from supervisor.tools import uv_binary

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures"
EXAMPLES = REPO / "examples"


def pyenv_python(minor: str) -> str:
    """Return pyenv's newest interpreter for MINOR ("3.8"), failing loudly when absent."""
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    found = sorted(glob.glob(str(root / "versions" / f"{minor}.*" / "bin" / "python")))
    if not found:
        raise AssertionError(f"no Python {minor} under {root}/versions; this suite needs one")
    return found[-1]


def make_child_env(root: Path, python: str, requirements: tuple[str, ...] = ()) -> Path:
    """Build a venv with uv on PYTHON holding grpcio, protobuf and the child runtime."""
    uv = uv_binary()
    subprocess.run([uv, "venv", "--quiet", "--python", python, str(root)], check=True)
    env_python = root / "bin" / "python"
    subprocess.run(
        [
            uv,
            "pip",
            "install",
            "--quiet",
            "--python",
            str(env_python),
            "grpcio",
            "protobuf",
            *requirements,
        ],
        check=True,
    )
    site = subprocess.run(
        [str(env_python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    install_runtime(Path(site))
    return env_python


def host_site_packages() -> str:
    return sysconfig.get_paths()["purelib"]


def short_tempdir() -> Path:
    """A private folder with a short path, for Unix sockets (107-byte limit)."""
    path = Path(tempfile.mkdtemp(prefix="sv-", dir="/tmp"))
    path.chmod(0o700)
    return path


def wait_for(
    condition: Callable[[], object],
    timeout: float,
    what: str,
    seen: Callable[[], object] | None = None,
) -> object:
    """Wait until CONDITION() is truthy; on the deadline fail with WHAT and what was seen."""
    deadline = time.monotonic() + timeout
    delay = 0.01
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            detail = f"; saw: {seen()}" if seen else ""
            raise AssertionError(f"timed out after {timeout}s waiting for {what}{detail}")
        time.sleep(delay)
        delay = min(delay * 2, 0.1)


def pid_gone(pid: int) -> bool:
    """True when PID no longer runs (a zombie counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except OSError:
        return True


def process_states(*pids: int) -> str:
    """Each PID's state and parent as /proc shows them, for what a wait saw."""
    seen = []
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            seen.append(f"pid {pid} is gone")
            continue
        seen.append(f"pid {pid} in state {fields[0]}, parent {fields[1]}")
    return "; ".join(seen)


def remove(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


HOST_PYTHON = sys.executable


def read_until(
    proc: subprocess.Popen[str], pattern: re.Pattern[str], timeout: float
) -> re.Match[str]:
    """Read the process's stderr lines until one matches, within TIMEOUT."""
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stderr], [], [], deadline - time.monotonic())
        if not ready:
            break
        line = proc.stderr.readline()
        if not line:
            break
        seen.append(line)
        match = pattern.search(line)
        if match:
            return match
    raise AssertionError(f"no line matching {pattern.pattern!r} within {timeout}s; saw {seen}")
