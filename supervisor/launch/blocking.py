"""CodeServerProcess driven from synchronous code (tests, benchmarks, scripts).

There is one way to start a code server, `CodeServerProcess` on an event loop; this
module runs that loop on a private thread so that code without a loop of its own can
use it. The thread lives as long as the server does on purpose: the kernel sends the
parent-death signal when the *thread* that spawned the child ends, not the process.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections.abc import Coroutine, Mapping
from pathlib import Path
from typing import IO, Any, TypeVar

from supervisor.errors import CodeServerError
from supervisor.launch.command import child_environment
from supervisor.launch.process import CodeServerProcess, Ready

T = TypeVar("T")

# Beyond a call's own deadline, how long the loop may take to answer (the stop ladder's
# sweep, the last output draining) before we call the loop itself stuck.
LOOP_MARGIN_SECONDS = 15.0
# How long the loop thread may take to end once asked.
THREAD_JOIN_SECONDS = 10.0


class BlockingServer:
    """One code server started through CodeServerProcess on a private event-loop thread."""

    def __init__(
        self,
        argv: list[str],
        *,
        location: str = "test",
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        output: Path | None = None,
        socket_path: Path | None = None,
    ) -> None:
        self.location = location
        self.output = output
        self.ready: Ready | None = None
        self._process = CodeServerProcess(
            location,
            argv,
            env if env is not None else child_environment(),
            cwd,
            self._on_output,
            socket_path,
        )
        self._out: IO[bytes] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ended = False

    @property
    def pid(self) -> int | None:
        return self._process.pid

    def start(self, startup_timeout: float = 60.0) -> Ready:
        """Spawn and wait for readiness; CodeServerError as CodeServerProcess.start raises it."""
        if self._thread is not None:
            raise RuntimeError(f"code server of {self.location!r} was already started")
        if self.output is not None:
            self._out = open(self.output, "ab", buffering=0)  # noqa: SIM115 - closed in close()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._run_loop, name=f"code-server-{self.location}", daemon=True
        )
        self._thread.start()
        try:
            self.ready = self._call(
                self._process.start(startup_timeout), startup_timeout + LOOP_MARGIN_SECONDS
            )
        except BaseException:
            # CodeServerProcess.start has killed or reaped what it spawned; closing its
            # pipes is left (and the ladder, should the wait itself have been cut short).
            self._ended = True
            try:
                with contextlib.suppress(Exception):
                    self._call(self._process.stop(0), LOOP_MARGIN_SECONDS)
            finally:
                self._end_loop()
            raise
        return self.ready

    def poll(self) -> int | None:
        """The exit code, or None while it runs (or was never started)."""
        return self._process.returncode

    def wait(self, timeout: float) -> int:
        """Wait for the exit and return its code; TimeoutError when it still runs at TIMEOUT."""
        self._require_started()

        async def wait() -> int:
            return await asyncio.wait_for(self._process.wait(), timeout)

        try:
            return self._call(wait(), timeout + LOOP_MARGIN_SECONDS)
        except (asyncio.TimeoutError, concurrent.futures.TimeoutError):
            raise TimeoutError(
                f"code server of {self.location!r} (pid {self.pid}) still runs after {timeout:g}s"
            ) from None

    def stop(self, timeout: float = 10.0) -> int | None:
        """The stop ladder: SIGTERM the group, SIGKILL it at TIMEOUT, sweep what escaped."""
        if self._thread is None or self._ended:
            return self.poll()
        code = self._call(self._process.stop(timeout), timeout + LOOP_MARGIN_SECONDS)
        self._ended = True
        return code

    def kill(self) -> None:
        """SIGKILL the group at once and reap it."""
        if self._thread is None or self._ended:
            return
        self._call(self._process.kill(), LOOP_MARGIN_SECONDS)
        self._ended = True

    def close(self) -> None:
        """Stop the server if it runs, then end the loop thread."""
        try:
            if self._thread is not None and not self._ended:
                # Also for a server that exited by itself: reap it, sweep, close its pipes.
                self.stop()
        finally:
            self._end_loop()

    def __enter__(self) -> BlockingServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _require_started(self) -> None:
        if self._thread is None:
            raise RuntimeError(f"code server of {self.location!r} was not started")

    def _call(self, coroutine: Coroutine[Any, Any, T], timeout: float) -> T:
        """Run COROUTINE on the loop thread; TimeoutError naming it when it takes past TIMEOUT."""
        assert self._loop is not None
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            name = getattr(coroutine, "__qualname__", "the call")
            raise TimeoutError(
                f"code server of {self.location!r} (pid {self.pid}): {name} did not finish"
                f" within {timeout:g}s"
            ) from None

    def _run_loop(self) -> None:
        assert self._loop is not None
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_forever()
        finally:
            self._loop.close()

    def _end_loop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is not None and thread is not None and thread.is_alive():
            loop.call_soon_threadsafe(loop.stop)
            thread.join(THREAD_JOIN_SECONDS)
            if thread.is_alive():
                raise CodeServerError(
                    self.location,
                    "close",
                    "-",
                    f"its event-loop thread did not end within {THREAD_JOIN_SECONDS:g}s",
                )
        if self._out is not None:
            self._out.close()
            self._out = None

    def _on_output(self, stream: str, line: bytes) -> None:
        if self._out is not None:
            self._out.write(line)


def start_blocking(argv: list[str], **kwargs: Any) -> BlockingServer:
    """Construct a BlockingServer and start it (startup_timeout among KWARGS); return it."""
    startup_timeout = kwargs.pop("startup_timeout", 60.0)
    server = BlockingServer(argv, **kwargs)
    server.start(startup_timeout)
    return server
