"""The dashboard's life inside `up`: listen (on the loop `up` runs), keep the token, hear
of every change, stop with the supervisor."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import secrets
from collections.abc import Callable, Mapping
from typing import Any

import jinja2
from aiohttp import web

from supervisor.control.server import ControlService
from supervisor.dashboard import facts
from supervisor.dashboard.live import Hub
from supervisor.private import private_dir, write_private
from supervisor.supervision.location import Location
from supervisor.supervision.logs import Console
from supervisor.workspace import UiSpec, WorkspaceSpec
from supervisor.workspace.dagster_block import loopback
from supervisor.workspace.specs import DEFAULT_UI_PORT

# Seconds the server waits for open connections (live streams) when `up` stops.
SHUTDOWN_SECONDS = 1.0


class Dashboard:
    """The dashboard of one `up`: its web server and what its pages read."""

    def __init__(
        self,
        spec: UiSpec,
        service: ControlService,
        workspace: Callable[[], WorkspaceSpec],
        console: Console,
        port: int | None = None,
    ) -> None:
        self.spec = spec
        self.service = service
        self.workspace = workspace
        self.console = console
        self.host = spec.host
        chosen = spec.port if port is None else port
        # A port the user chose is theirs to fix; the default one gives way to a free one.
        self.port_chosen = chosen is not None
        self.wanted_port = DEFAULT_UI_PORT if chosen is None else chosen
        self.port = 0
        self.token: str | None = None
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

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/" if self.port else ""

    def _token(self) -> str | None:
        """Beyond loopback: the token file's, or a new one (printed once by `start`)."""
        if loopback(self.host):
            return None
        path = self.spec.token_file
        if path is None:
            return secrets.token_urlsafe(24)
        if path.is_file():
            token = path.read_text().strip()
            if token:
                return token
        token = secrets.token_urlsafe(24)
        private_dir(path.parent)
        write_private(path, token + "\n")
        self.console.event(f"dashboard: wrote a new token to {path}")
        return token

    async def start(self) -> str | None:
        """Listen; return the URL, or None (having said why) when it cannot."""
        from supervisor.dashboard.app import make_app

        self.token = self._token()
        self.hub.bind(asyncio.get_running_loop())
        runner = web.AppRunner(make_app(self), access_log=None, shutdown_timeout=SHUTDOWN_SECONDS)
        await runner.setup()
        try:
            await self._listen(runner)
        except OSError as exc:
            await runner.cleanup()
            self.console.event(
                f"the dashboard does not run: cannot listen on {self.host}:{self.wanted_port}"
                f" ({exc.strerror or exc}); set ui.port in the workspace or up --ui-port"
            )
            return None
        self._runner = runner
        addresses = runner.addresses
        self.port = addresses[0][1] if addresses else self.wanted_port
        if self.token is not None and self.spec.token_file is None:
            self.console.event(
                f"dashboard: {self.url}?token={self.token} (beyond this machine every request"
                " needs the token; it is printed only this once)"
            )
        elif self.token is not None:
            self.console.event(
                f"dashboard: {self.url} (beyond this machine; token in {self.spec.token_file})"
            )
        else:
            self.console.event(f"dashboard: {self.url}")
        return self.url

    async def _listen(self, runner: web.AppRunner) -> web.TCPSite:
        site = web.TCPSite(runner, self.host, self.wanted_port, reuse_address=True)
        try:
            await site.start()
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE or self.port_chosen or self.wanted_port == 0:
                raise
            taken = self.wanted_port
            site = web.TCPSite(runner, self.host, 0)
            await site.start()
            self.console.event(f"dashboard: port {taken} is taken, so it takes a free one")
        return site

    def state(self) -> dict[str, Any] | None:
        """What the state file says of the dashboard, for `supervisor ui`."""
        if not self.port:
            return None
        return {"url": self.url, "token_required": self.token is not None}

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
