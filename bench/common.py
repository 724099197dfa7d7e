"""What the benchmarks share: scratch folders, workspace files, a supervised `up`, the ending.

Imported as `bench.common` by the scripts in bench/, which put the repository root on sys.path
before they import it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import psutil

from supervisor._proto_host import control_pb2 as pb
from supervisor.control import ControlClient
from supervisor.errors import SupervisorError
from supervisor.launch import kill_group
from tests.uphelp import SUPERVISOR, Up

REPO = Path(__file__).resolve().parent.parent
EMPTY_LOCATION = REPO / "examples" / "empty_location.py"
THREE_ASSETS = REPO / "bench" / "three_assets.py"  # a -> b -> c
BUILD_TIMEOUT = 900.0
CALL_TIMEOUT = 10.0
STATUS_POLL_SECONDS = 0.02


def private_tempdir() -> Path:
    """A short private folder under /tmp (Unix socket paths are limited to 107 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="sv-", dir="/tmp"))
    path.chmod(0o700)
    return path


def fresh_workdir(parent: Path, name: str) -> Path:
    """An empty private folder under PARENT for one run's socket and log."""
    path = parent / name
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(mode=0o700)
    return path


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """SIGTERM PROC and wait for it; SIGKILL its group when it misses the deadline."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        print(f"warning: pid {proc.pid} ignored SIGTERM for {timeout}s", file=sys.stderr)
        kill_group(proc)


# Workspace files.


def entry(kind: str, **fields: object) -> str:
    """One entry of a workspace's load_from list: KIND with FIELDS, in that order."""
    return f"  - {kind}:\n" + "".join(f"      {key}: {value}\n" for key, value in fields.items())


def python_file(file: Path, name: str, **fields: object) -> str:
    """A `python_file` entry on FILE named NAME, with any further FIELDS."""
    return entry("python_file", relative_path=file, location_name=name, **fields)


def write_workspace(
    folder: Path, entries: Iterable[str], envs: Path | None = None, head: str = ""
) -> Path:
    """FOLDER/workspace.yaml: envs_dir (when ENVS), HEAD, then load_from with ENTRIES."""
    path = folder / "workspace.yaml"
    envs_dir = f"envs_dir: {envs}\n" if envs is not None else ""
    path.write_text(f"{envs_dir}{head}load_from:\n" + "".join(entries))
    return path


# A supervised `up`.


def build_env(workspace_file: Path) -> None:
    """Build the workspace's environments (untimed), failing with uv's output."""
    done = subprocess.run(
        [SUPERVISOR, "env", "build", "-w", str(workspace_file)],
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT,
    )
    if done.returncode != 0:
        raise RuntimeError(f"env build failed:\n{done.stdout}\n{done.stderr}")


def connect(up: Up, timeout: float) -> ControlClient:
    """A control client, once the supervisor's control socket exists."""
    deadline = time.monotonic() + timeout
    while True:
        if up.proc.poll() is not None:
            raise RuntimeError(f"supervisor exited {up.proc.returncode}:\n{up.log()}")
        with contextlib.suppress(SupervisorError):
            return ControlClient(up.workspace_file, timeout=10)
        if time.monotonic() > deadline:
            raise RuntimeError(f"no control socket within {timeout:g}s:\n{up.log()}")
        time.sleep(STATUS_POLL_SECONDS)


def location_status(client: ControlClient, name: str) -> pb.LocationStatus:
    """Location NAME's status as the supervisor reports it."""
    reply = client.call("Status", pb.StatusRequest(locations=[name]), timeout=CALL_TIMEOUT)
    return reply.locations[0]


def is_serving(status: pb.LocationStatus) -> bool:
    return status.state == "SERVING"


def wait_location(
    up: Up,
    client: ControlClient,
    name: str,
    condition: Callable[[pb.LocationStatus], bool],
    timeout: float,
    what: str,
) -> tuple[pb.LocationStatus, float]:
    """Poll NAME's status until CONDITION holds: the status and the wall time it was seen.
    Fails with the supervisor's log when it exits or at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        if up.proc.poll() is not None:
            raise RuntimeError(f"supervisor exited {up.proc.returncode}:\n{up.log()}")
        with contextlib.suppress(SupervisorError):
            current = location_status(client, name)
            if condition(current):
                return current, time.time()
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"{name}: timed out after {timeout:g}s waiting for {what}:\n{up.log()}"
            )
        time.sleep(STATUS_POLL_SECONDS)


def transition_after(current: pb.LocationStatus, state: str, after: float) -> Any:
    """The first recorded move to STATE at or after wall-clock AFTER."""
    for transition in current.history:
        if transition.to_state == state and transition.at >= after:
            return transition
    raise RuntimeError(
        f"{current.name}: no move to {state} after {after} in {list(current.history)}"
    )


def stop_up(up: Up, timeout: float = 60.0) -> None:
    """SIGTERM the supervisor (SIGKILL after TIMEOUT), then end any code server it left."""
    children: list[psutil.Process] = []
    with contextlib.suppress(psutil.Error):
        children = psutil.Process(up.proc.pid).children(recursive=True)
    try:
        up.stop(signal.SIGTERM, timeout)
    except subprocess.TimeoutExpired:
        print(f"warning: supervisor ignored SIGTERM for {timeout:g}s", file=sys.stderr)
    alive = [p for p in children if p.is_running()]
    for proc in alive:
        with contextlib.suppress(psutil.Error):
            proc.terminate()
    _, alive = psutil.wait_procs(alive, timeout=5)
    for proc in alive:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(alive, timeout=5)


def interpreter_of(pid: int) -> tuple[str, str]:
    """The code server's interpreter path and its Python version."""
    python = psutil.Process(pid).cmdline()[0]
    version = subprocess.run(
        [python, "-c", "import sys; print(sys.version.split()[0])"],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout.strip()
    return python, version


# The command line and the ending.


def parser_for(doc: str | None) -> argparse.ArgumentParser:
    """A benchmark's argument parser, described by the first line of its docstring DOC."""
    return argparse.ArgumentParser(description=(doc or "").split("\n", 1)[0])


def verdict(met: bool) -> str:
    return "met" if met else "NOT met"


def finish(result: Any, as_json: bool, report: Callable[[Any], None], met: bool) -> int:
    """Print RESULT as JSON (AS_JSON) or through REPORT; the exit code, 0 when MET."""
    if as_json:
        print(json.dumps(result, indent=2))
    else:
        report(result)
    return 0 if met else 1
