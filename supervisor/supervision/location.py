"""What every kind of location offers the supervisor loop, the control service and runs.

A location is what the workspace names: its spec, its state machine and how to reach its
code server. A local location runs its server here (local.py); a remote one only watches a
server that runs elsewhere (remote.py). A kind whose server is another program needs a new
subclass and one line in `supervisor.make_location`, nothing else.
"""

from __future__ import annotations

import abc
import asyncio
import traceback
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from supervisor.errors import CodeServerError
from supervisor.selection import select as select  # the one rule, for location users
from supervisor.supervision.clock import REAL_CLOCK, Clock
from supervisor.supervision.logs import Console, RotatingLog
from supervisor.supervision.states import State, StateMachine, Transition
from supervisor.workspace import LocationSpec

# For annotations only: gRPC loads after `up` has started its code servers (supervisor.py).
if TYPE_CHECKING:
    import grpc

    from supervisor._proto import codeserver_pb2 as pb
    from supervisor.control.codeserver import AsyncCodeServer
    from supervisor.control.dagster import AsyncDagsterServer

    # A client of a location's code server: ours, or Dagster's for the dagster runtime.
    ServerCalls = AsyncCodeServer | AsyncDagsterServer

# States a location rests in until something happens to it.
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
# States in which a code server answers calls.
UP = frozenset({State.SERVING, State.LOAD_ERROR})
DEFINITIONS_TIMEOUT = 10.0


@dataclass(frozen=True)
class ChildProcess:
    """A process started for a location, named so that a reused pid is never mistaken for it."""

    location: str
    pid: int
    create_time: float


