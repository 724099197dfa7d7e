"""Start one code server process and wait for it to say it is ready, on an inherited pipe."""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from supervisor.errors import CodeServerError
from supervisor.states import describe_exit

# Variables of the supervisor's own environment that must not reach a location.
LEAKY_VARIABLES = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONSAFEPATH")


# `python -m` would put the working directory first on sys.path, where a folder
# named like our package (a checkout of this project, say) would shadow the
# environment's runtime; -c puts "" there, which the bootstrap removes first.
BOOTSTRAP = (
    "import sys; del sys.path[0]; from supervisor.codeserver.server import main; sys.exit(main())"
)


@dataclass(frozen=True)
class Ready:
    """What a code server reported once it was bound and loaded."""

    pid: int
    address: str
    load_error: str | None
    load_seconds: float
    ready_seconds: float


def child_environment(
    extra: Mapping[str, str] | None = None, venv: Path | None = None
) -> dict[str, str]:
    """Return a code server's environment: ours less what leaks, VENV activated, EXTRA on top."""
    env = {k: v for k, v in os.environ.items() if k not in LEAKY_VARIABLES}
    env.pop("VIRTUAL_ENV", None)
    env["PYTHONUNBUFFERED"] = "1"
    if venv is not None:
        # As `activate` does: console scripts of the location's own packages come first.
        env["VIRTUAL_ENV"] = str(venv)
        env["PATH"] = os.pathsep.join([str(venv / "bin"), env.get("PATH", os.defpath)])
    env.update(extra or {})
    return env


def code_server_flags(
    *,
    module_name: str | None = None,
    python_file: str | None = None,
    working_directory: str | None = None,
    attribute: str | None = None,
    location_name: str | None = None,
    socket: str | None = None,
    port: int | None = None,
    host: str | None = None,
    heartbeat_timeout: float | None = None,
    drain_timeout: float | None = None,
) -> list[str]:
    """Return the code server's command-line flags for what is given."""
    options: Sequence[tuple[str, Any]] = (
        ("--module-name", module_name),
        ("--python-file", python_file),
        ("--working-directory", working_directory),
        ("--attribute", attribute),
        ("--location-name", location_name),
        ("--socket", socket),
        ("--port", port),
        ("--host", host),
        ("--heartbeat-timeout", heartbeat_timeout),
        ("--drain-timeout", drain_timeout),
    )
    flags: list[str] = []
    for flag, value in options:
        if value is not None:
            flags += [flag, str(value)]
    return flags


def code_server_command(python: str, **flags: Any) -> list[str]:
    """Return the argv that starts a code server on PYTHON (whose environment holds the runtime)."""
    return [python, "-c", BOOTSTRAP, *code_server_flags(**flags)]


def start_code_server(
    argv: list[str],
    *,
    location: str,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    stdout: IO[Any] | int | None = None,
    stderr: IO[Any] | int | None = None,
    startup_timeout: float = 60.0,
    stderr_tail: Callable[[], str] | None = None,
) -> tuple[subprocess.Popen[bytes], Ready]:
    """Spawn ARGV in a session of its own and wait until it reports ready.

    The child learns our pid (to stop when we are gone) and a pipe to report on.
    Raises CodeServerError naming the location when it exits or misses the deadline.
    """
    read_fd, write_fd = os.pipe()
    started = time.monotonic()
    try:
        proc = subprocess.Popen(
            [*argv, "--ready-fd", str(write_fd), "--parent-pid", str(os.getpid())],
            env=dict(env) if env is not None else child_environment(),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            pass_fds=(write_fd,),
            start_new_session=True,
        )
    except OSError as exc:
        os.close(read_fd)
        raise CodeServerError(location, "start", "-", f"cannot run {argv[0]}: {exc}") from None
    finally:
        os.close(write_fd)
    try:
        message = read_ready_line(read_fd, started + startup_timeout)
    finally:
        os.close(read_fd)
    address = "?"
    if message is None or "error" in message:
        if message is None and proc.poll() is None:
            kill_group(proc)
            reason = f"not ready within the startup timeout of {startup_timeout:g}s"
        else:
            code = _wait_exit(proc)
            reason = message["error"] if message else f"exited before it was ready ({code})"
        tail = stderr_tail() if stderr_tail else ""
        raise CodeServerError(location, "start", address, reason + (f"\n{tail}" if tail else ""))
    return proc, Ready(
        pid=int(message["pid"]),
        address=str(message["address"]),
        load_error=message.get("load_error"),
        load_seconds=float(message.get("load_seconds", 0.0)),
        ready_seconds=time.monotonic() - started,
    )


def read_ready_line(fd: int, deadline: float) -> dict[str, Any] | None:
    """Read one JSON line from FD before DEADLINE; None on EOF or timeout."""
    data = b""
    while b"\n" not in data:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        readable, _, _ = select.select([fd], [], [], remaining)
        if not readable:
            return None
        chunk = os.read(fd, 65536)
        if not chunk:
            return None
        data += chunk
    return json.loads(data.split(b"\n", 1)[0])


def _wait_exit(proc: subprocess.Popen[bytes], timeout: float = 5.0) -> str:
    try:
        return describe_exit(proc.wait(timeout))
    except subprocess.TimeoutExpired:
        kill_group(proc)
        return "closed its readiness pipe and did not exit"


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the process's whole group (it leads a session of its own) and reap it."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
