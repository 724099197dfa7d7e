"""The supervision loop of a local location, replayed on a fake clock with scripted processes.

The loop is the real LocalLocation; only its clock and its spawner are fakes, so crash loops,
back-off, stable periods and max_restarts are checked in milliseconds, deterministically.
Unexpected exceptions (an OSError while preparing, a bug while spawning) are injected to show
that they end in a state with the reason, never in a location stuck for ever.
"""

from __future__ import annotations

import asyncio
import io
import itertools
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest

from supervisor.errors import CodeServerError
from supervisor.launch.command import Launchable
from supervisor.launch.process import OutputHandler, Ready
from supervisor.supervision.local import LocalLocation
from supervisor.supervision.logs import Console, RotatingLog
from supervisor.supervision.probes import on_grid
from supervisor.supervision.states import IllegalTransitionError, State, Transition
from supervisor.workspace.specs import HealthSpec, LocationSpec, RestartSpec
from tests.fakeclock import FakeClock

REAL_DEADLINE = 5.0  # seconds of real time for anything the loop does between fake instants


@dataclass(frozen=True)
class Plan:
    """How one spawned process behaves: fails to start, or serves RUN_FOR seconds and exits."""

    run_for: float = 0.1
    code: int = 1
    start_error: str | None = None
    hang: bool = False  # never ready: the start ends at the startup deadline


class FakeProcess:
    """A code server that exists only on the fake clock."""

    pids = itertools.count(4000)

    def __init__(self, plan: Plan, clock: FakeClock, location: str) -> None:
        self.plan = plan
        self.clock = clock
        self.location = location
        self.pid: int | None = next(self.pids)
        self.create_time: float | None = clock.now
        self._started = False
        self._code: int | None = None
        self._exited: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._life: asyncio.Task[None] | None = None

    @property
    def started(self) -> bool:
        return self._started

    @property
    def returncode(self) -> int | None:
        return self._code

    async def start(self, startup_timeout: float) -> Ready:
        self._started = True
        if self.plan.hang:
            await self.clock.sleep(startup_timeout)
            self._end(-9)
            why = f"not ready within the startup timeout of {startup_timeout:g}s"
            raise CodeServerError(self.location, "start", "-", why)
        if self.plan.start_error is not None:
            self._end(3)
            raise CodeServerError(self.location, "start", "-", self.plan.start_error)
        self._life = asyncio.ensure_future(self._live())
        return Ready(self.pid or 0, "unix:/nonexistent/fake.sock", None, 0.0, 0.0)

    async def _live(self) -> None:
        await self.clock.sleep(self.plan.run_for)
        self._end(self.plan.code)

    def _end(self, code: int) -> None:
        if self._code is None:
            self._code = code
            self._exited.set_result(code)

    async def wait(self) -> int:
        return await asyncio.shield(self._exited)

    async def stop(self, timeout: float) -> int | None:
        self._end(-15)
        return await self.wait()

    async def kill(self) -> None:
        self._end(-9)

    def kill_now(self) -> None:
        self._end(-9)

    def memory_bytes(self) -> int:
        return 0

    def tail_text(self) -> str:
        return ""


class Harness:
    """One LocalLocation wired to a fake clock, scripted processes and a recorded history."""

    def __init__(self, tmp_path: Path, plans: list[Plan], restart: RestartSpec, **kw: Any):
        self.clock = FakeClock()
        self.plans = list(plans)
        self.spawned: list[FakeProcess] = []
        self.seen: list[Transition] = []
        self.console = io.StringIO()
        spec = LocationSpec(
            name="loop",
            kind="python_file",
            line=1,
            python_file=tmp_path / "loop.py",
            restart=restart,
            # No health check or heartbeat falls within the replayed minutes.
            health=HealthSpec(interval=1e6),
            heartbeat_timeout=1e9,
        )
        self.location = LocalLocation(
            spec,
            Console(self.console),
            lambda: None,
            socket_dir=tmp_path,
            log=RotatingLog(tmp_path / "loop.log"),
            planner=kw.get("planner", self._planner),
            clock=self.clock,
            spawn=kw.get("spawn", self._spawn),
        )
        self.location.machine.add_listener(self.seen.append)
        self._changed = asyncio.Event()
        self.location.machine.add_listener(lambda _t: self._changed.set())
        self.clock.on_sleep = self._changed.set

    @staticmethod
    def _planner(
        spec: LocationSpec, progress: Callable[[str], None], live: Callable[[str], None] | None
    ) -> Launchable:
        return Launchable(["fake"], {}, None, "3.11.7", "key")

    def _spawn(
        self,
        location: str,
        argv: list[str],
        env: Mapping[str, str],
        cwd: str | None,
        on_output: OutputHandler,
        socket: Path,
    ) -> FakeProcess:
        plan = self.plans.pop(0) if self.plans else Plan(run_for=1e9)
        process = FakeProcess(plan, self.clock, location)
        self.spawned.append(process)
        return process

    async def until(self, what: str, condition: Callable[[], bool]) -> None:
        """Wait (real time, with a deadline) until CONDITION holds after some transition."""
        deadline = asyncio.get_running_loop().time() + REAL_DEADLINE
        while not condition():
            self._changed.clear()
            remaining = deadline - asyncio.get_running_loop().time()
            try:
                await asyncio.wait_for(self._changed.wait(), max(remaining, 0))
            except TimeoutError:
                saw = self.history()
                raise AssertionError(f"timed out waiting for {what}; saw: {saw}") from None

    def history(self) -> list[str]:
        return [f"{t.to_state.value}: {t.reason}" for t in self.seen]

    def backoffs(self) -> list[str]:
        return [t.reason for t in self.seen if t.to_state is State.BACKOFF]

    def serving_count(self) -> int:
        return sum(t.to_state is State.SERVING for t in self.seen)


