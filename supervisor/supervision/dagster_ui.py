"""Dagster's UI over the supervised Dagster locations: the webserver and the daemon, one
instance, the workspace file they read, and keeping the webserver in step with the locations.

- The workspace file lists each Dagster location at its stable address (its pass-through),
  so a restart, a crash or a zero-downtime hand-over never changes what Dagster reads; the
  webserver notices a new server id at the same address by itself (about a second).
- Should it not have the location LOADED a few seconds after a new server serves (it
  gave up on an address that stayed silent, say), it is asked to reload that location, and
  the supervisor says so in the location's log.
- A location added or removed by a reload rewrites the file; the webserver is asked to
  reload its workspace and the daemon is restarted (it reads the file when it starts).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import socket
from collections.abc import Callable, Coroutine, Mapping
from pathlib import Path
from typing import Any

from supervisor.dagsterui import DAEMON, SYSTEM_NAMES, WEBSERVER
from supervisor.dagsterui.compat import compatibility
from supervisor.dagsterui.graphql import Webserver, WebserverError
from supervisor.dagsterui.instance import workspace_file, write_workspace_file
from supervisor.dagsterui.system import system_launchable
from supervisor.envs.build import Progress
from supervisor.errors import SupervisorError
from supervisor.launch.command import Launchable, stable_socket_name
from supervisor.supervision.clock import REAL_CLOCK, Clock
from supervisor.supervision.location import UP, Location
from supervisor.supervision.logs import Console, RotatingLog, log_file
from supervisor.supervision.states import State
from supervisor.supervision.system import SystemLocation, system_spec
from supervisor.workspace import LocationSpec, WorkspaceSpec

# How long the webserver may take to follow a new server by itself before it is asked.
FOLLOW_SECONDS = 5.0
FOLLOW_POLL_SECONDS = 0.25
UI_CALL_TIMEOUT = 10.0


def url_host(host: str) -> str:
    """Where the supervisor (and a person) reaches a webserver bound to HOST."""
    if host in ("0.0.0.0", ""):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


def free_port(host: str) -> int:
    """A port free on HOST now (for `--dagster-port 0`): the webserver binds it next."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def port_taken(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


