"""One running code server, seen from the supervisor's event loop.

Spawned in a session of its own (so the whole group can be signalled), it reports
readiness on an inherited pipe; its output is read line by line as it comes; its
exit is seen when it happens. Stopping is a ladder with one deadline: SIGTERM to
the group, SIGKILL at the deadline, then a sweep of any process that escaped the
group, found by a token in its environment.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from supervisor.errors import CodeServerError

TOKEN_VARIABLE = "SUPERVISOR_PROCESS_TOKEN"
STDERR_TAIL_LINES = 20
# A line longer than this is passed on in pieces rather than held without end.
MAX_LINE = 64 * 1024
# After an exit, how long the last output may take to arrive through the pipes.
DRAIN_OUTPUT_SECONDS = 0.5

OutputHandler = Callable[[str, bytes], None]


@dataclass(frozen=True)
class Ready:
    """What a code server reported once it was bound and loaded."""

    pid: int
    address: str
    load_error: str | None
    load_seconds: float
    ready_seconds: float


class _Protocol(asyncio.SubprocessProtocol):
    """Splits output into lines and notes the exit the moment it happens.

    The exit is not tied to the pipes closing: a grandchild that keeps the pipes
    open (escaping the group, say) must not hide its parent's death.
    """

    def __init__(self, on_line: Callable[[int, bytes], None]) -> None:
        loop = asyncio.get_running_loop()
        self.exited: asyncio.Future[None] = loop.create_future()
        self.output_closed: asyncio.Future[None] = loop.create_future()
        self._on_line = on_line
        self._buffers = {1: bytearray(), 2: bytearray()}
        self._open = {1, 2}

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        buffer = self._buffers[fd]
        buffer.extend(data)
        while True:
            end = buffer.find(b"\n")
            if end < 0:
                if len(buffer) > MAX_LINE:
                    self._on_line(fd, bytes(buffer))
                    buffer.clear()
                return
            self._on_line(fd, bytes(buffer[: end + 1]))
            del buffer[: end + 1]

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        if self._buffers.get(fd):
            self._on_line(fd, bytes(self._buffers[fd]))
            self._buffers[fd].clear()
        self._open.discard(fd)
        if not self._open and not self.output_closed.done():
            self.output_closed.set_result(None)

    def process_exited(self) -> None:
        if not self.exited.done():
            self.exited.set_result(None)


class CodeServerProcess:
    """A code server process: start, watch, stop."""

    def __init__(
        self,
        location: str,
        argv: list[str],
        env: Mapping[str, str],
        cwd: str | None,
        on_output: OutputHandler,
        socket_path: Path | None = None,
    ) -> None:
        self.location = location
        self.socket_path = socket_path
        self.argv = argv
        self.token = uuid.uuid4().hex
        self.env = {**env, TOKEN_VARIABLE: self.token}
        self.cwd = cwd
        self.on_output = on_output
        self.pid: int | None = None
        self.ready: Ready | None = None
        self.create_time: float | None = None
        self.stderr_tail: deque[str] = deque(maxlen=STDERR_TAIL_LINES)
        self._transport: asyncio.SubprocessTransport | None = None
        self._protocol: _Protocol | None = None

    @property
    def started(self) -> bool:
        return self._transport is not None

    @property
    def returncode(self) -> int | None:
        return self._transport.get_returncode() if self._transport else None

    async def _exec(self, extra: list[str], pass_fds: tuple[int, ...] = ()) -> None:
        """Spawn ARGV + EXTRA in a session of its own; CodeServerError when it cannot run."""
        loop = asyncio.get_running_loop()
        try:
            self._transport, self._protocol = await loop.subprocess_exec(
                lambda: _Protocol(self._line),
                *self.argv,
                *extra,
                env=self.env,
                cwd=self.cwd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                pass_fds=pass_fds,
                start_new_session=True,
            )
        except OSError as exc:
            raise CodeServerError(
                self.location, "start", "-", f"cannot run {self.argv[0]}: {exc}"
            ) from None
        self.pid = self._transport.get_pid()
        with contextlib.suppress(psutil.Error):
            self.create_time = psutil.Process(self.pid).create_time()

    async def start(self, startup_timeout: float) -> Ready:
        """Spawn and wait for the readiness line; CodeServerError if it exits or times out."""
        loop = asyncio.get_running_loop()
        read_fd, write_fd = os.pipe()
        started = loop.time()
        try:
            await self._exec(
                ["--ready-fd", str(write_fd), "--parent-pid", str(os.getpid())], (write_fd,)
            )
        except CodeServerError:
            os.close(read_fd)
            raise
        finally:
            os.close(write_fd)
        try:
            message = await asyncio.wait_for(_read_line(read_fd), startup_timeout)
        except asyncio.TimeoutError:
            await self.kill()
            raise CodeServerError(
                self.location,
                "start",
                "-",
                f"not ready within the startup timeout of {startup_timeout:g}s",
            ) from None
        finally:
            os.close(read_fd)
        if message is None or "error" in message:
            code = await self.wait()
            reason = (
                message["error"]
                if message
                else f"exited before it was ready ({describe_exit(code)})"
            )
            raise CodeServerError(self.location, "start", "-", reason + self.tail_text())
        self.ready = Ready(
            pid=int(message["pid"]),
            address=str(message["address"]),
            load_error=message.get("load_error"),
            load_seconds=float(message.get("load_seconds", 0.0)),
            ready_seconds=loop.time() - started,
        )
        return self.ready

    def tail_text(self) -> str:
        """The last lines of stderr, for error messages ("" when there are none)."""
        if not self.stderr_tail:
            return ""
        return "\nlast lines of stderr:\n" + "\n".join("  " + s for s in self.stderr_tail)

    def _line(self, fd: int, line: bytes) -> None:
        name = "stderr" if fd == 2 else "stdout"
        if name == "stderr":
            self.stderr_tail.append(line.decode(errors="replace").rstrip())
        self.on_output(name, line)

    async def wait(self) -> int:
        """Wait for the exit (and briefly for its last output); return the exit code."""
        assert self._protocol is not None and self._transport is not None
        # Shielded: a waiter that is cancelled must not cancel the exit itself.
        await asyncio.shield(self._protocol.exited)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(
                asyncio.shield(self._protocol.output_closed), DRAIN_OUTPUT_SECONDS
            )
        code = self._transport.get_returncode()
        assert code is not None
        if self.socket_path is not None:
            # A killed server cannot remove its socket; a dead socket only misleads.
            with contextlib.suppress(OSError):
                self.socket_path.unlink()
        return code

    async def stop(self, timeout: float) -> int | None:
        """SIGTERM the group, SIGKILL it at the deadline, sweep what escaped; return the code."""
        if self._protocol is None:
            return None
        escaped = self._descendants()
        if self.returncode is None:
            self._signal_group(signal.SIGTERM)
            # A stopped (SIGSTOP) process would hold its SIGTERM until the deadline.
            self._signal_group(signal.SIGCONT)
            try:
                await asyncio.wait_for(asyncio.shield(self._protocol.exited), timeout)
            except asyncio.TimeoutError:
                escaped |= self._descendants()
                self._signal_group(signal.SIGKILL)
        code = await self.wait()
        self._sweep(escaped)
        self._close()
        return code

    async def kill(self) -> None:
        """SIGKILL the group at once (hangs, memory blow-ups, missed start deadlines)."""
        if self._protocol is None:
            return
        escaped = self._descendants()
        self._signal_group(signal.SIGKILL)
        await self.wait()
        self._sweep(escaped)
        self._close()

    def kill_now(self) -> None:
        """SIGKILL the group without waiting; the ongoing stop sees the exit."""
        if self.pid is not None:
            self._signal_group(signal.SIGKILL)

    def _close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def _signal_group(self, signum: int) -> None:
        assert self.pid is not None
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signum)

    def _descendants(self) -> set[psutil.Process]:
        assert self.pid is not None
        try:
            return set(psutil.Process(self.pid).children(recursive=True))
        except psutil.Error:
            return set()

    def _sweep(self, known: set[psutil.Process]) -> None:
        """Kill descendants that left the group, and any process carrying our token."""
        targets = {p for p in known if _alive(p)}
        for proc in psutil.process_iter(["environ"]):
            with contextlib.suppress(psutil.Error, TypeError):
                if (proc.info.get("environ") or {}).get(TOKEN_VARIABLE) == self.token:
                    targets.add(proc)
        for proc in targets:
            with contextlib.suppress(psutil.Error):
                proc.kill()
        psutil.wait_procs(list(targets), timeout=2.0)

    def memory_bytes(self) -> int:
        """Resident memory of the server and its descendants."""
        if self.pid is None or self.returncode is not None:
            return 0
        try:
            root = psutil.Process(self.pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.Error:
            return 0
        total = 0
        for proc in procs:
            with contextlib.suppress(psutil.Error):
                total += proc.memory_info().rss
        return total


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


async def _read_line(fd: int) -> dict[str, Any] | None:
    """Read one JSON line from a pipe without blocking the loop; None at EOF."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[dict[str, Any] | None] = loop.create_future()
    buffer = bytearray()

    def readable() -> None:
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            chunk = b""
        if not chunk:
            if not done.done():
                done.set_result(None)
            return
        buffer.extend(chunk)
        if b"\n" in buffer and not done.done():
            try:
                done.set_result(json.loads(bytes(buffer).split(b"\n", 1)[0]))
            except ValueError:
                done.set_result(None)

    loop.add_reader(fd, readable)
    try:
        return await done
    finally:
        loop.remove_reader(fd)


def describe_exit(returncode: int | None) -> str:
    """Say how a process ended: "exit code 3", "killed by SIGSEGV", or "still running"."""
    if returncode is None:
        return "still running"
    if returncode >= 0:
        return f"exit code {returncode}"
    try:
        return f"killed by {signal.Signals(-returncode).name}"
    except ValueError:
        return f"killed by signal {-returncode}"
