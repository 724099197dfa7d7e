"""A real Dagster code server process (`dagster api grpc`), started and watched like ours.

Readiness without polling lag: Dagster logs a "Started Dagster code server" record (JSON
lines, `--log-format json`) once it listens; that line is the signal. Then one
ListRepositories says whether the code loaded (`--lazy-load-user-code`: a broken location
keeps serving its error), which is Ready's load_error. Its JSON log records are relayed as
`LEVEL logger: message` lines.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from supervisor.errors import CodeServerError
from supervisor.launch.process import CodeServerProcess, Ready, describe_exit

STARTED = "Started Dagster code server"
# How long the ShutdownServer call may take, and what of the stop's time is kept for the
# signals after it.
SHUTDOWN_CALL_SECONDS = 5.0
SHUTDOWN_GRACE = 2.0
# A flag the installed dagster does not know: its CLI says so in these words.
UNKNOWN_FLAG = "No such option"


class DagsterLogProcess(CodeServerProcess):
    """A process of Dagster's that logs JSON records: relayed as readable lines, and one
    record (its MARKER) says it is ready."""

    marker = STARTED
    _listening: asyncio.Event | None = None  # set by the marker record, once started

    async def _spawn_until_marker(self, startup_timeout: float) -> None:
        """Spawn and wait for the marker record; CodeServerError if it exits or times out."""
        self._listening = asyncio.Event()
        await self._exec([])
        assert self._protocol is not None
        listening: asyncio.Future[Any] = asyncio.create_task(self._listening.wait())
        exited: asyncio.Future[Any] = asyncio.ensure_future(asyncio.shield(self._protocol.exited))
        try:
            done, _ = await asyncio.wait(
                {listening, exited}, timeout=startup_timeout, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            listening.cancel()
            exited.cancel()
        if listening not in done:
            if exited in done or self.returncode is not None:
                code = await self.wait()
                raise CodeServerError(
                    self.location, "start", "-", self._exit_reason(code) + self.tail_text()
                )
            await self.kill()
            raise CodeServerError(
                self.location,
                "start",
                "-",
                f"not ready within the startup timeout of {startup_timeout:g}s" + self.tail_text(),
            )

    def _exit_reason(self, code: int) -> str:
        said = "\n".join(self.stderr_tail)
        if UNKNOWN_FLAG in said:
            return (
                f"this environment's dagster does not take a flag the supervisor gives"
                f" it ({describe_exit(code)}); require a newer dagster"
            )
        return f"exited before it was ready ({describe_exit(code)})"

    def _line(self, fd: int, line: bytes) -> None:
        """Dagster's JSON records as readable lines; the marker record marks readiness."""
        record = None
        if line.startswith(b"{"):
            with contextlib.suppress(ValueError):
                record = json.loads(line)
        if not isinstance(record, dict) or "event" not in record:
            super()._line(fd, line)
            return
        event = str(record.get("event", ""))
        if self._listening is not None and event.startswith(self.marker):
            self._listening.set()
        level = str(record.get("level", "info")).upper()
        logger = record.get("logger", "dagster")
        super()._line(fd, f"{level} {logger}: {event}".rstrip("\n").encode() + b"\n")


class DagsterServerProcess(DagsterLogProcess):
    """`dagster api grpc` on a Unix socket of ours; the stop ladder is CodeServerProcess's."""

    async def start(self, startup_timeout: float) -> Ready:
        """Spawn, wait for the Started record, ask whether the code loaded."""
        # Here, not above: Dagster's webserver and daemon share the base class, and `up` starts
        # them before gRPC loads.
        from supervisor.control.codeserver import aio_channel
        from supervisor.control.dagster import AsyncDagsterServer

        assert self.socket_path is not None, "a Dagster server listens on a socket of ours"
        loop = asyncio.get_running_loop()
        started = loop.time()
        await self._spawn_until_marker(startup_timeout)
        address = "unix:" + str(self.socket_path)
        loaded_at = loop.time()
        remaining = max(1.0, startup_timeout - (loaded_at - started))
        channel = aio_channel(address)
        try:
            client = AsyncDagsterServer(channel, self.location, address)
            load_error = await client.load_error(remaining)
        except CodeServerError:
            await self.kill()
            raise
        finally:
            await channel.close()
        assert self.pid is not None
        self.ready = Ready(
            pid=self.pid,
            address=address,
            load_error=load_error,
            load_seconds=loop.time() - loaded_at,
            ready_seconds=loop.time() - started,
        )
        return self.ready

    async def stop(self, timeout: float) -> int | None:
        """Ask Dagster to shut down (it lets the runs in progress finish), then the ladder of
        CodeServerProcess (SIGTERM, SIGKILL at the deadline) for what is left of TIMEOUT."""
        from supervisor.control.codeserver import aio_channel
        from supervisor.control.dagster import AsyncDagsterServer

        loop = asyncio.get_running_loop()
        began = loop.time()
        if self.ready is not None and self._protocol is not None and self.returncode is None:
            channel = aio_channel(self.ready.address)
            try:
                client = AsyncDagsterServer(channel, self.location, self.ready.address)
                with contextlib.suppress(CodeServerError):
                    runs = await client.current_runs(min(SHUTDOWN_CALL_SECONDS, timeout))
                    if runs:
                        note = f"draining {len(runs)} run(s) in progress: {', '.join(runs)}"
                        self.on_output("stderr", note.encode() + b"\n")
                # Dagster's ShutdownServer stops once the runs it executes are done.
                with contextlib.suppress(CodeServerError):
                    await client.shutdown(min(SHUTDOWN_CALL_SECONDS, timeout))
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(
                        asyncio.shield(self._protocol.exited), max(0.0, timeout - SHUTDOWN_GRACE)
                    )
            finally:
                await channel.close()
        return await super().stop(max(SHUTDOWN_GRACE, timeout - (loop.time() - began)))
