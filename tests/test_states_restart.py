"""The state machine and the restart policy, replayed on a fake clock."""

from __future__ import annotations

import signal
from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from supervisor.launch.process import describe_exit
from supervisor.supervision.restart import Decision, RestartTracker
from supervisor.supervision.states import (
    LOCAL_TRANSITIONS,
    REMOTE_TRANSITIONS,
    IllegalTransitionError,
    State,
    StateMachine,
    Transition,
    is_legal,
)
from supervisor.workspace.specs import RestartSpec


@dataclass
class FakeClock:
    now: float = 1000.0

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


def replay(
    tracker: RestartTracker, clock: FakeClock, runs: list[tuple[float, bool]]
) -> list[Decision]:
    """Start, run for the given seconds, exit; wait out each restart's delay; stop on no restart."""
    decisions = []
    for seconds, failed in runs:
        tracker.on_started(clock.now)
        decision = tracker.on_exit(clock.advance(seconds), failed=failed)
        decisions.append(decision)
        if decision.action != "restart":
            break
        clock.advance(decision.delay)
    return decisions


def crash_loop(count: int, rules: RestartSpec, run_for: float = 0.1) -> list[Decision]:
    return replay(RestartTracker(rules), FakeClock(), [(run_for, True)] * count)


# ---- restart policy ----


def test_first_restart_is_immediate() -> None:
    decision = crash_loop(1, RestartSpec())[0]
    assert decision == Decision("restart", 0.0, "restart 1 at once")


def test_quick_failures_back_off_exponentially_to_the_cap() -> None:
    delays = [d.delay for d in crash_loop(10, RestartSpec(backoff_initial=0.5, backoff_max=5))]
    assert delays == [0.0, 0.5, 1.0, 2.0, 4.0, 5.0, 5.0, 5.0, 5.0, 5.0]


def test_back_off_reason_names_the_restart_and_the_delay() -> None:
    decisions = crash_loop(4, RestartSpec())
    assert [d.reason for d in decisions] == [
        "restart 1 at once",
        "restart 2 in 0.5s (back-off)",
        "restart 3 in 1.0s (back-off)",
        "restart 4 in 2.0s (back-off)",
    ]


def test_a_stable_run_resets_the_back_off() -> None:
    tracker, clock = RestartTracker(RestartSpec(stable_after=10)), FakeClock()
    # Durations are binary fractions, so the clock's sums are exact at the boundary.
    first = replay(tracker, clock, [(0.25, True)] * 4)
    assert [d.delay for d in first] == [0.0, 0.5, 1.0, 2.0]
    # Just short of stable_after: the back-off keeps growing.
    assert replay(tracker, clock, [(9.75, True)])[0].delay == 4.0
    # Exactly stable_after is stable: immediate again, then the sequence starts over.
    after = replay(tracker, clock, [(10.0, True), (0.25, True), (0.25, True)])
    assert [d.delay for d in after] == [0.0, 0.5, 1.0]
    assert tracker.restarts == 8


@pytest.mark.parametrize(
    ("policy", "failed", "action", "reason"),
    [
        ("never", True, "stop", "policy never"),
        ("never", False, "stop", "policy never"),
        ("on-failure", True, "restart", "restart 1 at once"),
        ("on-failure", False, "stop", "exited cleanly (policy on-failure)"),
        ("always", True, "restart", "restart 1 at once"),
        ("always", False, "restart", "restart 1 at once"),
    ],
)
def test_policy_decides_on_clean_and_failed_exits(
    policy: str, failed: bool, action: str, reason: str
) -> None:
    tracker = RestartTracker(RestartSpec(policy=policy))
    tracker.on_started(0.0)
    decision = tracker.on_exit(5.0, failed=failed)
    assert (decision.action, decision.reason) == (action, reason)
    assert tracker.restarts == (1 if action == "restart" else 0)


def test_always_backs_off_clean_exits_too() -> None:
    tracker = RestartTracker(RestartSpec(policy="always"))
    decisions = replay(tracker, FakeClock(), [(0.1, False)] * 3)
    assert [d.delay for d in decisions] == [0.0, 0.5, 1.0]


