"""Run the build tools (uv, virtualenv, pip) so that they die with the supervisor."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from functools import cache

from supervisor.envs.keys import EnvRequest
from supervisor.errors import EnvBuildError

# How many lines of a failing tool's output an error quotes.
QUOTED_LINES = 25
# A build step that takes longer than this is stuck (a hung index, say), not slow.
TOOL_TIMEOUT = 1800.0
# Once the tool exited, how long its output may take to be read to the end.
READER_JOIN_SECONDS = 5.0

# A guardian that leads a process group of its own and runs the tool in it: told by the
# kernel when the supervisor dies (the parent-death signal, set by util-linux's setpriv
# before it execs the shell), it ends the whole group, so the tool and the build backends
# it starts do not outlive a killed supervisor. setpriv and sh cost a few ms; the fallback,
# our interpreter, some tens. (preexec_fn could set the signal on the tool itself, but is
# unsafe in a process with threads, which ours is, and would not reach the tool's children.)
_GUARDIAN_SH = (
    'trap "kill -KILL 0" TERM; [ "$PPID" = "$1" ] || kill -KILL 0; shift; '
    '"$@" & wait $!; code=$?; exit $code'
)
_GUARDIAN_PY = """
import ctypes, os, signal, subprocess, sys
parent, argv = int(sys.argv[1]), sys.argv[2:]
def end(*_):
    os.killpg(0, signal.SIGKILL)
signal.signal(signal.SIGTERM, end)
ctypes.CDLL(None).prctl(1, int(signal.SIGTERM), 0, 0, 0)
if os.getppid() != parent:
    end()
code = subprocess.call(argv)
sys.exit(code if code >= 0 else 128 - code)
"""


@cache
def _guardian() -> tuple[str, ...]:
    """The argv prefix of the guardian; () where no parent-death signal exists."""
    if not sys.platform.startswith("linux"):
        return ()
    setpriv, sh = shutil.which("setpriv"), shutil.which("sh")
    if setpriv and sh:
        return (setpriv, "--pdeathsig", "TERM", sh, "-c", _GUARDIAN_SH, "guardian")
    return (sys.executable, "-S", "-E", "-c", _GUARDIAN_PY)


def _run_guarded(
    argv: list[str],
    env: dict[str, str],
    timeout: float,
    on_line: Callable[[str], None] | None = None,
) -> tuple[int, str, str]:
    """Run ARGV under the guardian; (exit code, stdout, stderr). ON_LINE hears each line of
    stderr as it comes. TimeoutExpired at TIMEOUT, with the whole group ended."""
    guardian = _guardian()
    prefix = [*guardian, str(os.getpid())] if guardian else []
    proc = subprocess.Popen(
        [*prefix, *argv],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )
    try:
        if on_line is None:
            out, err = proc.communicate(timeout=timeout)
        else:
            out, err = _read_live(proc, timeout, on_line)
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    return proc.returncode, out, err


def _read_live(
    proc: subprocess.Popen[str], timeout: float, on_line: Callable[[str], None]
) -> tuple[str, str]:
    """Collect PROC's output, passing each stderr line to ON_LINE as it arrives."""
    assert proc.stdout is not None and proc.stderr is not None, "both are pipes"
    out: list[str] = []
    err: list[str] = []

    def stderr_lines() -> None:
        assert proc.stderr is not None, "a pipe"
        for line in proc.stderr:
            err.append(line)
            with contextlib.suppress(Exception):  # a display's trouble is not the build's
                on_line(line.rstrip("\n"))

    def stdout_text() -> None:
        assert proc.stdout is not None, "a pipe"
        out.append(proc.stdout.read())

    readers = [threading.Thread(target=f, daemon=True) for f in (stderr_lines, stdout_text)]
    for reader in readers:
        reader.start()
    proc.wait(timeout)
    for reader in readers:
        reader.join(READER_JOIN_SECONDS)
    return "".join(out), "".join(err)


def run_tool(
    request: EnvRequest,
    tool: str,
    what: str,
    argv: list[str],
    env: dict[str, str],
    on_line: Callable[[str], None] | None = None,
) -> str:
    """Run ARGV (TOOL doing WHAT) under the guardian; its stdout, or EnvBuildError quoting
    the last lines the tool wrote. ON_LINE hears its stderr lines as they come."""
    try:
        code, out, err = _run_guarded(argv, env, TOOL_TIMEOUT, on_line)
    except subprocess.TimeoutExpired:
        raise EnvBuildError(
            request.locations, f"{tool} did not {what} within {TOOL_TIMEOUT:g}s"
        ) from None
    except OSError as exc:  # no guardian, and the tool itself cannot be started
        raise EnvBuildError(request.locations, f"{tool} could not {what}: {exc}") from None
    if code != 0:
        output = (err.strip() or out.strip()).splitlines()
        quoted = "\n".join("  | " + line for line in output[-QUOTED_LINES:])
        raise EnvBuildError(
            request.locations, f"{tool} could not {what} (exit code {code}):\n{quoted}"
        )
    return out
