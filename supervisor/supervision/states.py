"""A location's states, the moves allowed between them, and the one function that makes them."""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass


class State(enum.Enum):
    """Where a location is in its life; values are the names, so they print and store as-is."""

    PENDING = "PENDING"
    BUILDING = "BUILDING"
    BUILD_FAILED = "BUILD_FAILED"
    STARTING = "STARTING"
    SERVING = "SERVING"
    LOAD_ERROR = "LOAD_ERROR"
    UNHEALTHY = "UNHEALTHY"
    BACKOFF = "BACKOFF"
    STOPPING = "STOPPING"
    STOPPED = "STOPPED"
    FATAL = "FATAL"
    # Remote (grpc_server) locations only: the supervisor dials them, it never runs them.
    CONNECTING = "CONNECTING"
    UNREACHABLE = "UNREACHABLE"


S = State

# A process that exits is already gone, so an exit goes straight to BACKOFF, STOPPED or
# FATAL; STOPPING is only for a process the supervisor is ending. An immediate restart
# from STARTING passes through BACKOFF with no delay (STARTING -> STARTING is no move).
LOCAL_TRANSITIONS: Mapping[State, frozenset[State]] = {
    # BUILD_FAILED: no interpreter matches, so the build never begins.
    S.PENDING: frozenset({S.BUILDING, S.BUILD_FAILED, S.STARTING, S.STOPPED}),
    S.BUILDING: frozenset({S.STARTING, S.BUILD_FAILED, S.STOPPING, S.STOPPED}),
    S.BUILD_FAILED: frozenset({S.BUILDING, S.PENDING, S.STOPPED}),
    S.STARTING: frozenset(
        {S.SERVING, S.LOAD_ERROR, S.UNHEALTHY, S.BACKOFF, S.STOPPING, S.STOPPED, S.FATAL}
    ),
    S.SERVING: frozenset({S.UNHEALTHY, S.BACKOFF, S.STARTING, S.STOPPING, S.STOPPED, S.FATAL}),
    # A load-error server still answers gRPC, so it is health-checked like any other.
    S.LOAD_ERROR: frozenset({S.UNHEALTHY, S.BACKOFF, S.STARTING, S.STOPPING, S.STOPPED, S.FATAL}),
    # Recovery returns to whichever of SERVING / LOAD_ERROR the server was in.
    S.UNHEALTHY: frozenset(
        {S.SERVING, S.LOAD_ERROR, S.STARTING, S.BACKOFF, S.STOPPING, S.STOPPED, S.FATAL}
    ),
    # BUILDING: a reload changed the environment while the location waited to restart.
    S.BACKOFF: frozenset({S.STARTING, S.BUILDING, S.STOPPING, S.STOPPED, S.FATAL}),
    # STARTING: a manual or memory-limit restart, once the old process is gone.
    S.STOPPING: frozenset({S.STOPPED, S.STARTING, S.BACKOFF, S.FATAL}),
    S.STOPPED: frozenset({S.PENDING, S.BUILDING, S.STARTING}),
    S.FATAL: frozenset({S.PENDING, S.BUILDING, S.STARTING, S.STOPPED}),
}

# A remote server reports its own load error (GetServerInfo), so LOAD_ERROR shows it.
REMOTE_TRANSITIONS: Mapping[State, frozenset[State]] = {
    S.PENDING: frozenset({S.CONNECTING, S.STOPPED}),
    S.CONNECTING: frozenset({S.SERVING, S.LOAD_ERROR, S.UNREACHABLE, S.STOPPED}),
    S.SERVING: frozenset({S.LOAD_ERROR, S.UNREACHABLE, S.STOPPED}),
    S.LOAD_ERROR: frozenset({S.SERVING, S.UNREACHABLE, S.STOPPED}),
    S.UNREACHABLE: frozenset({S.SERVING, S.LOAD_ERROR, S.CONNECTING, S.STOPPED}),
    S.STOPPED: frozenset({S.CONNECTING}),
}


