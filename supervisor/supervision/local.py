"""Supervise one local location: build, start its code server, watch it, restart it by the rules.

Everything here runs on the supervisor's one event loop, which owns all state. A process
exit is seen when it happens (the loop's child watcher), never by polling. The clock and
the way processes are spawned are parameters, so a test can replay a crash loop on a fake
clock with fake processes through this very code.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from supervisor.envs import needs_env
from supervisor.envs.build import Progress
from supervisor.errors import SupervisorError
from supervisor.launch.command import Launchable, stable_socket_name
from supervisor.launch.process import CodeServerProcess, Ready
from supervisor.supervision.clock import REAL_CLOCK, Clock
from supervisor.supervision.location import UP, ChildProcess, Location
from supervisor.supervision.logs import Console, RotatingLog
from supervisor.supervision.outcomes import Asked, Ended, ServerProcess, Spawn, Started, StartFailed
from supervisor.supervision.probes import Probed
from supervisor.supervision.restart import Decision, RestartTracker
from supervisor.supervision.route import Route
from supervisor.supervision.sources import fingerprint
from supervisor.supervision.spawner import Spawner, dagster_process
from supervisor.supervision.standby import Standby
from supervisor.supervision.states import State
from supervisor.supervision.watch import Watch
from supervisor.workspace import LocationSpec

# For annotations only: gRPC loads once `up` has started its servers.
if TYPE_CHECKING:
    import grpc


# A Dagster location's stable address holds calls for a server in these states.
COMING_UP = frozenset({State.BUILDING, State.STARTING, State.BACKOFF, State.UNHEALTHY})
# A draining server ends its own runs at drain_timeout; this is its time to exit after that.
DRAIN_MARGIN_SECONDS = 5.0

# From a spec to what starts its server: finds the interpreter, builds the environment.
# Blocking (it runs uv): called in a worker thread.
# The second Progress hears how a build goes while it runs: given only on a terminal.
Planner = Callable[[LocationSpec, Progress, "Progress | None"], Launchable]


class LocalLocation(Location):
    """A location whose code server runs here, in the environment built for it."""

    hands_over = True

    def __init__(
        self,
        spec: LocationSpec,
        console: Console,
        on_change: Callable[[], None],
        *,
        socket_dir: Path,
        log: RotatingLog,
        planner: Planner,
        values_dir: Path | None = None,
        clock: Clock = REAL_CLOCK,
        spawn: Spawn = CodeServerProcess,
        dagster_spawn: Spawn | None = None,
    ) -> None:
        super().__init__(spec, console, on_change, remote=False, log=log, clock=clock)
        self.tracker = RestartTracker(spec.restart)
        self.socket_dir = socket_dir
        self.planner = planner
        self.spawner = Spawner(
            spec, socket_dir, self._output, spawn, dagster_spawn or dagster_process, self._argv
        )
        self._values_dir = values_dir
        self.launchable: Launchable | None = None
        self.process: ServerProcess | None = None
        self._ready: Ready | None = None
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._wanted = False
        self._stop_reason = "stopped"
        self._handover_asked = asyncio.Event()
        self._handover: asyncio.Future[None] | None = None
        self._draining: set[asyncio.Task[None]] = set()
        self._next_attempt: float | None = None
        self._source: str | None = None  # the fingerprint of the serving server's code
        # Its calls' way to the current server (and a Dagster location's stable address).
        self.route = Route(
            socket_dir / stable_socket_name(self.name),
            lambda: self.state in COMING_UP,
            self._connect,
        )
        self._serving_reason: str | None = None  # how the next SERVING came about, if not a start
        stop_timeout = spec.drain_timeout + DRAIN_MARGIN_SECONDS
        self.standby = (
            Standby(self._start_standby, self._standby_said, clock, stop_timeout)
            if spec.standby
            else None
        )

    # -- what others ask -------------------------------------------------------------------

    @property
    def channel(self) -> grpc.aio.Channel | None:
        return self.route.channel

    @property
    def address(self) -> str:
        """Where the location answers: a Dagster location's one stable address (its
        pass-through), else the serving server's own."""
        if self.route.passthrough is not None:
            return self.route.passthrough.address
        return self._ready.address if self._ready is not None else ""

    @property
    def pid(self) -> int | None:
        process = self.process
        if process is None or process.returncode is not None:
            return None
        return process.pid

    @property
    def restarts(self) -> int:
        return self.tracker.restarts

    @property
    def python_version(self) -> str:
        return self.launchable.python_version if self.launchable else ""

    @property
    def runtime(self) -> str:
        return self.launchable.runtime if self.launchable else self.spec.effective_runtime

    @property
    def dagster_version(self) -> str:
        return self.launchable.dagster_version if self.launchable else ""

    @property
    def env_key(self) -> str | None:
        return self.launchable.env_key if self.launchable else None

    @property
    def values_dir(self) -> Path | None:
        return self._values_dir

    @property
    def next_attempt(self) -> float | None:
        return self._next_attempt if self.state is State.BACKOFF else None

    async def code_changed(self) -> bool:
        if self._source is None or self.state not in UP:
            return False
        return await asyncio.to_thread(fingerprint, self.spec) != self._source

    def children(self) -> list[ChildProcess]:
        processes = [self.process, self.standby.process if self.standby else None]
        return [
            ChildProcess(self.name, process.pid, process.create_time)
            for process in processes
            if process is not None and process.pid and process.create_time
        ]

    def kill_now(self) -> None:
        for process in (self.process, self.standby.process if self.standby else None):
            if process is not None and process.started and process.returncode is None:
                process.kill_now()

    async def bring_up(self) -> None:
        """Find the interpreter and build the environment (in a thread), then start."""
        self._wanted = True
        if self.spec.effective_runtime == "dagster":
            # Its stable address answers from the start: a caller (Dagster's webserver)
            # that comes early waits there for the first server.
            await self.route.open_passthrough()
        launchable = await self._prepare()
        # A stop asked for during the build wins.
        if launchable is not None and self._wanted:
            self._launch(launchable)

    def start(self) -> str | None:
        if self.launchable is None:
            return "its environment is not built"
        self.reset()
        self._launch(self.launchable)
        return None

    async def stop(self, reason: str = "stop requested") -> None:
        """Stop the code server and supervising it; waits until it is down."""
        self._wanted = False
        self._stop_reason = reason
        self._wake.set()
        if self._task is not None:
            # Shielded: a caller given up on (a cancelled restart) must not cancel the loop's
            # own way down, which another stop may be waiting for.
            await asyncio.shield(self._task)
        else:
            if self.state not in (State.STOPPED, State.BUILD_FAILED, State.FATAL):
                self.move(State.STOPPED, reason)
            # Opened early, for a server that never came.
            await self.route.close_passthrough()

    async def restart(self) -> None:
        """Start a new server, switch calls to it once it serves, then drain the old one.

        Only a location that is up can hand over; any other restarts from scratch.
        """
        self.reset()
        running = self._task is not None and not self._task.done()
        if not running or self.state not in (*UP, State.UNHEALTHY):
            await self.stop("restart requested")
            self.reset()
            if self.launchable is None:
                await self.bring_up()
            else:
                self._launch(self.launchable)
            return
        self._handover = asyncio.get_running_loop().create_future()
        self._handover_asked.set()
        await self._handover

    def reset(self) -> None:
        """A person asked for a (re)start: forget the back-off and the last error."""
        self.tracker.reset()
        self.machine.clear_error()

    # -- preparing -------------------------------------------------------------------------

    async def _prepare(self) -> Launchable | None:
        """What starts the server; None (BUILD_FAILED, with the reason) when it cannot be had."""
        loop = asyncio.get_running_loop()

        def progress(message: str) -> None:
            loop.call_soon_threadsafe(self.console.line, self.name, message)

        try:
            if needs_env(self.spec):
                self.move(State.BUILDING, "finding the interpreter and environment")
            live = progress if self.console.is_terminal else None
            return await asyncio.to_thread(self.planner, self.spec, progress, live)
        except SupervisorError as exc:
            self.move(State.BUILD_FAILED, str(exc), error=True)
        except Exception as exc:
            self.fail("preparing its environment", exc, to=State.BUILD_FAILED)
        return None

    def _launch(self, launchable: Launchable) -> None:
        """Begin supervising with LAUNCHABLE; a no-op while the loop already runs."""
        self.launchable = launchable
        if self._task is not None and not self._task.done():
            return
        self._wanted = True
        self._wake = asyncio.Event()
        # Moved now, not in the task: whoever asked sees the start at once.
        self.move(State.STARTING, "starting")
        self._task = self.run_guarded("supervising its code server", self._supervise())

    # -- the supervision loop --------------------------------------------------------------

    async def _supervise(self) -> None:
        current: Started | None = None
        try:
            while self._wanted:
                if current is None:
                    self.move(State.STARTING, "starting")
                    match await self._spawn():
                        case Started() as started:
                            current = started
                        case StartFailed(reason=reason):
                            if not await self._after_exit(True, reason, served=False):
                                break
                            continue
                        case Asked.STOP | Asked.HANDOVER:
                            break
                match await self._serve(current):
                    case Asked.HANDOVER:
                        current = await self._hand_over(current)
                    case Asked.STOP:
                        break
                    case Ended(failed=failed, reason=reason):
                        current = None
                        decision = self.tracker.on_exit(self.clock.monotonic(), failed)
                        taken = self.standby.take() if self.standby else None
                        if taken is not None and decision.action == "restart":
                            current = self._take_over(taken, decision, reason)
                        elif not await self._follow(decision, reason, failed):
                            break
        finally:
            await self._shutdown_process()
            if self._draining:
                await asyncio.gather(*self._draining, return_exceptions=True)
            await self.route.close_passthrough()

    def _take_over(self, standby: Started, decision: Decision, reason: str) -> Started:
        """The server died and the restart policy says restart: the standby serves at once,
        and another is started (after the back-off the policy asks for)."""
        first = reason.partition("\n")[0]
        pid = standby.ready.pid
        self._next_attempt = None
        self.move(State.BACKOFF, f"{first}; the standby (pid {pid}) takes over", error=True)
        self.tracker.on_started(self.clock.monotonic())
        self.move(State.STARTING, f"switching to the standby (pid {pid})")
        self._serving_reason = f"the standby serves (pid {pid})"
        assert self.standby is not None
        self.standby.prepare(standby.source, delay=decision.delay)
        return standby

    async def _after_exit(self, failed: bool, reason: str, served: bool = True) -> bool:
        """Ask the restart policy about an exit (or a failed start) and act; True to go on."""
        decision = self.tracker.on_exit(self.clock.monotonic(), failed, served)
        return await self._follow(decision, reason, failed)

    async def _spawn(self) -> Started | StartFailed | Asked:
        """Start a process; return it once ready, why it failed, or STOP when asked to stop."""
        assert self.launchable is not None, "the loop runs only once there is a launchable"
        self.tracker.on_started(self.clock.monotonic())
        return await self.spawner.start(self.launchable, self._wake)

    async def _serve(self, current: Started) -> Ended | Asked:
        """Route calls to the process of CURRENT and watch it until it ends or we are asked."""
        if self.process is not current.process or self.route.channel is None:
            await self.route.close_channel()
            self.route.switch(current.ready.address)
        self.process, self._ready = current.process, current.ready
        self._source = current.source
        if self.runtime == "dagster":
            await self.route.open_passthrough()
        self.report_change()
        ready = current.ready
        self.load_error = ready.load_error
        if ready.load_error:
            self.move(State.LOAD_ERROR, ready.load_error.splitlines()[0], error=True)
            if self.standby is not None:
                self.standby.discard()  # a standby of code that does not load is of no use
        else:
            reason, self._serving_reason = self._serving_reason, None
            self.move(
                State.SERVING, reason or f"ready in {ready.ready_seconds:.2f}s (pid {ready.pid})"
            )
            if self.standby is not None:
                self.standby.prepare(current.source)
        return await self._watch(current.process)

    async def _hand_over(self, current: Started) -> Started:
        """Start a successor while CURRENT serves; once it is ready, drain CURRENT."""
        self._handover_asked.clear()
        old_channel = self.route.channel
        outcome: Started | StartFailed | Asked | None = None
        if self.standby is not None:
            # Unchanged code: the standby is the new server, at once.
            outcome = self.standby.take(await asyncio.to_thread(fingerprint, self.spec))
        if outcome is None:
            outcome = await self._spawn()
        handover, self._handover = self._handover, None
        try:
            if not isinstance(outcome, Started):
                why = outcome.reason if isinstance(outcome, StartFailed) else "stop requested"
                self.console.line(self.name, f"restart failed, the old server goes on: {why}")
                return current
            self.console.line(
                self.name,
                f"restarted: pid {outcome.ready.pid} serves, pid {current.process.pid} drains",
            )
            self.route.switch(outcome.ready.address)
            self.process, self._ready = outcome.process, outcome.ready
            self._source = outcome.source
            task = asyncio.create_task(self._drain(current.process, old_channel))
            self._draining.add(task)
            task.add_done_callback(self._draining.discard)
            return outcome
        finally:
            if handover is not None and not handover.done():
                handover.set_result(None)

    async def _drain(self, process: ServerProcess, channel: grpc.aio.Channel | None) -> None:
        """Let the old server finish what it has in flight, then end it."""
        await process.stop(self.spec.drain_timeout + DRAIN_MARGIN_SECONDS)
        if channel is not None:
            await channel.close()

    async def _watch(self, process: ServerProcess) -> Ended | Asked:
        watch = Watch(
            self.spec,
            self.clock,
            self._server,
            self._wake,
            self._handover_asked,
            lambda: self._wanted,
            self._health_checked,
            heartbeats=self.runtime == "dagster",
        )
        return await watch.until_it_ends(process)

    async def _follow(self, decision: Decision, reason: str, failed: bool) -> bool:
        """Act on the tracker's decision; True to start again."""
        # The decision goes after the first line, before any quoted stderr.
        first, _, rest = reason.partition("\n")
        message = f"{first}; {decision.reason}" + (f"\n{rest}" if rest else "")
        if decision.action == "restart":
            self._next_attempt = self.clock.time() + decision.delay
            self.move(State.BACKOFF, message, error=True)
            await self.route.close_channel()
            if decision.delay > 0:
                await self.clock.wait(self._wake, decision.delay)
            return self._wanted
        if decision.action == "fatal":
            self.move(State.FATAL, message, error=True)
        else:
            self.move(State.STOPPED, message, error=failed)
        return False

    async def _shutdown_process(self) -> None:
        if self.standby is not None:
            await self.standby.stop()
        process, self.process = self.process, None
        if process is not None and process.started and process.returncode is None:
            self.move(State.STOPPING, self._stop_reason)
            await process.stop(self.spec.drain_timeout + DRAIN_MARGIN_SECONDS)
        await self.route.close_channel()
        if self._handover is not None and not self._handover.done():
            self._handover.set_result(None)
        if self.state not in (State.STOPPED, State.FATAL):
            self.move(State.STOPPED, self._stop_reason)
        self.report_change()

    async def _start_standby(
        self, register: Callable[[ServerProcess], None]
    ) -> Started | StartFailed:
        assert self.launchable is not None, "a standby follows a server that serves"
        return await self.spawner.start_standby(self.launchable, register)

    def _standby_said(self, message: str) -> None:
        self._say(message)
        self.on_change()  # the state file lists its pid (or no more), for a clean-up after a kill

    def _say(self, message: str) -> None:
        self.console.line(self.name, message)
        if self.log is not None:
            self.log.write(f"[supervisor] {message}".encode())

    def _argv(self, socket: Path) -> list[str]:
        """The command line of one server, listening on SOCKET."""
        assert self.launchable is not None
        return [*self.launchable.argv, "--socket", str(socket)]

    def _connect(self, address: str) -> grpc.aio.Channel | None:
        """The channel calls go to, for a server ready at ADDRESS."""
        from supervisor.control.codeserver import aio_channel

        return aio_channel(address)

    def _server(self) -> Probed | None:
        channel = self.route.channel
        return None if channel is None else self.client_for(channel)

    def _health_checked(self, problem: str | None) -> None:
        """A health check's outcome: UNHEALTHY with its problem, or back once it answers."""
        if problem is not None:
            self.move(State.UNHEALTHY, f"health check failed: {problem}", error=True)
        elif self.state is State.UNHEALTHY:
            self.move(
                State.LOAD_ERROR if self.load_error else State.SERVING,
                "health check answered again",
            )

    # -- output ----------------------------------------------------------------------------

    def _output(self, stream: str, line: bytes) -> None:
        if self.log is not None:
            self.log.write(line)
        self.console.line(self.name, line.decode(errors="replace"))