def replay(coroutine: Coroutine[Any, Any, None]) -> None:
    asyncio.run(asyncio.wait_for(coroutine, 30))


def test_a_crash_loop_backs_off_doubling_to_the_cap(tmp_path: Path) -> None:
    async def scenario() -> None:
        h = Harness(tmp_path, [Plan()] * 6, RestartSpec(backoff_initial=0.5, backoff_max=2))
        await h.location.bring_up()
        await h.until("the first serve", lambda: h.serving_count() == 1)
        # The first crash restarts at once.
        await h.clock.advance(0.1)
        await h.until("the second serve", lambda: h.serving_count() == 2)
        assert h.backoffs() == ["code server exit code 1; restart 1 at once"]
        # Then the delays double up to the cap, and nothing starts before its delay is over.
        for number, delay in ((2, 0.5), (3, 1.0), (4, 2.0), (5, 2.0)):
            await h.clock.advance(0.1)
            await h.until(f"back-off {number}", lambda n=number: len(h.backoffs()) == n)
            assert h.backoffs()[-1].endswith(f"restart {number} in {delay:.1f}s (back-off)")
            assert h.clock.pending() == [pytest.approx(delay)]
            assert h.location.next_attempt == pytest.approx(h.clock.now + delay)
            await h.clock.advance(delay - 0.01)
            assert len(h.spawned) == number, h.history()
            await h.clock.advance(0.01)
            await h.until(f"serve {number + 1}", lambda n=number: h.serving_count() == n + 1)
        assert h.location.restarts == 5
        assert h.location.next_attempt is None  # only while in BACKOFF
        await h.location.stop()
        assert h.location.state is State.STOPPED

    replay(scenario())


def test_a_stable_run_resets_the_back_off(tmp_path: Path) -> None:
    async def scenario() -> None:
        plans = [Plan(), Plan(), Plan(run_for=30), Plan()]
        h = Harness(tmp_path, plans, RestartSpec(backoff_initial=0.5, stable_after=10))
        await h.location.bring_up()
        await h.until("the first serve", lambda: h.serving_count() == 1)
        await h.clock.advance(0.1)  # crash 1: at once
        await h.until("serve 2", lambda: h.serving_count() == 2)
        await h.clock.advance(0.1)  # crash 2: 0.5 s back-off
        await h.until("back-off 2", lambda: len(h.backoffs()) == 2)
        await h.clock.advance(0.5)
        await h.until("serve 3", lambda: h.serving_count() == 3)
        await h.clock.advance(30)  # ran longer than stable_after, then crashed: at once again
        await h.until("back-off 3", lambda: len(h.backoffs()) == 3)
        assert h.backoffs()[-1].endswith("restart 3 at once"), h.history()
        await h.location.stop()

    replay(scenario())


def test_max_restarts_within_the_window_is_fatal(tmp_path: Path) -> None:
    async def scenario() -> None:
        rules = RestartSpec(max_restarts=2, window=60, backoff_initial=0.5)
        h = Harness(tmp_path, [Plan()] * 5, rules)
        await h.location.bring_up()
        await h.until("serve 1", lambda: h.serving_count() == 1)
        await h.clock.advance(0.1)  # crash 1: at once
        await h.until("serve 2", lambda: h.serving_count() == 2)
        await h.clock.advance(0.1)  # crash 2: 0.5 s
        await h.until("back-off 2", lambda: len(h.backoffs()) == 2)
        await h.clock.advance(0.5)
        await h.until("serve 3", lambda: h.serving_count() == 3)
        await h.clock.advance(0.1)  # crash 3: the third restart within the window
        await h.until("FATAL", lambda: h.location.state is State.FATAL)
        assert "2 restarts within 60s (max_restarts 2)" in h.seen[-1].reason
        assert len(h.spawned) == 3
        await h.location.stop()
        assert h.location.state is State.FATAL

    replay(scenario())


def test_a_failed_start_goes_through_the_same_back_off(tmp_path: Path) -> None:
    async def scenario() -> None:
        plans = [Plan(start_error="not ready within the startup timeout of 60s")] * 2
        h = Harness(tmp_path, plans, RestartSpec(backoff_initial=0.5))
        await h.location.bring_up()
        await h.until("back-off 2", lambda: len(h.backoffs()) == 2)
        assert h.backoffs() == [
            "not ready within the startup timeout of 60s; restart 1 at once",
            "not ready within the startup timeout of 60s; restart 2 in 0.5s (back-off)",
        ]
        await h.clock.advance(0.5)
        await h.until("serving", lambda: h.location.state is State.SERVING)
        await h.location.stop()

    replay(scenario())


