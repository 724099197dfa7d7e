"""`supervisor up`: the one event loop that owns every location of a workspace.

It takes the workspace's lock, ends what a killed predecessor left behind, serves
the control socket, builds environments (in worker threads) and starts each
location as soon as its environment is ready, then runs until told to stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from pathlib import Path
from typing import Any

from supervisor import statefile
from supervisor.envs import needs_env
from supervisor.errors import SupervisorError
from supervisor.logs import Console, RotatingLog, log_file
from supervisor.prepare import build_for, launchable_external, launchable_in_env, request_for
from supervisor.remote import RemoteLocation
from supervisor.runs import RunStore, runs_db_path
from supervisor.states import State
from supervisor.supervise import Launchable, LocalLocation
from supervisor.workspace import LocationSpec, WorkspaceSpec, load_workspace

EXIT_OK, EXIT_INTERRUPTED = 0, 130
Location = LocalLocation | RemoteLocation


class Supervisor:
    """All locations of one workspace, and the control service that commands them."""

    def __init__(
        self,
        workspace: WorkspaceSpec,
        console: Console | None = None,
        socket_dir: Path | None = None,
        record_state: bool = True,
    ) -> None:
        self.workspace = workspace
        self.console = console or Console()
        self.locations: dict[str, Location] = {}
        self.socket_dir = socket_dir or statefile.socket_dir(workspace.path)
        # `check` runs beside a possible `up`: it must not touch that one's state file.
        self.record_state = record_state
        self.control_path = self.socket_dir / "control.sock"
        self.lock = statefile.WorkspaceLock(workspace.state_dir)
        self._stop = asyncio.Event()
        self.exit_code = EXIT_OK
        self._tasks: set[asyncio.Task[None]] = set()

    # -- lifecycle -------------------------------------------------------------------------

    async def run(self) -> int:
        """Bring everything up, serve until asked to stop, bring everything down."""
        from supervisor.control import serve_control

        self.lock.acquire(self.control_path)
        try:
            self.store = RunStore(runs_db_path(self.workspace.state_dir))
            stale = self.store.reconcile("the supervisor stopped while the run was in progress")
            if stale:
                self.console.event(f"marked {len(stale)} unfinished runs as failed")
            ended = statefile.end_leftovers(self.workspace.state_dir)
            if ended:
                self.console.event(f"ended {len(ended)} code servers left by a killed supervisor")
            self._install_signal_handlers()
            server = await serve_control(self, self.control_path)
            try:
                self._write_state()
                for spec in self.workspace.locations:
                    self.add(spec)
                await self._stop.wait()
                self.console.event(
                    "stopping all locations; runs in progress may take up to their"
                    " drain_timeout (Ctrl-C again to stop at once)"
                )
                await self.stop_all()
            finally:
                await server.stop(0.5)
                with contextlib.suppress(OSError):
                    self.control_path.unlink()
                with contextlib.suppress(OSError):
                    self.socket_dir.rmdir()  # only once it is empty
        finally:
            self._write_state(final=True)
            if hasattr(self, "store"):
                self.store.close()
            self.lock.release()
        return self.exit_code

    def request_stop(self, exit_code: int = EXIT_OK) -> None:
        """Stop everything; asked a second time, stop now: kill the code servers."""
        if self._stop.is_set():
            self.console.event("stopping at once: killing every code server")
            for location in self.locations.values():
                process = getattr(location, "process", None)
                if process is not None and process.started and process.returncode is None:
                    process.kill_now()
            return
        self.exit_code = exit_code
        self._stop.set()

    def _install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, self.request_stop, EXIT_OK)
        loop.add_signal_handler(signal.SIGINT, self.request_stop, EXIT_INTERRUPTED)

    async def stop_all(self) -> None:
        await asyncio.gather(*(loc.stop("supervisor stopping") for loc in self.locations.values()))
        for task in list(self._tasks):
            task.cancel()

    # -- locations -------------------------------------------------------------------------

    def add(self, spec: LocationSpec) -> Location:
        """Create the location and begin bringing it up (build, then start)."""
        location: Location
        if spec.is_remote:
            location = RemoteLocation(spec, self.console, self._write_state)
            self.locations[spec.name] = location
            location.start()
            return location
        log = RotatingLog(log_file(self.workspace.state_dir, spec.name))
        location = LocalLocation(spec, self.socket_dir, log, self.console, self._write_state)
        self.locations[spec.name] = location
        self._spawn(self.prepare_and_start(location))
        return location

    def _spawn(self, coroutine) -> None:  # type: ignore[no-untyped-def]
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def prepare_and_start(self, location: LocalLocation) -> None:
        """Build (in a thread) what the location needs, then start it."""
        launchable = await self.prepare(location)
        if launchable is not None and not self._stop.is_set():
            location.start(launchable)

    async def prepare(self, location: LocalLocation) -> Launchable | None:
        """Find the interpreter and build the environment; None (BUILD_FAILED) on failure."""
        spec = location.spec
        try:
            if needs_env(spec):
                location.move(State.BUILDING, "finding the interpreter and environment")
                request = await asyncio.to_thread(request_for, self.workspace, spec)
                built = await asyncio.to_thread(
                    build_for, self.workspace, request, self._progress(location.name)
                )
                return launchable_in_env(self.workspace, spec, request, built)
            return await asyncio.to_thread(launchable_external, self.workspace, spec)
        except SupervisorError as exc:
            location.move(State.BUILD_FAILED, str(exc), error=True)
            return None

    def _progress(self, name: str):  # type: ignore[no-untyped-def]
        loop = asyncio.get_running_loop()

        def say(message: str) -> None:
            loop.call_soon_threadsafe(self.console.line, name, message)

        return say

    def select(self, names: list[str] | tuple[str, ...], all_: bool = False) -> list[Location]:
        """The locations named (all with ALL_); SupervisorError naming unknown ones."""
        if all_ or not names:
            return list(self.locations.values())
        unknown = [n for n in names if n not in self.locations]
        if unknown:
            raise SupervisorError(
                f"unknown location {', '.join(repr(n) for n in unknown)};"
                f" known: {', '.join(self.locations) or 'none'}"
            )
        return [self.locations[n] for n in names]

    async def reload(self) -> list[tuple[str, bool, str]]:
        """Re-read the workspace: start new, stop removed, and for changed locations build
        and start the new version while the old one serves, switching over only once the
        new one is up. Returns (location, ok, what happened)."""
        workspace = await asyncio.to_thread(load_workspace, self.workspace.path)
        results: list[tuple[str, bool, str]] = []
        new = {spec.name: spec for spec in workspace.locations}
        self.workspace = workspace
        for name in [n for n in self.locations if n not in new]:
            await self.locations.pop(name).stop("removed from the workspace")
            results.append((name, True, "removed"))
        switches: dict[str, Any] = {}
        for name, spec in new.items():
            current = self.locations.get(name)
            if current is None:
                self.add(spec)
                results.append((name, True, "added"))
            elif current.spec == spec:
                results.append((name, True, "unchanged"))
            else:
                switches[name] = self._switch(current, spec)
        outcomes = await asyncio.gather(*switches.values())
        results += [(name, ok, text) for name, (ok, text) in zip(switches, outcomes, strict=True)]
        return results

    async def _switch(self, old: Location, spec: LocationSpec) -> tuple[bool, str]:
        """Replace OLD by a location of the new SPEC: build and start the new one while the
        old one serves, switch calls over once the new one is up, then drain the old one.
        A new version that fails to build or start is dropped and the old one goes on."""
        if spec.is_remote or isinstance(old, RemoteLocation):
            await old.stop("changed in the workspace")
            self.add(spec)
            return True, "changed: reconnected"
        log = RotatingLog(log_file(self.workspace.state_dir, spec.name))
        successor = LocalLocation(spec, self.socket_dir, log, self.console, self._write_state)
        launchable = await self.prepare(successor)
        if launchable is not None:
            successor.start(launchable)
            await successor.settled(spec.startup_timeout + 5)
        if successor.state not in (State.SERVING, State.LOAD_ERROR) and old.state in (
            State.SERVING,
            State.LOAD_ERROR,
            State.UNHEALTHY,
        ):
            why = successor.machine.last_error or successor.state.value
            await successor.stop("its new version failed; the old one goes on")
            self.console.line(spec.name, f"reload: the new version failed, kept the old: {why}")
            return False, f"changed, but the new version failed ({why}); the old one goes on"
        self.locations[spec.name] = successor
        await old.stop("replaced by its new version after a reload")
        return True, "changed: restarted"

    # -- the state file --------------------------------------------------------------------

    def _write_state(self, final: bool = False) -> None:
        if not self.record_state:
            return
        children = []
        if not final:
            for name, location in self.locations.items():
                process = getattr(location, "process", None)
                if process is not None and process.pid and process.create_time:
                    children.append(
                        {"location": name, "pid": process.pid, "create_time": process.create_time}
                    )
        statefile.write_state(
            self.workspace.state_dir,
            {
                "supervisor_pid": None if final else os.getpid(),
                "workspace": str(self.workspace.path),
                "control_socket": str(self.control_path),
                "children": children,
            },
        )


def run_supervisor(workspace: WorkspaceSpec, console: Console | None = None) -> int:
    """Run `up` in the foreground; return the exit code."""
    return asyncio.run(Supervisor(workspace, console).run())