def test_too_many_restarts_within_the_window_is_fatal() -> None:
    decisions = crash_loop(10, RestartSpec(max_restarts=5, window=60))
    assert [d.action for d in decisions] == ["restart"] * 5 + ["fatal"]
    assert decisions[-1] == Decision("fatal", 0.0, "5 restarts within 60s (max_restarts 5)")


def test_the_same_restarts_spread_over_more_than_the_window_are_not_fatal() -> None:
    rules = RestartSpec(max_restarts=5, window=60, stable_after=10)
    # Runs of 13s are stable (no delay): six restarts span 65s, so none is refused.
    decisions = replay(RestartTracker(rules), FakeClock(), [(13.0, True)] * 20)
    assert [d.action for d in decisions] == ["restart"] * 20
    # Runs of 11s put a sixth restart 55s after the first: fatal.
    decisions = replay(RestartTracker(rules), FakeClock(), [(11.0, True)] * 20)
    assert decisions[-1].action == "fatal"


@pytest.mark.parametrize(("second_run", "action"), [(59.75, "fatal"), (60.0, "restart")])
def test_a_restart_exactly_one_window_ago_no_longer_counts(second_run: float, action: str) -> None:
    rules = RestartSpec(max_restarts=1, window=60)
    decisions = replay(RestartTracker(rules), FakeClock(), [(0.25, True), (second_run, True)])
    assert [d.action for d in decisions] == ["restart", action]


def test_max_restarts_zero_never_restarts() -> None:
    assert crash_loop(2, RestartSpec(max_restarts=0)) == [
        Decision("fatal", 0.0, "no restarts allowed (max_restarts 0)")
    ]


def test_reset_clears_back_off_and_window_but_keeps_the_count() -> None:
    tracker, clock = RestartTracker(RestartSpec(max_restarts=3)), FakeClock()
    assert replay(tracker, clock, [(0.1, True)] * 5)[-1].action == "fatal"
    tracker.reset()
    decisions = replay(tracker, clock, [(0.1, True)] * 2)
    assert [(d.action, d.delay) for d in decisions] == [("restart", 0.0), ("restart", 0.5)]
    assert tracker.restarts == 5


def test_an_unhealthy_kill_counts_as_a_failure() -> None:
    tracker = RestartTracker(RestartSpec(policy="on-failure"))
    tracker.on_started(0.0)
    assert tracker.on_unhealthy(1.0).action == "restart"
    tracker.on_started(1.0)
    assert tracker.on_unhealthy(2.0).delay == 0.5


def test_policy_always_restarts_clean_exits_up_to_max_restarts() -> None:
    rules = RestartSpec(policy="always", max_restarts=1, backoff_initial=2, backoff_max=3)
    decisions = replay(RestartTracker(rules), FakeClock(), [(0.1, False)] * 3)
    assert [d.action for d in decisions] == ["restart", "fatal"]


@pytest.mark.parametrize(
    ("field", "value"),
    [("policy", "alwys"), ("max_restarts", -1), ("backoff_max", -1.0), ("window", float("nan"))],
)
def test_bad_rules_are_refused_with_the_key_and_value(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=rf"restart\.{field}: .*got {value!r}"):
        RestartSpec(**{field: value})


@given(
    runs=st.lists(
        st.tuples(st.floats(0, 100, allow_nan=False), st.booleans()), min_size=1, max_size=60
    ),
    initial=st.floats(0, 10),
    cap=st.floats(0, 60),
    policy=st.sampled_from(["always", "on-failure", "never"]),
    max_restarts=st.none() | st.integers(0, 8),
    window=st.floats(0, 200),
)
def test_any_history_keeps_delays_in_bounds_and_restarts_under_the_limit(
    runs: list[tuple[float, bool]],
    initial: float,
    cap: float,
    policy: str,
    max_restarts: int | None,
    window: float,
) -> None:
    rules = RestartSpec(policy, max_restarts, window, initial, cap, stable_after=10)
    tracker, clock = RestartTracker(rules), FakeClock()
    restart_times: list[float] = []
    for seconds, failed in runs:
        tracker.on_started(clock.now)
        decision = tracker.on_exit(clock.advance(seconds), failed)
        assert 0 <= decision.delay <= cap
        if decision.action == "restart":
            restart_times.append(clock.now)
            if max_restarts is not None:
                assert sum(clock.now - t < window for t in restart_times) <= max_restarts
            clock.advance(decision.delay)
        # Keep replaying past stop and fatal: the tracker must stay consistent regardless.
    assert tracker.restarts == len(restart_times)