class Location(abc.ABC):
    """One location of a workspace, whatever runs its code server."""

    # Whether a changed entry is brought up beside the running one and switched to once it
    # serves (reload); otherwise the old one stops first.
    hands_over: bool = False

    def __init__(
        self,
        spec: LocationSpec,
        console: Console,
        on_change: Callable[[], None],
        *,
        remote: bool,
        log: RotatingLog | None = None,
        clock: Clock = REAL_CLOCK,
    ) -> None:
        self.spec = spec
        self.name = spec.name
        self.machine = StateMachine(remote=remote, name=spec.name)
        self.console = console
        self.log = log
        self.on_change = on_change
        # Counts the changes reported, so that what status shows is made again only after one.
        self.version = 0
        self.clock = clock
        self.load_error: str | None = None
        self._client: tuple[grpc.aio.Channel, ServerCalls] | None = None
        self.machine.add_listener(self._report)

    # -- what every kind shares ------------------------------------------------------------

    @property
    def state(self) -> State:
        return self.machine.state

    def move(self, to: State, reason: str, error: bool = False) -> None:
        """Move the state machine (no move when already there), recording the reason."""
        if self.machine.state is not to:
            self.machine.move(to, reason, self.clock.time(), error=error)

    def fail(self, what: str, exc: BaseException, to: State = State.FATAL) -> None:
        """An unexpected exception ended WHAT: log its traceback, move TO with the reason."""
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        self.console.line(self.name, f"internal error while {what}:\n{text}")
        if self.log is not None:
            self.log.write(f"[supervisor] internal error while {what}:\n{text}".encode())
        if self.state is not to:
            reason = f"internal error while {what}: {type(exc).__name__}: {exc}"
            self.machine.move(to, reason, self.clock.time(), error=True)

    def run_guarded(self, what: str, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run WORK as a task of this location; an unexpected exception in it fails the
        location visibly (fail), rather than dying unseen in the background."""

        async def guarded() -> None:
            try:
                await work
            except Exception as exc:
                self.fail(what, exc)

        return asyncio.create_task(guarded(), name=f"{what} {self.name}")

    async def settled(self, timeout: float) -> None:
        """Wait (at most TIMEOUT seconds) until the location rests in a SETTLED state."""
        await self.wait_until(lambda state: state in SETTLED, timeout)

    async def wait_until(self, wanted: Callable[[State], bool], timeout: float) -> bool:
        """Wait (at most TIMEOUT seconds) for a state WANTED accepts; True once it is there.

        Woken by the state machine's transitions, not by polling."""
        if wanted(self.state):
            return True
        reached = asyncio.Event()

        def listener(transition: Transition) -> None:
            if wanted(transition.to_state):
                reached.set()

        self.machine.add_listener(listener)
        try:
            return await self.clock.wait(reached, timeout)
        finally:
            self.machine.remove_listener(listener)

    def code_server(self) -> AsyncCodeServer:
        """A client of the serving code server of ours; CodeServerError at once when none
        serves, or when Dagster's serves (it speaks another protocol)."""
        from supervisor.control.codeserver import AsyncCodeServer

        client = self.calls()
        if not isinstance(client, AsyncCodeServer):
            raise CodeServerError(
                self.name,
                "call",
                self.address or "-",
                "it runs Dagster's code server (runtime dagster), which has no such call",
            )
        return client

    def calls(self) -> ServerCalls:
        """A client of the serving code server, ours or Dagster's; CodeServerError at once
        when none serves."""
        channel = self.channel
        if channel is None:
            why = f"no code server is serving ({self.state.value})"
            if self.machine.last_error:
                why += f": {self.machine.last_error.splitlines()[0]}"
            raise CodeServerError(self.name, "call", self.address or "-", why)
        return self.client_for(channel)

    def client_for(self, channel: grpc.aio.Channel) -> ServerCalls:
        """A client over CHANNEL, made once per channel: health checks and heartbeats call
        it every interval. Dagster's protocol for the dagster runtime, else ours."""
        if self._client is None or self._client[0] is not channel:
            from supervisor.control.codeserver import AsyncCodeServer
            from supervisor.control.dagster import AsyncDagsterServer

            make = AsyncDagsterServer if self.runtime == "dagster" else AsyncCodeServer
            self._client = (channel, make(channel, self.name, self.address))
        return self._client[1]

    @property
    def runtime(self) -> str:
        """What serves the location: "supervisor" (our code server) or "dagster"."""
        return self.spec.effective_runtime

    async def definitions(self, timeout: float = DEFINITIONS_TIMEOUT) -> pb.DefinitionsReply:
        """The location's definitions, from its code server."""
        return await self.calls().list_definitions(timeout)

    def _report(self, transition: Transition) -> None:
        if self.log is not None:
            self.log.write(f"[supervisor] {transition}".encode())
        self.console.line(self.name, f"[{transition.to_state.value}] {transition.reason}")
        self.report_change()

    def report_change(self) -> None:
        """Say that something status shows of this location changed."""
        self.version += 1
        self.on_change()

    # -- what each kind says about itself ---------------------------------------------------

    @property
    @abc.abstractmethod
    def channel(self) -> grpc.aio.Channel | None:
        """The channel calls go to; None while no server answers (calls fail at once)."""

    @property
    @abc.abstractmethod
    def address(self) -> str:
        """The code server's address, "" when there is none."""

    @property
    def pid(self) -> int | None:
        """The code server's pid, when known."""
        return None

    @property
    def restarts(self) -> int:
        """Automatic restarts so far."""
        return 0

    @property
    def python_version(self) -> str:
        """The Python version the code server runs on, "" when not known."""
        return ""

    @property
    def dagster_version(self) -> str:
        """The dagster of its environment, for the dagster runtime; "" when not known."""
        return ""

    @property
    def url(self) -> str:
        """Where a person opens it in a browser (Dagster's webserver); "" for the rest."""
        return ""

    @property
    def env_key(self) -> str | None:
        """The key of the environment the supervisor built for it, if any."""
        return None

    @property
    def next_attempt(self) -> float | None:
        """In BACKOFF: when (POSIX time) the next start is due."""
        return None

    @property
    def values_dir(self) -> Path | None:
        """Where runs of this location store asset values; None: the server decides."""
        return None

    async def code_changed(self) -> bool:
        """Whether the source it serves changed since its server started (reload restarts)."""
        return False

    def children(self) -> list[ChildProcess]:
        """Processes started here on its behalf, for the state file."""
        return []

    def kill_now(self) -> None:  # noqa: B027 - a kind that starts nothing has nothing to kill
        """SIGKILL whatever it runs, without waiting (a second Ctrl-C)."""

    @abc.abstractmethod
    async def bring_up(self) -> None:
        """Prepare what it needs (an environment, say) and start; failures end in a state."""

    @abc.abstractmethod
    def start(self) -> str | None:
        """Start (again) on a person's request; return why it cannot, or None."""

    @abc.abstractmethod
    async def stop(self, reason: str = "stop requested") -> None:
        """Stop it; returns once it is STOPPED."""

    @abc.abstractmethod
    async def restart(self) -> None:
        """Restart it, without a gap in serving where the kind can."""
