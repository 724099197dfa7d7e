"""What the benchmarks share: samples and their statistics, scratch folders, workspace files,
a supervised `up`, the command line and the ending.

Imported as `bench.common` by the scripts in bench/, which put the repository root on sys.path
before they import it. Nothing here imports tests/: the benchmarks run from a checkout or an
installed tree alike.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import psutil

from supervisor._proto_host import control_pb2 as pb
from supervisor.control.client import ControlClient
from supervisor.errors import SupervisorError
from supervisor.runtime import install_runtime
from supervisor.tools import uv_binary

REPO = Path(__file__).resolve().parent.parent
EMPTY_LOCATION = REPO / "examples" / "empty_location.py"
THREE_ASSETS = REPO / "bench" / "three_assets.py"  # a -> b -> c
SUPERVISOR = str(Path(sys.executable).parent / "supervisor")
BUILD_TIMEOUT = 900.0
CALL_TIMEOUT = 10.0
QUICK_TIMEOUT = 60.0
STATUS_POLL_SECONDS = 0.02
LOG_LINES = 40

T = TypeVar("T")


# Samples and their statistics.


@dataclass
class Sample:
    """One run's figures by name: seconds, or bytes where the name says so."""

    figures: dict[str, float]

    def __getitem__(self, name: str) -> float:
        return self.figures[name]


def median(values: Iterable[float]) -> float:
    """The median of VALUES (there must be some)."""
    return statistics.median(list(values))


def medians(samples: Sequence[Sample]) -> dict[str, float]:
    """The median of each figure over SAMPLES, which all carry the same names."""
    return {name: median(s[name] for s in samples) for name in samples[0].figures}


def percentile(values: Iterable[float], fraction: float) -> float:
    """The nearest-rank percentile: the smallest value with FRACTION of VALUES at or below it."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, math.ceil(fraction * len(ordered)) - 1))]


def tail(path: Path, lines: int = LOG_LINES) -> str:
    """The last LINES lines of a log file, for error messages ("" when it cannot be read)."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


# Folders, interpreters and processes.


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


def run_python(python: str, code: str) -> str:
    """What PYTHON prints running CODE, stripped."""
    return subprocess.run(
        [python, "-c", code], check=True, capture_output=True, text=True, timeout=QUICK_TIMEOUT
    ).stdout.strip()


def pyenv_python(minor: str) -> str:
    """pyenv's newest interpreter for MINOR ("3.8"), failing loudly when there is none."""
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    found = sorted((root / "versions").glob(f"{minor}.*/bin/python"))
    if not found:
        raise RuntimeError(f"no Python {minor} under {root}/versions")
    return str(found[-1])


def child_env(root: Path, python: str) -> Path:
    """A uv venv at ROOT on PYTHON holding grpcio, protobuf and the child runtime: its python."""
    uv = uv_binary()
    env_python = root / "bin" / "python"
    for args in (
        ["venv", "--quiet", "--python", python, str(root)],
        ["pip", "install", "--quiet", "--python", str(env_python), "grpcio", "protobuf"],
    ):
        subprocess.run([uv, *args], check=True, timeout=BUILD_TIMEOUT)
    site = run_python(str(env_python), "import sysconfig; print(sysconfig.get_paths()['purelib'])")
    install_runtime(Path(site))
    return env_python


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the process's whole group (it leads a session of its own) and reap it."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """SIGTERM PROC and wait for it; SIGKILL its group when it misses the deadline."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        print(f"warning: pid {proc.pid} ignored SIGTERM for {timeout:g}s", file=sys.stderr)
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


def compile_host_package() -> None:
    """Compile the supervisor's own bytecode, as a wheel's installation does (and as a first
    run does where Python may write it; PYTHONDONTWRITEBYTECODE would have every start
    compile the package anew, which no installed supervisor does)."""
    import compileall

    compileall.compile_dir(str(REPO / "supervisor"), quiet=1)


# A supervised `up`.


class Up:
    """A `supervisor up -w FILE` child process in a session of its own, its output in a log."""

    def __init__(self, workspace_file: Path, *extra: str, cwd: Path | None = None) -> None:
        self.workspace_file = workspace_file
        self.log_path = workspace_file.parent / f"up-{time.monotonic_ns()}.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [SUPERVISOR, "up", "-w", str(workspace_file), *extra],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=cwd,
        )

    def log(self, lines: int = LOG_LINES) -> str:
        return tail(self.log_path, lines)

    def stop(self, timeout: float = 60.0) -> None:
        """SIGTERM the supervisor and wait for it; SIGKILL its group after TIMEOUT."""
        try:
            stop_process(self.proc, timeout)
        finally:
            self._log.close()


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


def poll(
    up: Up,
    check: Callable[[], T | None],
    timeout: float,
    what: str,
    seen: Callable[[], object] | None = None,
) -> T:
    """Call CHECK every STATUS_POLL_SECONDS until it returns something other than None.
    Fails with the supervisor's log when it exits, or at the deadline with what SEEN says too;
    a SupervisorError that CHECK raises counts as None (the supervisor may be between states)."""
    deadline = time.monotonic() + timeout
    while True:
        if up.proc.poll() is not None:
            raise RuntimeError(f"supervisor exited {up.proc.returncode}:\n{up.log()}")
        with contextlib.suppress(SupervisorError):
            if (found := check()) is not None:
                return found
        if time.monotonic() > deadline:
            saw = f" (saw {seen()})" if seen is not None else ""
            raise RuntimeError(f"timed out after {timeout:g}s waiting for {what}{saw}:\n{up.log()}")
        time.sleep(STATUS_POLL_SECONDS)


def connect(up: Up, timeout: float) -> ControlClient:
    """A control client, once the supervisor's control socket exists."""
    return poll(up, lambda: ControlClient(up.workspace_file, timeout=10), timeout, "its socket")


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
    """Poll NAME's status until CONDITION holds: the status and the wall time it was seen."""

    def check() -> tuple[pb.LocationStatus, float] | None:
        current = location_status(client, name)
        return (current, time.time()) if condition(current) else None

    return poll(up, check, timeout, f"{name}: {what}")


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
    up.stop(timeout)
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
    return python, run_python(python, "import sys; print(sys.version.split()[0])")


# The command line and the ending.


def parser_for(doc: str | None) -> argparse.ArgumentParser:
    """A benchmark's argument parser, described by the first line of its docstring DOC, with
    the options every benchmark has: --json and --smoke."""
    parser = argparse.ArgumentParser(description=(doc or "").split("\n", 1)[0])
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="the smallest run through every step: figures printed, goals not judged",
    )
    return parser


def parse(
    parser: argparse.ArgumentParser, argv: list[str] | None, smoke: dict[str, Any]
) -> argparse.Namespace:
    """Parse ARGV; under --smoke the values in SMOKE replace the defaults (flags still win)."""
    args = parser.parse_args(argv)
    if unknown := set(smoke) - set(vars(args)):
        raise ValueError(f"smoke settings for options that do not exist: {sorted(unknown)}")
    if args.smoke:
        parser.set_defaults(**smoke)
        args = parser.parse_args(argv)
    return args


def verdict(met: bool) -> str:
    return "met" if met else "NOT met"


def finish(result: Any, args: argparse.Namespace, report: Callable[[Any], None], met: bool) -> int:
    """Print RESULT as JSON (--json) or through REPORT; the exit code: 0 when MET, and always
    under --smoke (one short run on a busy machine says nothing about a goal)."""
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        report(result)
    return 0 if met or args.smoke else 1