# ---- state machine ----


def test_a_legal_history_is_recorded_in_order() -> None:
    machine = StateMachine()
    script = [
        (State.BUILDING, "environment missing"),
        (State.STARTING, "environment ready"),
        (State.SERVING, "ready"),
        (State.BACKOFF, "exit code 1"),
        (State.STARTING, "back-off over"),
        (State.SERVING, "ready"),
        (State.STOPPING, "supervisor stopping"),
        (State.STOPPED, "exit code 0"),
    ]
    for i, (state, reason) in enumerate(script):
        transition = machine.move(state, reason, now=float(i))
        assert machine.state is state
        assert transition.to_state is state and transition.at == float(i)
    assert [(t.to_state, t.reason) for t in machine.history] == script
    assert machine.history[0] == Transition(State.PENDING, State.BUILDING, "environment missing", 0)
    assert str(machine.history[3]) == "SERVING -> BACKOFF: exit code 1"


def test_an_illegal_move_is_refused_and_changes_nothing() -> None:
    machine = StateMachine(name="iris")
    machine.move(State.STARTING, "start", 0.0)
    machine.move(State.SERVING, "ready", 1.0)
    with pytest.raises(IllegalTransitionError) as caught:
        machine.move(State.BUILDING, "reload", 2.0)
    message = str(caught.value)
    assert "location 'iris'" in message
    assert "SERVING -> BUILDING (reload)" in message
    assert "allowed from SERVING: BACKOFF, FATAL, STARTING, STOPPED, STOPPING, UNHEALTHY" in message
    assert (caught.value.from_state, caught.value.to_state) == (State.SERVING, State.BUILDING)
    assert machine.state is State.SERVING
    assert len(machine.history) == 2


@pytest.mark.parametrize("remote", [False, True])
def test_an_internal_failure_may_end_any_state_in_fatal(remote: bool) -> None:
    table = REMOTE_TRANSITIONS if remote else LOCAL_TRANSITIONS
    assert all(State.FATAL in moves for state, moves in table.items() if state is not State.FATAL)


@pytest.mark.parametrize("remote", [False, True])
def test_no_state_may_move_to_itself(remote: bool) -> None:
    for state in State:
        assert not is_legal(state, state, remote)


def test_every_state_is_reachable_and_none_is_a_dead_end() -> None:
    local = {s for s in State if s not in (State.CONNECTING, State.UNREACHABLE)}
    remote = {State.PENDING, State.CONNECTING, State.SERVING, State.LOAD_ERROR}
    remote |= {State.UNREACHABLE, State.STOPPED, State.FATAL}
    for table, states in ((LOCAL_TRANSITIONS, local), (REMOTE_TRANSITIONS, remote)):
        assert set(table) == states
        assert states - {State.PENDING} <= set().union(*table.values()) <= states
        assert all(table[s] for s in states)


def test_a_crash_while_starting_restarts_through_backoff() -> None:
    machine = StateMachine()
    machine.move(State.STARTING, "start", 0.0)
    with pytest.raises(IllegalTransitionError):
        machine.move(State.STARTING, "restart 1 at once", 1.0)
    machine.move(State.BACKOFF, "killed by SIGSEGV", 1.0, error=True)
    machine.move(State.STARTING, "restart 1 at once", 1.0)


def test_history_keeps_only_the_latest_transitions() -> None:
    machine = StateMachine(history_size=5)
    machine.move(State.STARTING, "start", 0.0)
    for i in range(1, 20):
        machine.move(State.SERVING if i % 2 else State.UNHEALTHY, f"move {i}", float(i))
    assert len(machine.history) == 5
    assert [t.reason for t in machine.history] == [f"move {i}" for i in range(15, 20)]
    assert len(StateMachine().history) == 0 and StateMachine().history.maxlen == 100


