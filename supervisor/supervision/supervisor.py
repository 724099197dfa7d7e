"""`supervisor up`: the one event loop that owns every location of a workspace.

It takes the workspace's lock, ends what a killed predecessor left behind, serves
the control socket, builds environments (in worker threads) and starts each
location as soon as its environment is ready, then runs until told to stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib
import os
import signal
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil

from supervisor.dashboard.front import DashboardFront
from supervisor.launch.prepare import launchable_for
from supervisor.safepath import child_path
from supervisor.supervision import statefile
from supervisor.supervision.clock import REAL_CLOCK, Clock
from supervisor.supervision.dagster_ui import DagsterUI
from supervisor.supervision.filewatch import watch_files
from supervisor.supervision.local import LocalLocation
from supervisor.supervision.location import UP, Location
from supervisor.supervision.logs import Console, RotatingLog, log_file
from supervisor.supervision.states import State
from supervisor.workspace import LocationSpec, WorkspaceSpec, load_workspace

# For annotations only: these load in a worker thread while the code servers start.
if TYPE_CHECKING:
    from supervisor.control.server import ControlService, StatusRows
    from supervisor.runs.store import RunStore

# What `up` serves beside its locations, loaded once their servers are starting.
SERVICES = "supervisor.supervision.services"
# What `up` serves waits this long at most for its locations to start their servers.
SPAWNS_WAIT_SECONDS = 1.0
PREPARING = frozenset({State.PENDING, State.BUILDING})
EXIT_OK, EXIT_INTERRUPTED = 0, 130
# The same signal twice within this many seconds is one delivery (to a process and its group).
DUPLICATE_SIGNAL_SECONDS = 0.1
# A second stop request escalates to killing only after this long, unless it is a Ctrl-C.
ESCALATION_GRACE_SECONDS = 1.0
# A changed location's new version gets this long beyond its startup_timeout to come up.
SWITCH_MARGIN_SECONDS = 5.0


@dataclass(frozen=True)
class Change:
    """What a reload did to one location."""

    location: str
    ok: bool
    message: str


class Supervisor:
    """All locations of one workspace, and the control service that commands them."""

    def __init__(
        self,
        workspace: WorkspaceSpec,
        console: Console | None = None,
        socket_dir: Path | None = None,
        record_state: bool = True,
        clock: Clock = REAL_CLOCK,
        watch: bool = False,
        dagster_ui: bool = True,
        dagster_port: int | None = None,
        dashboard: bool = False,
        ui_port: int | None = None,
    ) -> None:
        self.workspace = workspace
        self.watch = watch
        self.console = console or Console()
        self.clock = clock
        # Mutated in place, never rebound: the control service holds this very mapping.
        self.locations: dict[str, Location] = {}
        self.socket_dir = socket_dir or statefile.socket_dir(workspace.path)
        # `check` runs beside a possible `up`: it must not touch that one's state file.
        self.record_state = record_state
        self.control_path = self.socket_dir / "control.sock"
        self.lock = statefile.WorkspaceLock(workspace.state_dir)
        self.store: RunStore | None = None
        self.exit_code = EXIT_OK
        self._stop = asyncio.Event()
        self._moved = asyncio.Event()  # set at every change
        self._first_stop: tuple[float, int | None] = (0.0, None)
        self._tasks: set[asyncio.Task[None]] = set()
        # Locations a reload replaced or removed, stopping (draining) in the background.
        self._retiring: dict[asyncio.Task[None], Location] = {}
        # Dagster's webserver and daemon over the Dagster locations (not for `check`).
        self.ui: DagsterUI | None = None
        # The dashboard (not for `check`), made once the control service exists.
        self.dashboard: DashboardFront | None = None
        self.service: ControlService | None = None
        self._status_rows: StatusRows | None = None
        # With the pid, it names this process in the state file (`status` trusts no other).
        self.started = psutil.Process().create_time()
        self._dashboard_wanted = dashboard and workspace.ui.enabled
        self._ui_port = ui_port
        if dagster_ui and workspace.dagster.enabled:
            self.ui = DagsterUI(
                workspace,
                self.locations,
                self.console,
                self._changed,
                self.socket_dir,
                port=dagster_port,
                clock=clock,
            )

    # -- lifecycle -------------------------------------------------------------------------

    async def run(self) -> int:
        """Bring everything up, serve until asked to stop, bring everything down."""
        self.lock.acquire(self.control_path, self.workspace.path)
        try:
            ended = statefile.end_leftovers(self.workspace.state_dir)
            if ended:
                self.console.event(f"ended {len(ended)} code servers left by a killed supervisor")
            strays = statefile.end_strays(self.workspace.path)
            if strays:
                self.console.event(
                    f"ended {len(strays)} processes a killed supervisor of this workspace left"
                    f" (pids {', '.join(map(str, strays))})"
                )
            statefile.mark_environment(self.workspace.path)
            self._install_signal_handlers()
            refused = self.ui.refuses(self.workspace.locations) if self.ui else None
            if refused:
                self.console.event(f"Dagster's webserver and daemon do not run: {refused}")
                self.ui = None
            # The code servers start first; what `up` serves beside them (gRPC, protobuf,
            # SQLite) loads in a worker thread meanwhile, on the other core.
            for spec in self.workspace.locations:
                self.add(spec)
            self._changed()
            try:
                await self._spawns_begun(SPAWNS_WAIT_SECONDS)
                await asyncio.to_thread(importlib.import_module, SERVICES)
                await self._serve()
            finally:
                await self.stop_all()
        finally:
            self._write_state(final=True)
            if self.store is not None:
                self.store.close()
            self.lock.release()
        return self.exit_code

    async def _spawns_begun(self, most: float) -> None:
        """Wait until no location is still finding its interpreter and environment (each has
        started its server, or builds an environment, or failed), for MOST seconds at most:
        the import that follows would take the GIL from their preparation."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + most
        while any(loc.state in PREPARING for loc in self.locations.values()):
            self._moved.clear()
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._moved.wait(), remaining)

    async def _serve(self) -> None:
        """Serve the control socket (and the dashboard, the ticker) until asked to stop."""
        from supervisor.supervision.services import (
            ControlService,
            RunStore,
            StatusRows,
            Ticker,
            materializer,
            runs_db_path,
            serve_control,
        )

        self.store = RunStore(runs_db_path(self.workspace.state_dir))
        stale = self.store.reconcile("the supervisor stopped while the run was in progress")
        if stale:
            self.console.event(f"marked {len(stale)} unfinished runs as failed")
        ticker = Ticker(
            self.store, self.locations, materializer(self.store), self.clock, self.console
        )
        service = ControlService(
            locations=self.locations,
            store=self.store,
            workspace_path=self.workspace.path,
            reload=self.reload,
            request_stop=self.request_stop,
            ticker=ticker,
            system=self.ui.system if self.ui else {},
            warning=self.ui.warning if self.ui else None,
        )
        self.service = service
        self._status_rows = StatusRows(service)
        server = await serve_control(service, self.control_path)
        try:
            self._write_state()
            if self._dashboard_wanted:
                self._start_dashboard(service)
                self._write_state()
            self._tasks.add(asyncio.create_task(ticker.run(), name="ticker"))
            if self.watch:
                watching = watch_files(
                    lambda: self.workspace, self.clock, self.console, self.reload
                )
                self._tasks.add(asyncio.create_task(watching, name="watch"))
            await self._stop.wait()
            self.console.event(
                "stopping all locations; runs in progress may take up to their"
                " drain_timeout (Ctrl-C again to stop at once)"
            )
            await self.stop_all()
        finally:
            if self.dashboard is not None:
                await self.dashboard.stop()
            await server.stop(0.5)
            with contextlib.suppress(OSError):
                self.control_path.unlink()
            with contextlib.suppress(OSError):
                self.socket_dir.rmdir()  # only once it is empty

    def request_stop(self, exit_code: int = EXIT_OK, signum: int | None = None) -> None:
        """Stop everything; asked again by a person, stop now: kill the code servers.

        A tool that signals a process and then its group (GNU `timeout`, a CI runner) sends
        the same signal twice within milliseconds: that is one request, not two. A second
        request escalates when it is a later Ctrl-C, or any request after the grace period.
        """
        now = self.clock.monotonic()
        if not self._stop.is_set():
            self.exit_code = exit_code
            self._first_stop = (now, signum)
            self._stop.set()
            return
        first_at, first_signum = self._first_stop
        elapsed = now - first_at
        if elapsed < DUPLICATE_SIGNAL_SECONDS:
            return
        person = signum == signal.SIGINT and first_signum == signal.SIGINT
        if not person and elapsed < ESCALATION_GRACE_SECONDS:
            self.console.event(
                f"already stopping (a second {_signal_name(signum)} within"
                f" {ESCALATION_GRACE_SECONDS:g}s is not taken as a request to kill)"
            )
            return
        self.console.event("stopping at once: killing every code server")
        for location in self._everything():
            location.kill_now()

    def _install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, self.request_stop, EXIT_OK, signal.SIGTERM)
        loop.add_signal_handler(signal.SIGINT, self.request_stop, EXIT_INTERRUPTED, signal.SIGINT)

    async def stop_all(self) -> None:
        if self.ui is not None:
            await self.ui.stop()
        await asyncio.gather(
            *(loc.stop("supervisor stopping") for loc in self.locations.values()),
            *list(self._retiring),
        )
        for task in list(self._tasks):
            task.cancel()

    # -- locations -------------------------------------------------------------------------

    def make_location(self, spec: LocationSpec) -> Location:
        """The location of SPEC, of the kind its entry asks for (not yet started)."""
        if spec.is_remote:
            from supervisor.supervision.remote import RemoteLocation

            return RemoteLocation(spec, self.console, self._changed, clock=self.clock)
        state_dir = self.workspace.state_dir
        return LocalLocation(
            spec,
            self.console,
            self._changed,
            socket_dir=self.socket_dir,
            log=RotatingLog(log_file(state_dir, spec.name)),
            planner=functools.partial(launchable_for, self.workspace),
            values_dir=child_path(state_dir / "values", spec.name),
            clock=self.clock,
        )

    def add(self, spec: LocationSpec) -> Location:
        """Create the location and begin bringing it up (build, then start)."""
        location = self.make_location(spec)
        self.locations[spec.name] = location
        self._background(location, location.bring_up())
        return location

    def _background(self, location: Location, work: Coroutine[Any, Any, None]) -> None:
        """Run WORK for LOCATION; an unexpected exception fails the location, visibly."""
        task = location.run_guarded("bringing it up", work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def reload(self) -> list[Change]:
        """Re-read the workspace: start new, stop removed, and for changed locations build
        and start the new version while the old one serves, switching over only once the
        new one is up."""
        if self.workspace.from_flags:
            workspace = self.workspace  # the flags do not change; the code may have
        else:
            workspace = await asyncio.to_thread(
                load_workspace, self.workspace.files or [self.workspace.path], self.workspace.cwd
            )
            for warning in workspace.warnings:
                self.console.line("supervisor", f"warning: {warning}")
        results: list[Change] = []
        new = {spec.name: spec for spec in workspace.locations}
        self.workspace = workspace
        for name in [n for n in self.locations if n not in new]:
            self._retire(self.locations.pop(name), "removed from the workspace")
            results.append(Change(name, True, "removed"))
        switches: dict[str, Coroutine[Any, Any, Change]] = {}
        for name, spec in new.items():
            current = self.locations.get(name)
            if current is None:
                self.add(spec)
                results.append(Change(name, True, "added"))
            elif current.spec == spec and await current.code_changed():
                switches[name] = self._restart_for_code(current)
            elif current.spec == spec:
                results.append(Change(name, True, "unchanged"))
            else:
                switches[name] = self._switch(current, spec)
        results += await asyncio.gather(*switches.values())
        self._changed()
        return results

    async def _restart_for_code(self, location: Location) -> Change:
        """Restart LOCATION (zero-downtime) because its source changed."""
        before = location.pid
        await location.restart()
        await location.settled(location.spec.startup_timeout + SWITCH_MARGIN_SECONDS)
        if location.state in UP and location.pid != before:
            return Change(location.name, True, "code changed: restarted")
        why = location.machine.last_error or location.state.value
        return Change(location.name, False, f"code changed, but the new server failed ({why})")

    async def _switch(self, old: Location, spec: LocationSpec) -> Change:
        """Replace OLD by a location of the new SPEC: bring the new one up while the old one
        serves, switch calls over once the new one is up, then stop the old one. A new
        version that fails to build or start is dropped and the old one goes on."""
        successor = self.make_location(spec)
        if not (old.hands_over and successor.hands_over):
            await old.stop("changed in the workspace")
            self.locations[spec.name] = successor
            self._background(successor, successor.bring_up())
            return Change(spec.name, True, "changed: reconnected")
        await successor.bring_up()
        await successor.settled(spec.startup_timeout + SWITCH_MARGIN_SECONDS)
        if successor.state not in UP and old.state in (*UP, State.UNHEALTHY):
            why = successor.machine.last_error or successor.state.value
            await successor.stop("its new version failed; the old one goes on")
            self.console.line(spec.name, f"reload: the new version failed, kept the old: {why}")
            message = f"changed, but the new version failed ({why}); the old one goes on"
            return Change(spec.name, False, message)
        self.locations[spec.name] = successor
        self._retire(old, "replaced by its new version after a reload")
        return Change(spec.name, True, "changed: restarted")

    def _retire(self, location: Location, reason: str) -> None:
        """Stop a location no longer in the workspace in the background: its runs in
        progress drain (up to drain_timeout) while the reload answers at once."""
        task = asyncio.create_task(location.stop(reason), name=f"retire-{location.name}")
        self._retiring[task] = location
        task.add_done_callback(lambda done: self._retiring.pop(done, None))

    # -- the state file --------------------------------------------------------------------

    def _everything(self) -> list[Location]:
        """Every location and system process that may have a process of ours."""
        system = list(self.ui.system.values()) if self.ui else []
        return [*self.locations.values(), *self._retiring.values(), *system]

    def _changed(self) -> None:
        """Something changed: record it, and keep Dagster's UI in step."""
        self._moved.set()
        self._write_state()
        if self.ui is not None:
            self.ui.sync()
        if self.dashboard is not None:
            self.dashboard.changed()

    def _start_dashboard(self, service: ControlService) -> None:
        # Listening costs nothing; aiohttp loads at the first connection (dashboard/front.py).
        dashboard = DashboardFront(
            self.workspace.ui, service, lambda: self.workspace, self.console, self._ui_port
        )
        if dashboard.listen() is not None:
            self.dashboard = dashboard

    def _write_state(self, final: bool = False) -> None:
        if not self.record_state:
            return
        children = []
        if not final:
            for location in self._everything():
                children += [
                    {"location": c.location, "pid": c.pid, "create_time": c.create_time}
                    for c in location.children()
                ]
        statefile.write_state(
            self.workspace.state_dir,
            {
                "supervisor_pid": None if final else os.getpid(),
                "supervisor_started": self.started,
                "workspace": str(self.workspace.path),
                "control_socket": str(self.control_path),
                "children": children,
                "ui": self.dashboard.state() if self.dashboard and not final else None,
            },
            # What `status` shows, so that it needs no call (nor grpc) to show it.
            self._status_rows() if self._status_rows and not final else (),
        )


def run_supervisor(
    workspace: WorkspaceSpec,
    console: Console | None = None,
    watch: bool = False,
    dagster_port: int | None = None,
    ui: bool = True,
    ui_port: int | None = None,
) -> int:
    """Run `up` in the foreground; return the exit code."""
    supervisor = Supervisor(
        workspace, console, watch=watch, dagster_port=dagster_port, dashboard=ui, ui_port=ui_port
    )
    return asyncio.run(supervisor.run())


def _signal_name(signum: int | None) -> str:
    return signal.Signals(signum).name if signum is not None else "stop request"