class DagsterUI:
    """The webserver and the daemon of one `up`, and what keeps them in step."""

    def __init__(
        self,
        workspace: WorkspaceSpec,
        locations: Mapping[str, Location],
        console: Console,
        on_change: Callable[[], None],
        socket_dir: Path,
        port: int | None = None,
        clock: Clock = REAL_CLOCK,
    ) -> None:
        self.workspace = workspace
        self.locations = locations
        self.console = console
        self.on_change = on_change
        self.socket_dir = socket_dir
        self.clock = clock
        spec = workspace.dagster
        self.host = spec.host
        self.port = spec.port if port is None else port
        # Mutated in place, never rebound: the control service holds this very mapping.
        self.system: dict[str, SystemLocation] = {}
        self.url = ""
        self._entries: tuple[tuple[str, str], ...] | None = None
        self._seen: dict[str, int | None] = {}  # location -> pid of the server last followed
        self._ui_errors: dict[str, str] = {}  # location -> what the webserver said of it
        self._tasks: set[asyncio.Task[None]] = set()

    # -- what the supervisor calls -----------------------------------------------------------

    def dagster_locations(self) -> list[Location]:
        return [
            loc
            for loc in self.locations.values()
            if loc.runtime == "dagster" and not loc.spec.is_remote
        ]

    def sync(self) -> None:
        """Called on every change of a location: keep the file, the processes and the
        webserver's view in step. Cheap when nothing of theirs changed."""
        if not self.workspace.dagster.enabled:
            return
        located = self.dagster_locations()
        entries = tuple(
            (loc.name, str(self.socket_dir / stable_socket_name(loc.name))) for loc in located
        )
        if entries != self._entries:
            before, self._entries = self._entries, entries
            write_workspace_file(self.workspace, entries)
            if not self.system and entries:
                self._start_system()
            elif before is not None and self.system:
                self._background(self._workspace_changed())
        webserver = self.system.get(WEBSERVER)
        if webserver is None or webserver.state is not State.SERVING:
            return
        for loc in located:
            if loc.state in UP and self._seen.get(loc.name) != loc.pid:
                self._seen[loc.name] = loc.pid
                self._background(self._follow(loc.name))

    def refuses(self, specs: tuple[LocationSpec, ...]) -> str | None:
        """Why the UI cannot run beside these locations (a name of theirs), or None."""
        taken = [s.name for s in specs if s.name in SYSTEM_NAMES]
        if taken and self.workspace.dagster.enabled:
            return (
                f"location name {taken[0]!r} is the name the supervisor gives Dagster's own"
                f" process; rename the location, or set dagster: false in {self.workspace.path}"
            )
        return None

    def warning(self, location: Location) -> str | None:
        """What `status` says of a Dagster location beside the UI: the webserver's trouble
        with it, or a dagster version the webserver's may not read."""
        if location.name in self._ui_errors:
            first = self._ui_errors[location.name].strip().splitlines()[0]
            return f"the Dagster webserver cannot load it: {first}"
        webserver = self.system.get(WEBSERVER)
        if webserver is None:
            return None
        return compatibility(location.dagster_version, webserver.dagster_version)

    async def stop(self) -> None:
        """The daemon first (it launches runs), then the webserver."""
        for task in list(self._tasks):
            task.cancel()
        if DAEMON in self.system:
            await self.system[DAEMON].stop("supervisor stopping")
        if WEBSERVER in self.system:
            await self.system[WEBSERVER].stop("supervisor stopping")

    # -- the processes ----------------------------------------------------------------------

    def _start_system(self) -> None:
        spec = self.workspace.dagster
        if spec.webserver and self.port == 0:
            self.port = free_port(self.host)
        self.url = f"http://{url_host(self.host)}:{self.port}" if spec.webserver else ""
        names = [n for n, on in ((WEBSERVER, spec.webserver), (DAEMON, spec.daemon)) if on]
        for name in names:
            location = SystemLocation(
                system_spec(name, self.workspace.path, spec.line),
                self.console,
                self.on_change,
                socket_dir=self.socket_dir,
                log=RotatingLog(log_file(self.workspace.state_dir, name)),
                planner=functools.partial(self._plan, name),
                url=self.url if name == WEBSERVER else "",
                clock=self.clock,
            )
            self.system[name] = location
            task = location.run_guarded("bringing it up", location.bring_up())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _plan(
        self, name: str, _spec: LocationSpec, progress: Progress, live: Progress | None
    ) -> Launchable:
        """The planner of NAME (blocking, in a worker thread)."""
        if name == WEBSERVER and port_taken(self.host, self.port):
            raise SupervisorError(
                f"{self.host}:{self.port} is in use (another Dagster webserver?); set"
                f" dagster.webserver.port in {self.workspace.path}, or up --dagster-port 0"
                " for a free one"
            )
        return system_launchable(
            self.workspace, name, workspace_file(self.workspace), self.port, progress, live
        )

    # -- keeping the webserver in step --------------------------------------------------------

    def _background(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _follow(self, name: str) -> None:
        """Give the webserver FOLLOW_SECONDS to have NAME loaded by itself; then ask it."""
        client = Webserver(self.url)
        deadline = self.clock.monotonic() + FOLLOW_SECONDS
        seen = None
        while True:
            seen = await self._ui_location(client, name)
            if seen is not None and seen[0]:
                self._ui_errors.pop(name, None)
                return
            if self.clock.monotonic() >= deadline:
                break
            await self.clock.sleep(FOLLOW_POLL_SECONDS)
        location = self.locations.get(name)
        if location is None or location.state not in UP:
            return
        said = f" (it had: {seen[1].strip().splitlines()[0]})" if seen and seen[1] else ""
        location.console.line(
            name,
            f"the Dagster webserver had not loaded this location's new server within"
            f" {FOLLOW_SECONDS:g}s{said}; asked it to reload the location",
        )
        try:
            await asyncio.to_thread(client.reload_location, name, UI_CALL_TIMEOUT)
        except WebserverError as exc:
            self.console.line(name, f"the Dagster webserver's reload failed: {exc}")
        seen = await self._ui_location(client, name)
        if seen is not None and not seen[0] and seen[1]:
            self._ui_errors[name] = seen[1]
        else:
            self._ui_errors.pop(name, None)
        self.on_change()

    async def _ui_location(self, client: Webserver, name: str) -> tuple[bool, str] | None:
        """(loaded, error) of NAME in the webserver; None when it does not answer."""
        try:
            found = await asyncio.to_thread(client.locations, UI_CALL_TIMEOUT)
        except WebserverError:
            return None
        entry = found.get(name)
        if entry is None:
            return (False, "")
        return (entry.loaded, entry.error or "")

    async def _workspace_changed(self) -> None:
        """Locations came or went: the webserver re-reads the file, the daemon restarts."""
        webserver = self.system.get(WEBSERVER)
        if webserver is not None and webserver.state is State.SERVING:
            with contextlib.suppress(WebserverError):
                await asyncio.to_thread(Webserver(self.url).reload_workspace, UI_CALL_TIMEOUT)
                self.console.line(WEBSERVER, "reloaded its workspace: locations came or went")
        daemon = self.system.get(DAEMON)
        if daemon is not None and daemon.state in UP:
            self.console.line(DAEMON, "restarting: the workspace's Dagster locations changed")
            await daemon.restart()