def test_last_error_is_set_by_errors_and_kept_through_recovery() -> None:
    machine = StateMachine()
    assert machine.last_error is None
    machine.move(State.STARTING, "start", 0.0)
    machine.move(State.BACKOFF, "exit code 3", 1.0, error=True)
    assert machine.last_error == "exit code 3"
    machine.move(State.STARTING, "restart 1 at once", 1.0)
    assert machine.last_error == "exit code 3"  # still worth showing while it restarts
    machine.move(State.LOAD_ERROR, "ImportError: no module named pandas", 2.0, error=True)
    machine.move(State.STARTING, "reload", 3.0)
    assert machine.last_error == "ImportError: no module named pandas"
    machine.move(State.SERVING, "ready", 4.0)
    assert machine.last_error == "ImportError: no module named pandas"
    machine.clear_error()
    assert machine.last_error is None


@pytest.mark.parametrize(("away", "remote"), [(State.UNHEALTHY, False), (State.UNREACHABLE, True)])
def test_answering_again_without_a_restart_clears_the_last_error(away: State, remote: bool) -> None:
    machine = StateMachine(remote=remote)
    machine.move(State.CONNECTING if remote else State.STARTING, "start", 0.0)
    machine.move(State.SERVING, "ready", 1.0)
    machine.move(away, "UNAVAILABLE: connection refused", 2.0, error=True)
    assert machine.last_error == "UNAVAILABLE: connection refused"
    machine.move(State.SERVING, "answering again", 3.0)
    assert machine.last_error is None
    assert machine.history[-2].reason == "UNAVAILABLE: connection refused"


def test_listeners_hear_each_move_after_it_is_recorded() -> None:
    machine = StateMachine()
    heard: list[tuple[Transition, State]] = []
    machine.add_listener(lambda t: heard.append((t, machine.state)))
    machine.add_listener(lambda t: heard.append((t, machine.history[-1].to_state)))
    first = machine.move(State.STARTING, "start", 0.0)
    second = machine.move(State.SERVING, "ready", 1.0)
    assert heard == [
        (first, State.STARTING),
        (first, State.STARTING),
        (second, State.SERVING),
        (second, State.SERVING),
    ]
    with pytest.raises(IllegalTransitionError):
        machine.move(State.BUILD_FAILED, "no", 2.0)
    assert len(heard) == 4


def test_remote_locations_use_their_own_table() -> None:
    machine = StateMachine(remote=True, name="my_grpc_server")
    for state in (State.CONNECTING, State.SERVING, State.UNREACHABLE):
        machine.move(state, "probe", 0.0, error=state is State.UNREACHABLE)
    assert machine.last_error == "probe"
    machine.move(State.SERVING, "answered again", 1.0)
    machine.move(State.STOPPED, "supervisor stopping", 2.0)
    machine.move(State.CONNECTING, "up", 3.0)
    for local_only in (State.STARTING, State.BUILDING, State.BACKOFF):
        with pytest.raises(IllegalTransitionError, match="remote location 'my_grpc_server'"):
            machine.move(local_only, "local move", 4.0)
    local = StateMachine()
    with pytest.raises(IllegalTransitionError):
        local.move(State.CONNECTING, "remote move", 0.0)


def test_state_values_are_their_names() -> None:
    assert [s.value for s in State] == [s.name for s in State]
    assert State("SERVING") is State.SERVING
    assert len(State) == 13


@pytest.mark.parametrize(
    ("returncode", "text"),
    [
        (None, "still running"),
        (0, "exit code 0"),
        (3, "exit code 3"),
        (-signal.SIGSEGV, "killed by SIGSEGV"),
        (-signal.SIGKILL, "killed by SIGKILL"),
        (-99, "killed by signal 99"),
    ],
)
def test_describe_exit(returncode: int | None, text: str) -> None:
    assert describe_exit(returncode) == text