def _with_internal_failure(
    table: Mapping[State, frozenset[State]],
) -> Mapping[State, frozenset[State]]:
    """An internal failure (a bug, an OSError nobody expected) ends in FATAL from anywhere,
    with its reason, rather than leaving a location PENDING or BUILDING for ever."""
    fatal = State.FATAL
    return {s: moves if s is fatal else moves | {fatal} for s, moves in table.items()}


LOCAL_TRANSITIONS = _with_internal_failure(LOCAL_TRANSITIONS)
REMOTE_TRANSITIONS = _with_internal_failure(
    {**REMOTE_TRANSITIONS, S.FATAL: frozenset({S.CONNECTING, S.STOPPED})}
)

del S


# States a server comes back from without a restart: a missed health check, a remote away.
RECOVERED_FROM = frozenset({State.UNHEALTHY, State.UNREACHABLE})


def is_legal(from_state: State, to_state: State, remote: bool = False) -> bool:
    """Whether a location may move from one state to the other."""
    table = REMOTE_TRANSITIONS if remote else LOCAL_TRANSITIONS
    return to_state in table.get(from_state, frozenset())


@dataclass(frozen=True)
class Transition:
    """One recorded move; `at` is wall-clock seconds."""

    from_state: State
    to_state: State
    reason: str
    at: float

    def __str__(self) -> str:
        return f"{self.from_state.value} -> {self.to_state.value}: {self.reason}"


class IllegalTransitionError(Exception):
    """A move the transition table forbids: a bug in the caller, so not a SupervisorError."""

    def __init__(
        self,
        from_state: State,
        to_state: State,
        reason: str,
        where: str = "",
        allowed: frozenset[State] = frozenset(),
    ) -> None:
        self.from_state = from_state
        self.to_state = to_state
        self.reason = reason
        prefix = f"{where}: " if where else ""
        moves = ", ".join(sorted(s.value for s in allowed)) or "none"
        super().__init__(
            f"{prefix}illegal move {from_state.value} -> {to_state.value} ({reason}); "
            f"allowed from {from_state.value}: {moves}"
        )


Listener = Callable[[Transition], None]


class StateMachine:
    """The state of one location; every change goes through `move`."""

    def __init__(self, remote: bool = False, name: str = "", history_size: int = 100) -> None:
        self.remote = remote
        self.name = name
        self.state = State.PENDING
        self.history: deque[Transition] = deque(maxlen=history_size)
        self.last_error: str | None = None
        self._listeners: list[Listener] = []

    def add_listener(self, listener: Listener) -> None:
        """Call `listener` with each transition, after it has been recorded."""
        self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        """Stop calling `listener`; a listener that is not there is ignored."""
        if listener in self._listeners:
            self._listeners.remove(listener)

    def move(self, to: State, reason: str, now: float, error: bool = False) -> Transition:
        """Move to `to` or raise IllegalTransitionError; with `error`, reason becomes last_error."""
        if not is_legal(self.state, to, self.remote):
            kind = "remote location" if self.remote else "location"
            where = f"{kind} {self.name!r}" if self.name else kind
            allowed = self._table.get(self.state, frozenset())
            raise IllegalTransitionError(self.state, to, reason, where, allowed)
        transition = Transition(self.state, to, reason, now)
        self.state = to
        self.history.append(transition)
        # Kept through a restart: a SERVING location that restarted says why it had to. A
        # server that answers again (no restart) has nothing left to explain: the passing
        # failure stays in the history and the logs.
        if error:
            self.last_error = reason
        elif to is State.SERVING and transition.from_state in RECOVERED_FROM:
            self.last_error = None
        # State is already consistent here, so a failing listener cannot leave it half-moved.
        for listener in list(self._listeners):
            listener(transition)
        return transition

    def clear_error(self) -> None:
        """Forget the last error (a start or restart asked for by a person)."""
        self.last_error = None

    @property
    def _table(self) -> Mapping[State, frozenset[State]]:
        return REMOTE_TRANSITIONS if self.remote else LOCAL_TRANSITIONS
