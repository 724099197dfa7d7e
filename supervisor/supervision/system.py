"""Dagster's webserver and daemon, supervised by the rules of a local location: built, started,
health-checked, restarted with back-off, logged and stopped by the same loop (local.py).

What differs: no code server protocol (no channel; the webserver's health is its
`/server_info`, the daemon's is being alive), no socket of ours, and no hand-over on a
restart (a second webserver could not bind the port): a restart stops, then starts.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from supervisor.dagsterui import RUNTIME, WEBSERVER
from supervisor.dagsterui.graphql import Webserver, WebserverError
from supervisor.errors import CodeServerError
from supervisor.launch.process import OutputHandler
from supervisor.launch.system_process import SystemProcess
from supervisor.supervision.clock import REAL_CLOCK, Clock
from supervisor.supervision.local import LocalLocation, Planner
from supervisor.supervision.logs import Console, RotatingLog
from supervisor.supervision.outcomes import Spawn
from supervisor.supervision.probes import Probed
from supervisor.workspace import LocationSpec
from supervisor.workspace.specs import RestartSpec

# For annotations only: gRPC loads after `up` has started its servers.
if TYPE_CHECKING:
    import grpc

# They are the workspace's UI: a clean exit is as unexpected as a crash.
SYSTEM_RESTART = RestartSpec(policy="always")
# A cold webserver imports all of Dagster and its GraphQL schema: slower than a code server.
SYSTEM_STARTUP_TIMEOUT = 120.0


def system_spec(name: str, workspace_file: Path, line: int) -> LocationSpec:
    """The spec of the webserver or the daemon: a location's defaults, restarting always."""
    return LocationSpec(
        name=name,
        kind="system",
        line=line,
        restart=SYSTEM_RESTART,
        startup_timeout=SYSTEM_STARTUP_TIMEOUT,
        source=workspace_file,
    )


def system_spawn(url: str) -> Spawn:
    """Spawns SystemProcess, serving at URL for the webserver; the socket path a code
    server's spawn takes is not used."""

    def spawn(
        name: str,
        argv: list[str],
        env: Mapping[str, str],
        cwd: str | None,
        on_output: OutputHandler,
        _socket: Path,
    ) -> SystemProcess:
        return SystemProcess(name, argv, env, cwd, on_output, url if name == WEBSERVER else "")

    return spawn


class _WebserverProbe:
    """The webserver's health check: `/server_info` answers."""

    def __init__(self, name: str, url: str) -> None:
        self.name = name
        self.client = Webserver(url)

    async def health(self, timeout: float) -> str:
        try:
            await asyncio.to_thread(self.client.server_info, timeout)
        except WebserverError as exc:
            raise CodeServerError(self.name, "health", self.client.url, str(exc)) from None
        return "SERVING"

    async def heartbeat(self, timeout: float) -> None:
        return None


class _AliveProbe:
    """The daemon's: its exit is seen when it happens; while it runs, it is healthy."""

    async def health(self, timeout: float) -> str:
        return "SERVING"

    async def heartbeat(self, timeout: float) -> None:
        return None


class SystemLocation(LocalLocation):
    """The webserver (URL: where it serves) or the daemon (URL "")."""

    hands_over = False

    def __init__(
        self,
        spec: LocationSpec,
        console: Console,
        on_change: Callable[[], None],
        *,
        socket_dir: Path,
        log: RotatingLog,
        planner: Planner,
        url: str = "",
        clock: Clock = REAL_CLOCK,
    ) -> None:
        super().__init__(
            spec,
            console,
            on_change,
            socket_dir=socket_dir,
            log=log,
            planner=planner,
            clock=clock,
            spawn=system_spawn(url),
        )
        self._url = url
        self._probe = _WebserverProbe(spec.name, url) if url else _AliveProbe()

    @property
    def runtime(self) -> str:
        return RUNTIME

    @property
    def url(self) -> str:
        return self._url

    async def code_changed(self) -> bool:
        return False

    async def restart(self) -> None:
        await self.stop("restart requested")
        self.reset()
        if self.launchable is None:
            await self.bring_up()
        else:
            self._launch(self.launchable)

    def _argv(self, socket: Path) -> list[str]:
        assert self.launchable is not None
        return list(self.launchable.argv)

    def _connect(self, address: str) -> grpc.aio.Channel | None:
        return None

    def _server(self) -> Probed | None:
        return self._probe
