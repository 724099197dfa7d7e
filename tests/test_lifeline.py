"""The heartbeat watchdog's decisions, on a fake clock."""

from __future__ import annotations

import os

from supervisor.codeserver.lifeline import HeartbeatWatchdog, Parent, process_start_time


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeParent:
    def __init__(self, alive: bool) -> None:
        self.pid = 4242
        self.alive = alive

    def is_alive(self) -> bool:
        return self.alive


def make(timeout: float = 2.0, parent=None):
    clock = FakeClock()
    return HeartbeatWatchdog(timeout, lambda reason: None, parent, clock), clock


def advance(dog: HeartbeatWatchdog, clock: FakeClock, seconds: float):
    """Tick the watchdog regularly for SECONDS; return the first stop reason."""
    end = clock.now + seconds
    while clock.now < end:
        previous = clock.now
        clock.now += dog.tick
        reason = dog.check(clock.now, previous)
        if reason:
            return reason
    return None


def test_standalone_stops_after_timeout_without_beats() -> None:
    dog, clock = make(timeout=2.0)
    assert advance(dog, clock, 1.9) is None
    assert "no heartbeat for" in advance(dog, clock, 0.5)


def test_beats_keep_it_alive() -> None:
    dog, clock = make(timeout=2.0)
    for _ in range(10):
        assert advance(dog, clock, 1.5) is None
        dog.beat()


def test_own_stall_is_not_a_silent_client() -> None:
    dog, clock = make(timeout=2.0)
    previous = clock.now
    clock.now += 30.0  # the process did not run for 30 s (GIL held, SIGSTOP)
    assert dog.check(clock.now, previous) is None
    assert advance(dog, clock, 1.5) is None


def test_supervised_server_waits_for_a_busy_live_parent() -> None:
    dog, clock = make(timeout=2.0, parent=FakeParent(alive=True))
    assert advance(dog, clock, 30.0) is None


def test_supervised_server_stops_as_soon_as_its_parent_is_gone() -> None:
    parent = FakeParent(alive=True)
    dog, clock = make(timeout=60.0, parent=parent)
    assert advance(dog, clock, 1.0) is None
    parent.alive = False
    assert advance(dog, clock, dog.tick) == "parent process 4242 is gone"


def test_parent_identity_uses_pid_and_start_time() -> None:
    assert process_start_time(os.getpid()) == process_start_time(os.getpid())
    assert process_start_time(2**22 + 12345) is None
    me = Parent(os.getppid())
    assert me.is_alive()
    stranger = Parent(os.getpid())  # alive, but not our parent
    assert not stranger.is_alive()