def test_a_start_that_hangs_backs_off_however_long_it_took(tmp_path: Path) -> None:
    """A start that ends at its 60 s deadline ran longer than stable_after, but never served:
    it must not reset the back-off, or a hanging location restarts at once for ever."""

    async def scenario() -> None:
        h = Harness(tmp_path, [Plan(hang=True)] * 4, RestartSpec(backoff_initial=0.5))
        await h.location.bring_up()
        for number, delay in ((1, 0.0), (2, 0.5), (3, 1.0)):
            await h.until(
                f"start {number} waiting for its deadline",
                lambda n=number: len(h.spawned) == n and pytest.approx(60) in h.clock.pending(),
            )
            await h.clock.advance(60)  # the startup deadline
            await h.until(f"back-off {number}", lambda n=number: len(h.backoffs()) == n)
            if delay:
                assert h.clock.pending() == [pytest.approx(delay)], h.history()
                await h.clock.advance(delay)
        assert [r.rsplit("; ", 1)[1] for r in h.backoffs()] == [
            "restart 1 at once",
            "restart 2 in 0.5s (back-off)",
            "restart 3 in 1.0s (back-off)",
        ]
        await h.location.stop()

    replay(scenario())


def test_policy_never_stops_after_the_first_exit(tmp_path: Path) -> None:
    async def scenario() -> None:
        h = Harness(tmp_path, [Plan(code=0)], RestartSpec(policy="never"))
        await h.location.bring_up()
        await h.until("serve 1", lambda: h.serving_count() == 1)
        await h.clock.advance(0.1)
        await h.until("STOPPED", lambda: h.location.state is State.STOPPED)
        assert h.seen[-1].reason == "code server exit code 0; policy never"
        assert len(h.spawned) == 1

    replay(scenario())


def test_an_exception_while_preparing_ends_in_build_failed_with_the_reason(
    tmp_path: Path,
) -> None:
    def broken_planner(
        spec: LocationSpec, progress: Callable[[str], None], live: object
    ) -> Launchable:
        raise OSError(28, "No space left on device", "/envs/.tmp-1/site-packages")

    async def scenario() -> None:
        h = Harness(tmp_path, [], RestartSpec(), planner=broken_planner)
        await h.location.bring_up()
        assert h.location.state is State.BUILD_FAILED, h.history()
        reason = h.location.machine.last_error or ""
        assert reason.startswith("internal error while preparing its environment: OSError:")
        assert "No space left on device" in reason
        assert "Traceback (most recent call last)" in h.console.getvalue()
        assert "broken_planner" in (tmp_path / "loop.log").read_text()

    replay(scenario())


FAULTS = [
    RuntimeError("a bug"),
    psutil.AccessDenied(4000, "code-server"),
    IllegalTransitionError(State.STOPPED, State.SERVING, "a bug", "location 'loop'"),
]


@pytest.mark.parametrize("fault", FAULTS, ids=lambda f: type(f).__name__)
def test_an_exception_in_the_loop_ends_in_fatal_with_the_reason(
    tmp_path: Path, fault: Exception
) -> None:
    def broken_spawn(*args: object) -> FakeProcess:
        raise fault

    async def scenario() -> None:
        h = Harness(tmp_path, [], RestartSpec(), spawn=broken_spawn)
        await h.location.bring_up()
        await h.until("FATAL", lambda: h.location.state is State.FATAL)
        reason = h.location.machine.last_error or ""
        assert reason == (
            f"internal error while supervising its code server: {type(fault).__name__}: {fault}"
        )
        assert "broken_spawn" in h.console.getvalue()
        assert "broken_spawn" in (tmp_path / "loop.log").read_text()
        await h.location.stop()
        assert h.location.state is State.FATAL

    replay(scenario())


def test_settled_waits_for_a_transition_not_a_poll(tmp_path: Path) -> None:
    async def scenario() -> None:
        h = Harness(tmp_path, [Plan(run_for=1e9)], RestartSpec())
        waiter = asyncio.ensure_future(h.location.settled(timeout=60))
        await asyncio.sleep(0)
        assert not waiter.done()
        await h.location.bring_up()
        await asyncio.wait_for(waiter, REAL_DEADLINE)
        assert h.location.state is State.SERVING
        # Its timeout is not left waiting on the clock: only the server's life and health
        # (the health check waits for the interval's next whole multiple).
        health = on_grid(h.clock.monotonic(), 1e6) - h.clock.monotonic()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + REAL_DEADLINE
        while len(h.clock.pending()) < 2:  # the health watch starts its wait in a task
            h.clock.slept.clear()
            await asyncio.wait_for(h.clock.slept.wait(), max(deadline - loop.time(), 0))
        assert h.clock.pending() == [pytest.approx(health), pytest.approx(1e9)]
        await h.location.stop()

    replay(scenario())
