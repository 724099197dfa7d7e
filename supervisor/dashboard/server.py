"""The dashboard once loaded (dashboard/front.py loads it at the first connection): its web
server on the loop `up` runs, what its pages read, every change heard, a stop with `up`."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Mapping
from typing import Any

import jinja2
from aiohttp import web

from supervisor.dashboard import facts
from supervisor.dashboard.front import DashboardFront
from supervisor.dashboard.live import Hub
from supervisor.supervision.location import Location

# Seconds the server waits for open connections (live streams) when `up` stops.
SHUTDOWN_SECONDS = 1.0


class Dashboard:
    """The dashboard of one `up`, once loaded: its web server and what its pages read."""

    def __init__(self, front: DashboardFront) -> None:
        self.spec = front.spec
        self.service = front.service
        self.workspace = front.workspace
        self.console = front.console
        self.host = front.host
        self.port = front.port
        self.url = front.url
        self.token = front.token
        self.templates: jinja2.Environment | None = None
        self.meter = facts.Meter()
        self.hub = Hub(self.rows, self.figures)
        self._runner: web.AppRunner | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- what the pages read ---------------------------------------------------------------

    def everything(self) -> Mapping[str, Location]:
        """The locations, then Dagster's webserver and daemon when they run."""
        return {**self.service.locations, **self.service.system}

    def rows(self) -> dict[str, dict[str, Any]]:
        return {
            name: facts.row(location, self.service.warning_of(location))
            for name, location in self.everything().items()
        }

    def figures(self) -> dict[str, dict[str, Any]]:
        pids = {name: loc.pid for name, loc in self.everything().items() if loc.pid}
        by_pid = self.meter.read(pids.values())
        return {name: by_pid[pid] for name, pid in pids.items() if pid in by_pid}

    def background(self, task: asyncio.Task[Any]) -> None:
        """Keep TASK (an action a button started) until it ends."""
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- life ------------------------------------------------------------------------------

    async def serve(self, sockets: list[socket.socket]) -> None:
        """Serve the pages on SOCKETS, listening already (a first connection may wait)."""
        from supervisor.dashboard.app import make_app

        self.hub.bind(asyncio.get_running_loop())
        runner = web.AppRunner(make_app(self), access_log=None, shutdown_timeout=SHUTDOWN_SECONDS)
        await runner.setup()
        try:
            for listening in sockets:
                await web.SockSite(runner, listening).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner

    def changed(self) -> None:
        """A location changed: the pages hear of it."""
        self.hub.changed()

    async def stop(self) -> None:
        await self.hub.close()
        for task in list(self._tasks):
            task.cancel()
        if self._runner is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._runner.cleanup(), SHUTDOWN_SECONDS * 3)
            self._runner = None
