"""Starting a local location's code servers: the one that serves, a successor for a
hand-over, and a standby. Each on a fresh socket, its code fingerprinted as it starts."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from pathlib import Path

from supervisor.errors import CodeServerError
from supervisor.launch.command import Launchable, socket_name
from supervisor.launch.process import OutputHandler
from supervisor.supervision.outcomes import Asked, ServerProcess, Spawn, Started, StartFailed
from supervisor.supervision.sources import fingerprint
from supervisor.workspace import LocationSpec

# What a code server's output goes to: (stream, line).
Output = Callable[[str, bytes], None]


def dagster_process(
    location: str,
    argv: list[str],
    env: Mapping[str, str],
    cwd: str | None,
    output: OutputHandler,
    socket_path: Path,
) -> ServerProcess:
    """A Dagster code server's process (that module loads only for Dagster locations)."""
    from supervisor.launch.dagster_process import DagsterServerProcess

    return DagsterServerProcess(location, argv, env, cwd, output, socket_path)


class Spawner:
    """Starts the code servers of one location."""

    def __init__(
        self,
        spec: LocationSpec,
        socket_dir: Path,
        output: Output,
        spawn: Spawn,
        dagster_spawn: Spawn,
        argv: Callable[[Path], list[str]],
    ) -> None:
        self.spec = spec
        self.argv = argv  # the command line of a server listening on a socket
        self.socket_dir = socket_dir
        self.output = output
        self.spawn = spawn
        self.dagster_spawn = dagster_spawn  # the dagster runtime's: `dagster api grpc`

    def _begin(
        self, launchable: Launchable, extra: tuple[str, ...] = ()
    ) -> tuple[ServerProcess, asyncio.Task[str]]:
        """Spawn a server of LAUNCHABLE, and fingerprint its code in a thread meanwhile."""
        socket = self.socket_dir / socket_name(self.spec.name)
        argv = [*self.argv(socket), *extra]
        # Taken in a thread as the server starts (off the start's path, a walk of the code's
        # folder may take a while), before it has read its code: a change made while it
        # loads shows as a change.
        source = asyncio.create_task(asyncio.to_thread(fingerprint, self.spec))
        spawn = self.spawn if launchable.runtime != "dagster" else self.dagster_spawn
        process = spawn(self.spec.name, argv, launchable.env, launchable.cwd, self.output, socket)
        return process, source

    async def start(
        self, launchable: Launchable, wake: asyncio.Event
    ) -> Started | StartFailed | Asked:
        """Start a server; return it once ready, why it failed, or STOP when WAKE is set
        first (a stop asked for while it started)."""
        process, source = self._begin(launchable)
        start = asyncio.create_task(process.start(self.spec.startup_timeout))
        woken = asyncio.create_task(wake.wait())
        await asyncio.wait({start, woken}, return_when=asyncio.FIRST_COMPLETED)
        woken.cancel()
        if not start.done():
            start.cancel()
            with contextlib.suppress(asyncio.CancelledError, CodeServerError):
                await start
            if process.started and process.returncode is None:
                await process.stop(self.spec.drain_timeout)
            source.cancel()
            return Asked.STOP
        try:
            return Started(process, start.result(), await source)
        except CodeServerError as exc:
            return StartFailed(exc.reason)

    async def start_standby(
        self, launchable: Launchable, register: Callable[[ServerProcess], None]
    ) -> Started | StartFailed:
        """Start a standby server: ready and loaded, or why not. REGISTER hears of its
        process as soon as it exists (so that it can be stopped while it starts)."""
        # Its runs start cold: a standby that waited with a warm worker would be two more
        # copies of the location's memory.
        extra = ("--warm-workers", "0") if launchable.runtime != "dagster" else ()
        process, source = self._begin(launchable, extra)
        register(process)
        try:
            ready = await process.start(self.spec.startup_timeout)
        except CodeServerError as exc:
            source.cancel()
            return StartFailed(exc.reason)
        if ready.load_error:
            await process.stop(self.spec.drain_timeout)
            source.cancel()
            return StartFailed(f"its code does not load: {ready.load_error.splitlines()[0]}")
        return Started(process, ready, await source)
