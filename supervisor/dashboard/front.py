"""The dashboard's front door: its address and token, taken when `up` starts, and what loads
the rest on the first connection. What serves the pages (aiohttp and Jinja2, 13 MB of the
supervisor's memory) loads only once somebody comes, so a supervisor nobody looks at never
pays for it; the first page waits for that load, a few tenths of a second, once."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import importlib
import secrets
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from supervisor.private import private_dir, write_private
from supervisor.supervision.logs import Console
from supervisor.workspace import UiSpec, WorkspaceSpec
from supervisor.workspace.dagster_block import loopback
from supervisor.workspace.specs import DEFAULT_UI_PORT

# For annotations only: server.py (aiohttp) loads at the first connection, and imports this;
# the control service loads after the code servers start.
if TYPE_CHECKING:
    from supervisor.control.server import ControlService
    from supervisor.dashboard.server import Dashboard

BACKLOG = 128


class DashboardFront:
    """The dashboard of one `up`: listening from the start, served once it is asked for."""

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
        self.sockets: list[socket.socket] = []
        self.dashboard: Dashboard | None = None  # once loaded
        self._loading: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/" if self.port else ""

    def listen(self) -> str | None:
        """Listen, and load the rest at the first connection; return the URL, or None
        (having said why) when it cannot listen."""
        self.token = self._token()
        try:
            self.sockets = self._bind()
        except OSError as exc:
            self.console.event(
                f"the dashboard does not run: cannot listen on {self.host}:{self.wanted_port}"
                f" ({exc.strerror or exc}); set ui.port in the workspace or up --ui-port"
            )
            return None
        self.port = self.sockets[0].getsockname()[1]
        loop = asyncio.get_running_loop()
        for listening in self.sockets:
            loop.add_reader(listening.fileno(), self._first_connection)
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

    def _token(self) -> str | None:
        """Beyond loopback: the token file's, or a new one (printed once by `listen`)."""
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

    def _bind(self) -> list[socket.socket]:
        """Sockets listening on every address of the host, on one port."""
        try:
            return bind_all(self.host, self.wanted_port)
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE or self.port_chosen or self.wanted_port == 0:
                raise
            sockets = bind_all(self.host, 0)
            self.console.event(
                f"dashboard: port {self.wanted_port} is taken, so it takes a free one"
            )
            return sockets

    def _first_connection(self) -> None:
        loop = asyncio.get_running_loop()
        for listening in self.sockets:
            loop.remove_reader(listening.fileno())
        if self._loading is None:
            self._loading = asyncio.ensure_future(self._load())

    async def _load(self) -> None:
        try:
            # In a thread: the loop goes on supervising while aiohttp loads.
            server = await asyncio.to_thread(importlib.import_module, "supervisor.dashboard.server")
            dashboard = server.Dashboard(self)
            await dashboard.serve(self.sockets)
        except Exception as exc:
            self.console.event(f"the dashboard does not run: {type(exc).__name__}: {exc}")
            self._close_sockets()
            return
        self.dashboard = dashboard

    def _close_sockets(self) -> None:
        for listening in self.sockets:
            with contextlib.suppress(OSError, ValueError):
                asyncio.get_running_loop().remove_reader(listening.fileno())
            listening.close()
        self.sockets = []

    def state(self) -> dict[str, Any] | None:
        """What the state file says of the dashboard, for `supervisor ui`."""
        if not self.port:
            return None
        return {"url": self.url, "token_required": self.token is not None}

    def changed(self) -> None:
        """A location changed: the pages hear of it (none are open before the load)."""
        if self.dashboard is not None:
            self.dashboard.changed()

    async def stop(self) -> None:
        if self._loading is not None and not self._loading.done():
            self._loading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loading
        if self.dashboard is not None:
            await self.dashboard.stop()  # it closes the sockets
            self.dashboard = None
        self._close_sockets()


def bind_all(host: str, port: int) -> list[socket.socket]:
    """Listening sockets on every address HOST resolves to, all on PORT (0: one free port
    for all), as asyncio's create_server binds them."""
    found = socket.getaddrinfo(
        host, port, socket.AF_UNSPEC, socket.SOCK_STREAM, 0, socket.AI_PASSIVE
    )
    sockets: list[socket.socket] = []
    seen = set()
    try:
        for family, kind, proto, _, address in found:
            if (family, address[:2]) in seen:
                continue
            seen.add((family, address[:2]))
            listening = socket.socket(family, kind, proto)
            sockets.append(listening)
            listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                listening.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            if port == 0 and len(sockets) > 1:
                address = (address[0], sockets[0].getsockname()[1], *address[2:])
            listening.bind(address)
            listening.listen(BACKLOG)
            listening.setblocking(False)
    except OSError:
        for listening in sockets:
            listening.close()
        raise
    return sockets
