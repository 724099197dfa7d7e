"""Supervise one local location: start its code server, watch it, restart it by the rules.

Everything here runs on the supervisor's one event loop, which owns all state.
A process exit is seen when it happens (the loop's child watcher), never by polling.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import grpc

from supervisor._proto import codeserver_pb2 as pb
from supervisor._proto import codeserver_pb2_grpc
from supervisor.client import CHANNEL_OPTIONS
from supervisor.errors import CodeServerError
from supervisor.launch import Ready
from supervisor.logs import Console, RotatingLog
from supervisor.probes import health_problem, send_heartbeats
from supervisor.process import CodeServerProcess
from supervisor.restart import Decision, RestartTracker
from supervisor.states import State, StateMachine, Transition, describe_exit
from supervisor.workspace import LocationSpec

# How often a live server gets a Heartbeat, as a share of its heartbeat timeout.
HEARTBEATS_PER_TIMEOUT = 3
MEMORY_CHECK_SECONDS = 0.5
# A draining server ends its own runs at drain_timeout; this is its time to exit after that.
DRAIN_MARGIN_SECONDS = 5.0
HANDOVER = "handover"
SETTLED = frozenset(
    {
        State.SERVING,
        State.LOAD_ERROR,
        State.BACKOFF,
        State.FATAL,
        State.STOPPED,
        State.BUILD_FAILED,
        State.UNREACHABLE,
    }
)
MIB = 1024 * 1024


@dataclass(frozen=True)
class Launchable:
    """How to start a location's code server: argv (less the socket), environment, folder."""

    argv: list[str]
    env: dict[str, str]
    cwd: str | None
    python_version: str
    env_key: str | None


