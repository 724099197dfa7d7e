"""The liveness watch: beats where the server sends them, Health.Check where it does not, and
the count of misses that kills a hung server. Fake servers answer at once; the real clock runs
on intervals of a few milliseconds."""

from __future__ import annotations

import asyncio

from supervisor.errors import CodeServerError
from supervisor.supervision.clock import REAL_CLOCK
from supervisor.supervision.probes import on_grid, watch_health
from supervisor.workspace.specs import HealthSpec, LocationSpec

DEADLINE = 30.0


def spec(failures: int = 3) -> LocationSpec:
    return LocationSpec(
        name="probed",
        kind="python_file",
        line=0,
        health=HealthSpec(interval=0.01, timeout=0.05, failures=failures),
    )


class FakeStream:
    """A Beats stream whose beats are STATUSES in turn; past their end, none comes."""

    def __init__(self, client: BeatingServer, statuses: list[str], unimplemented: bool) -> None:
        self.client = client
        self._statuses = statuses
        self.unimplemented = False
        self._never = unimplemented
        self.cancelled = False

    async def next(self, timeout: float) -> str:
        if self._never:
            self.unimplemented = True
            raise CodeServerError("probed", "Beats", "unix:x", "UNIMPLEMENTED: no beats here")
        if not self._statuses:
            raise CodeServerError("probed", "Beats", "unix:x", f"no beat within {timeout:g}s")
        return self._statuses.pop(0)

    def cancel(self) -> None:
        self.cancelled = True


class BeatingServer:
    """A client whose server sends beats (or says it has none), and answers checks."""

    def __init__(self, beats: list[str], unimplemented: bool = False) -> None:
        self._beats = beats
        self._unimplemented = unimplemented
        self.streams: list[FakeStream] = []
        self.checks = 0

    def beats(self, interval: float) -> FakeStream:
        stream = FakeStream(self, self._beats, self._unimplemented)
        self.streams.append(stream)
        return stream

    async def health(self, timeout: float) -> str:
        self.checks += 1
        return "SERVING"

    async def heartbeat(self, timeout: float) -> None:
        return None


def watch(server: BeatingServer, reports: list[str | None], failures: int = 3) -> str:
    async def run() -> str:
        return await asyncio.wait_for(
            watch_health(lambda: server, lambda: 0, spec(failures), REAL_CLOCK, reports.append),
            DEADLINE,
        )

    return asyncio.run(run())


def test_beats_are_reported_and_misses_in_a_row_kill() -> None:
    server = BeatingServer(["SERVING", "SERVING", "NOT_SERVING", "SERVING"])
    reports: list[str | None] = []
    reason = watch(server, reports)
    assert reports[:4] == [None, None, "NOT_SERVING", None], reports
    # Then no beat comes: a stream is opened again after each miss, and the third kills.
    assert reason.startswith("health check failed 3 times in a row (no beat within"), reason
    assert len(server.streams) == 3, "one stream, then one more after each of two misses"
    assert server.checks == 0


def test_a_server_without_beats_is_checked_instead() -> None:
    server = BeatingServer([], unimplemented=True)
    reports: list[str | None] = []

    async def run() -> None:
        task = asyncio.ensure_future(
            watch_health(lambda: server, lambda: 0, spec(), REAL_CLOCK, reports.append)
        )
        deadline = asyncio.get_running_loop().time() + DEADLINE
        while len(reports) < 3:
            assert asyncio.get_running_loop().time() < deadline, reports
            await asyncio.sleep(0.01)
        task.cancel()

    asyncio.run(run())
    assert reports[:3] == [None, None, None]
    assert len(server.streams) == 1, "a server without beats is asked once"
    assert server.checks >= 3


def test_the_grid_is_the_next_whole_multiple() -> None:
    assert on_grid(10.0, 2.0) == 12.0
    assert on_grid(11.5, 2.0) == 12.0
    assert on_grid(0.0, 0.5) == 0.5