class LocalLocation:
    """One local location: its state machine, restart tracker and current process."""

    def __init__(
        self,
        spec: LocationSpec,
        socket_dir: Path,
        log: RotatingLog,
        console: Console,
        on_change: Callable[[], None],
    ) -> None:
        self.spec = spec
        self.name = spec.name
        self.machine = StateMachine(name=spec.name)
        self.tracker = RestartTracker(spec.restart)
        self.socket_dir = socket_dir
        self.log = log
        self.console = console
        self.on_change = on_change
        self.launchable: Launchable | None = None
        self.process: CodeServerProcess | None = None
        self.load_error: str | None = None
        self._channel: grpc.aio.Channel | None = None
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._wanted = False
        self._handover_asked = asyncio.Event()
        self._handover: asyncio.Future[None] | None = None
        self._draining: set[asyncio.Task[None]] = set()
        self.machine.add_listener(self._report)

    # -- what others ask -------------------------------------------------------------------

    @property
    def state(self) -> State:
        return self.machine.state

    @property
    def channel(self) -> grpc.aio.Channel | None:
        return self._channel

    @property
    def address(self) -> str:
        return self.process.ready.address if self.process and self.process.ready else ""

    def move(self, to: State, reason: str, error: bool = False) -> None:
        if self.machine.state is not to:
            self.machine.move(to, reason, time.time(), error=error)

    def start(self, launchable: Launchable | None = None) -> None:
        """Start supervising (again); a no-op while it already runs."""
        if launchable is not None:
            self.launchable = launchable
        if self._task is not None and not self._task.done():
            return
        self._wanted = True
        self._wake = asyncio.Event()
        # Moved now, not in the task: whoever asked sees the start at once.
        self.move(State.STARTING, "starting")
        self._task = asyncio.create_task(self._supervise(), name=f"location-{self.name}")

    async def stop(self, reason: str = "stop requested") -> None:
        """Stop the code server and supervising it; waits until it is down."""
        self._wanted = False
        self._stop_reason = reason
        self._wake.set()
        if self._task is not None:
            await self._task
        elif self.state not in (State.STOPPED, State.BUILD_FAILED, State.FATAL):
            self.move(State.STOPPED, reason)

    async def restart(self) -> None:
        """Start a new server, switch calls to it once it serves, then drain the old one.

        Only a location that is up can hand over; any other restarts from scratch.
        """
        self.reset()
        running = self._task is not None and not self._task.done()
        if not running or self.state not in (State.SERVING, State.LOAD_ERROR, State.UNHEALTHY):
            await self.stop("restart requested")
            self.reset()
            self.start()
            return
        self._handover = asyncio.get_running_loop().create_future()
        self._handover_asked.set()
        await self._handover

    async def settled(self, timeout: float) -> None:
        """Wait until the location is in a state that is not on its way elsewhere."""
        deadline = time.monotonic() + timeout
        while self.state not in SETTLED and time.monotonic() < deadline:
            await asyncio.sleep(0.02)

    def reset(self) -> None:
        """A person asked for a (re)start: forget the back-off and the last error."""
        self.tracker.reset()
        self.machine.clear_error()

    async def definitions(self, timeout: float = 10.0) -> pb.DefinitionsReply:
        """The location's definitions, from its code server."""
        if self._channel is None:
            raise CodeServerError(
                self.name, "ListDefinitions", "-", f"no code server is running ({self.state.value})"
            )
        stub = codeserver_pb2_grpc.CodeServerStub(self._channel)
        try:
            return await stub.ListDefinitions(pb.ListDefinitionsRequest(), timeout=timeout)
        except grpc.RpcError as exc:
            raise CodeServerError(
                self.name, "ListDefinitions", self.address, str(exc.details())
            ) from None

    # -- the supervision loop --------------------------------------------------------------

    async def _supervise(self) -> None:
        pending: tuple[CodeServerProcess, Ready] | None = None
        try:
            while self._wanted:
                if pending is None:
                    self.move(State.STARTING, "starting")
                    started = await self._spawn()
                    if started is None:  # a stop was asked for
                        break
                    if isinstance(started, str):
                        decision = self.tracker.on_exit(time.monotonic(), True)
                        if not await self._follow(decision, started, True):
                            break
                        continue
                    pending = started
                outcome = await self._serve(*pending)
                if outcome is None:
                    break
                if outcome == HANDOVER:
                    pending = await self._hand_over(pending)
                    continue
                pending = None
                failed, reason = outcome
                decision = self.tracker.on_exit(time.monotonic(), failed)
                if not await self._follow(decision, reason, failed):
                    break
        finally:
            await self._shutdown_process()
            if self._draining:
                await asyncio.gather(*self._draining, return_exceptions=True)

    async def _spawn(self) -> tuple[CodeServerProcess, Ready] | str | None:
        """Start a process; return it when ready, why it failed, or None on a stop request."""
        assert self.launchable is not None
        socket = self.socket_dir / f"{_short(self.name)}-{uuid.uuid4().hex[:6]}.sock"
        argv = [*self.launchable.argv, "--socket", str(socket)]
        process = CodeServerProcess(
            self.name, argv, self.launchable.env, self.launchable.cwd, self._output, socket
        )
        self.tracker.on_started(time.monotonic())
        start = asyncio.create_task(process.start(self.spec.startup_timeout))
        wake = asyncio.create_task(self._wake.wait())
        await asyncio.wait({start, wake}, return_when=asyncio.FIRST_COMPLETED)
        wake.cancel()
        if not start.done():
            start.cancel()
            with contextlib.suppress(asyncio.CancelledError, CodeServerError):
                await start
            if process.started and process.returncode is None:
                await process.stop(self.spec.drain_timeout)
            return None
        try:
            return process, start.result()
        except CodeServerError as exc:
            return exc.reason

    async def _serve(
        self, process: CodeServerProcess, ready: Ready
    ) -> tuple[bool, str] | str | None:
        """Route calls to PROCESS and watch it: (failed, why) at its end, HANDOVER, or None."""
        if self.process is not process or self._channel is None:
            await self._close_channel()
            self._channel = grpc.aio.insecure_channel(
                "unix:" + ready.address.removeprefix("unix:"), options=CHANNEL_OPTIONS
            )
        self.process = process
        self.on_change()
        self.load_error = ready.load_error
        if ready.load_error:
            self.move(State.LOAD_ERROR, ready.load_error.splitlines()[0], error=True)
        else:
            self.move(State.SERVING, f"ready in {ready.ready_seconds:.2f}s (pid {ready.pid})")
        return await self._watch(process)

    async def _hand_over(
        self, current: tuple[CodeServerProcess, Ready]
    ) -> tuple[CodeServerProcess, Ready]:
        """Start a successor while CURRENT serves; once it is ready, drain CURRENT."""
        self._handover_asked.clear()
        old_process, old_channel = current[0], self._channel
        started = await self._spawn()
        handover, self._handover = self._handover, None
        if not isinstance(started, tuple):
            why = started or "stop requested"
            self.console.line(self.name, f"restart failed, the old server goes on: {why}")
            if handover is not None and not handover.done():
                handover.set_result(None)
            return current
        self.console.line(
            self.name, f"restarted: pid {started[1].pid} serves, pid {old_process.pid} drains"
        )
        # Switched in one step, with no await between: no call ever finds no channel.
        self._channel = grpc.aio.insecure_channel(
            "unix:" + started[1].address.removeprefix("unix:"), options=CHANNEL_OPTIONS
        )
        self.process = started[0]
        task = asyncio.create_task(self._drain(old_process, old_channel))
        self._draining.add(task)
        task.add_done_callback(self._draining.discard)
        if handover is not None and not handover.done():
            handover.set_result(None)
        return started

    async def _drain(self, process: CodeServerProcess, channel: grpc.aio.Channel | None) -> None:
        """Let the old server finish what it has in flight, then end it."""
        await process.stop(self.spec.drain_timeout + DRAIN_MARGIN_SECONDS)
        if channel is not None:
            await channel.close()

    async def _watch(self, process: CodeServerProcess) -> tuple[bool, str] | str | None:
        exit_task = asyncio.create_task(process.wait())
        health_task = asyncio.create_task(self._check_health(process))
        wake_task = asyncio.create_task(self._wake.wait())
        handover_task = asyncio.create_task(self._handover_asked.wait())
        helpers = []
        if self.spec.health.interval * HEARTBEATS_PER_TIMEOUT > self.spec.heartbeat_timeout:
            # Health checks count as heartbeats; only checks too rare for that need these.
            period = self.spec.heartbeat_timeout / HEARTBEATS_PER_TIMEOUT
            helpers.append(asyncio.create_task(send_heartbeats(lambda: self._channel, period)))
        try:
            done, _ = await asyncio.wait(
                {exit_task, health_task, wake_task, handover_task},
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            for task in (health_task, wake_task, handover_task, *helpers):
                task.cancel()
        if exit_task in done:
            code = exit_task.result()
            return code != 0, f"code server {describe_exit(code)}{process.tail_text()}"
        if health_task in done:
            reason = health_task.result()
            await process.kill()
            return True, reason
        exit_task.cancel()
        if handover_task in done and self._wanted:
            return HANDOVER
        return None

    async def _follow(self, decision: Decision, reason: str, failed: bool) -> bool:
        """Act on the tracker's decision; True to start again."""
        # The decision goes after the first line, before any quoted stderr.
        first, _, rest = reason.partition("\n")
        message = f"{first}; {decision.reason}" + (f"\n{rest}" if rest else "")
        if decision.action == "restart":
            self.move(State.BACKOFF, message, error=True)
            await self._close_channel()
            if decision.delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), decision.delay)
            return self._wanted
        if decision.action == "fatal":
            self.move(State.FATAL, message, error=True)
        else:
            self.move(State.STOPPED, message, error=failed)
        return False

    async def _shutdown_process(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.started and process.returncode is None:
            self.move(State.STOPPING, getattr(self, "_stop_reason", "stopping"))
            await process.stop(self.spec.drain_timeout + DRAIN_MARGIN_SECONDS)
        await self._close_channel()
        if self._handover is not None and not self._handover.done():
            self._handover.set_result(None)
        if self.state not in (State.STOPPED, State.FATAL):
            self.move(State.STOPPED, getattr(self, "_stop_reason", "stopped"))
        self.on_change()

    async def _close_channel(self) -> None:
        channel, self._channel = self._channel, None
        if channel is not None:
            await channel.close()

    # -- watching a live server ------------------------------------------------------------

    async def _check_health(self, process: CodeServerProcess) -> str:
        """Return why the server must be killed: missed health checks or memory over limit."""
        health = self.spec.health
        limit = self.spec.memory_limit
        failures = 0
        next_check = time.monotonic() + health.interval
        while True:
            await asyncio.sleep(MEMORY_CHECK_SECONDS if limit else health.interval)
            if limit:
                used = process.memory_bytes()
                if used > limit:
                    return (
                        f"memory limit exceeded: {used / MIB:.0f} MiB used,"
                        f" limit {limit / MIB:.0f} MiB"
                    )
                if time.monotonic() < next_check:
                    continue
            next_check = time.monotonic() + health.interval
            problem = await health_problem(self._channel, health.timeout)
            if problem is None:
                failures = 0
                if self.state is State.UNHEALTHY:
                    back = State.LOAD_ERROR if self.load_error else State.SERVING
                    self.move(back, "health check answered again")
                continue
            failures += 1
            if failures >= health.failures:
                return f"health check failed {failures} times in a row ({problem}): killed as hung"
            self.move(State.UNHEALTHY, f"health check failed: {problem}", error=True)

    # -- output ----------------------------------------------------------------------------

    def _output(self, stream: str, line: bytes) -> None:
        self.log.write(line)
        self.console.line(self.name, line.decode(errors="replace"))

    def _report(self, transition: Transition) -> None:
        text = f"{transition.from_state.value} -> {transition.to_state.value}: {transition.reason}"
        self.log.write(f"[supervisor] {text}".encode())
        self.console.line(self.name, f"[{transition.to_state.value}] {transition.reason}")
        self.on_change()


def _short(name: str) -> str:
    """A short, socket-safe form of a location name."""
    import hashlib

    safe = "".join(c for c in name if c.isalnum() or c in "-_")[:16]
    return f"{safe}-{hashlib.sha256(name.encode()).hexdigest()[:6]}"
