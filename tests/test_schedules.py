"""The ticker replayed on a fake clock, with a real run store: cron times in timezones across
both daylight-saving changes, exactly-once ticks, catch-up, skips, statuses that persist; the
schedule definitions as the SDK makes them and the code server sends them."""

from __future__ import annotations

import asyncio
import functools
import io
import itertools
import sqlite3
from collections.abc import Callable, Coroutine, Iterator
from contextlib import closing
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from supervisor import DefaultScheduleStatus, Definitions, ScheduleDefinition, asset
from supervisor._proto import codeserver_pb2 as pb
from supervisor.cli import cli
from supervisor.codeserver.loader import LoadResult
from supervisor.codeserver.snapshot import definitions_reply
from supervisor.errors import SupervisorError
from supervisor.runs.store import RunStore, TickTakenError, runs_db_path
from supervisor.schedules import records
from supervisor.schedules.cron import CronTimes
from supervisor.schedules.model import from_proto
from supervisor.schedules.ticker import Ticker
from supervisor.sdk.errors import DefinitionsError
from supervisor.supervision.logs import Console
from supervisor.supervision.states import State
from tests.fakeclock import FakeClock

REAL_DEADLINE = 5.0  # seconds of real time for anything the ticker does between fake instants
UTC = timezone.utc
CHICAGO = ZoneInfo("America/Chicago")


def replayed(test: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Run an async test on a fresh event loop, within a real deadline."""

    @functools.wraps(test)
    def run(*args: Any, **kwargs: Any) -> None:
        asyncio.run(asyncio.wait_for(test(*args, **kwargs), 30))

    return run


def at(*parts: int, tz: Any = UTC) -> float:
    return datetime(*parts, tzinfo=tz).timestamp()


def local(stamp: float, tz: Any = UTC) -> str:
    return datetime.fromtimestamp(stamp, tz).isoformat()


@asset
def raw() -> int:
    return 1


@asset
def report(raw: int) -> int:
    return raw + 1


class FakeLocation:
    """A location replaying a state and the definitions its code server would send (made by
    the real SDK and the real serializer of the code server)."""

    def __init__(self, name: str, *schedules: ScheduleDefinition) -> None:
        self.name = name
        self.state = State.SERVING
        self.pid: int | None = 100
        self.asked = 0
        self.set(*schedules)

    def set(self, *schedules: ScheduleDefinition) -> None:
        defs = Definitions(assets=[raw, report], schedules=list(schedules))
        self.reply = definitions_reply(self.name, LoadResult(defs, None))

    async def definitions(self, timeout: float = 10.0) -> pb.DefinitionsReply:
        self.asked += 1
        if self.state is not State.SERVING:
            raise SupervisorError(f"{self.name} is {self.state.value}")
        return self.reply


class Launches:
    """The ticker's launch: records each run it is given; finishes it at once unless held."""

    def __init__(self, store: RunStore) -> None:
        self.store = store
        self.started: list[tuple[str, str, str]] = []  # (location, schedule, run_id)
        self.hold = False
        self.release = asyncio.Event()

    async def __call__(self, location: Any, schedule: Any, run_id: str) -> None:
        self.started.append((location.name, schedule.name, run_id))
        if self.hold:
            await self.release.wait()
        self.store.finish_run(run_id, "SUCCESS")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[RunStore]:
    with closing(RunStore(runs_db_path(tmp_path))) as opened:
        yield opened


def make_ticker(
    store: RunStore, clock: FakeClock, *locations: FakeLocation
) -> tuple[Ticker, Launches]:
    launches = Launches(store)
    by_name = {loc.name: loc for loc in locations}
    ticker = Ticker(store, by_name, launches, clock, Console(io.StringIO()))
    return ticker, launches


def ticks_of(store: RunStore, location: str, name: str) -> list[tuple[str, str, str]]:
    """(UTC time, status, reason) of each tick, oldest first."""
    found = records.history(store, location, name)
    return [(local(t.scheduled_at), t.status, t.reason) for t in reversed(found)]


def every(minutes: int, name: str = "often", **kwargs: Any) -> ScheduleDefinition:
    return ScheduleDefinition(
        name, f"*/{minutes} * * * *", "*", default_status=DefaultScheduleStatus.RUNNING, **kwargs
    )


async def step_at(ticker: Ticker, clock: FakeClock, moment: float) -> None:
    clock.now = moment
    await ticker.step()
    await ticker.settle()


# -- cron times -----------------------------------------------------------------------------


def times_on(cron: str, day: tuple[int, int, int], tz: Any) -> list[str]:
    times = CronTimes(cron, str(tz))
    start = at(*day, 0, 0, tz=tz) - 1
    return [local(t, tz) for t in times.between(start, start + 30 * 3600) if t > start]


def test_cron_in_a_timezone_across_the_spring_change() -> None:
    # 2024-03-10 in Chicago: 02:00 CST becomes 03:00 CDT; 02:30 does not exist.
    assert times_on("30 2 * * *", (2024, 3, 10), CHICAGO)[:2] == [
        "2024-03-10T03:00:00-05:00",  # moved to the next time that exists, as Dagster does
        "2024-03-11T02:30:00-05:00",
    ]
    hourly = [t for t in times_on("0 * * * *", (2024, 3, 10), CHICAGO) if "03-10" in t]
    assert len(hourly) == 23 and "2024-03-10T01:00:00-06:00" in hourly
    assert "2024-03-10T03:00:00-05:00" in hourly


def test_cron_in_a_timezone_across_the_autumn_change() -> None:
    # 2024-11-03 in Chicago: 02:00 CDT becomes 01:00 CST; 01:30 happens twice.
    daily = times_on("30 1 * * *", (2024, 11, 3), CHICAGO)
    # Once, at the second occurrence, as Dagster does.
    assert daily[:2] == ["2024-11-03T01:30:00-06:00", "2024-11-04T01:30:00-06:00"]
    first = at(2024, 11, 3, 1, 30, tz=CHICAGO)  # 01:30 CDT
    times = CronTimes("30 1 * * *", "America/Chicago")
    assert local(times.next_after(first + 600), CHICAGO) == "2024-11-03T01:30:00-06:00"
    assert [local(t, CHICAGO) for t in times.last(1, first + 7200, first - 86400)] == [
        "2024-11-03T01:30:00-06:00"
    ]
    hourly = [t for t in times_on("0 * * * *", (2024, 11, 3), CHICAGO) if "11-03" in t]
    # Hourly schedules go on every real hour, both 01:00s included.
    assert len(hourly) == 25
    assert {"2024-11-03T01:00:00-05:00", "2024-11-03T01:00:00-06:00"} <= set(hourly)


def test_cron_aliases_and_bad_timezones() -> None:
    assert CronTimes("@daily").next_after(at(2024, 1, 1, 12)) == at(2024, 1, 2)
    assert CronTimes("0 9 * * mon", "Europe/Berlin").next_after(at(2024, 1, 1)) == at(2024, 1, 1, 8)
    with pytest.raises(ValueError, match="unknown timezone 'Mars/Olympus'"):
        CronTimes("* * * * *", "Mars/Olympus")
    with pytest.raises(ValueError, match="'0 0 30 2 \\*' cannot be evaluated"):
        CronTimes("0 0 30 2 *")  # valid fields, but February has no 30th


# -- the SDK and what the code server sends --------------------------------------------------


def test_schedule_definition_takes_dagsters_names() -> None:
    schedule = ScheduleDefinition(
        "nightly",
        "0 3 * * *",
        target=[raw],
        execution_timezone="Europe/Berlin",
        default_status="RUNNING",
        description="every night",
        catch_up=2,
    )
    assert schedule.default_status is DefaultScheduleStatus.RUNNING
    assert schedule.execution_timezone == "Europe/Berlin"
    assert ScheduleDefinition("s", "@daily", "*").default_status is DefaultScheduleStatus.STOPPED
    reply = definitions_reply("here", LoadResult(Definitions([raw], schedules=[schedule]), None))
    sent = from_proto("here", reply.schedules[0])
    assert (sent.timezone, sent.default_status, sent.catch_up, sent.targets) == (
        "Europe/Berlin",
        "RUNNING",
        2,
        ("raw",),
    )
    assert not sent.problem and not sent.allow_overlap


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"default_status": "SOMETIMES"}, "default_status must be DefaultScheduleStatus.RUNNING"),
        ({"execution_timezone": 3}, "execution_timezone must be an IANA timezone name"),
        ({"execution_timezone": "Europe Berlin"}, "execution_timezone must be an IANA"),
        ({"catch_up": -1}, "catch_up must be between 0 and 100, got -1"),
        ({"catch_up": True}, "catch_up must be a whole number of ticks"),
        ({"allow_overlap": "yes"}, "allow_overlap must be True or False"),
    ],
)
def test_schedule_definition_errors(kwargs: dict[str, Any], expected: str) -> None:
    with pytest.raises(DefinitionsError, match=expected):
        ScheduleDefinition("s", "@daily", "*", **kwargs)


def test_an_unknown_timezone_is_the_schedules_problem_not_a_crash() -> None:
    schedule = ScheduleDefinition("s", "@daily", "*", execution_timezone="Mars/Olympus")
    reply = definitions_reply("here", LoadResult(Definitions([raw], schedules=[schedule]), None))
    assert "unknown timezone 'Mars/Olympus'" in from_proto("here", reply.schedules[0]).problem


# -- the ticker ------------------------------------------------------------------------------


@replayed
async def test_runs_start_at_cron_times_with_the_schedule_as_trigger(store: RunStore) -> None:
    clock = FakeClock(at(2024, 5, 1, 12, 0, 30))
    ticker, launches = make_ticker(store, clock, FakeLocation("etl", every(5)))
    ticker.begin()
    for minute in range(1, 16):
        await step_at(ticker, clock, at(2024, 5, 1, 12, minute, 0) + 0.2)
    assert ticks_of(store, "etl", "often") == [
        ("2024-05-01T12:05:00+00:00", "SUCCESS", ""),
        ("2024-05-01T12:10:00+00:00", "SUCCESS", ""),
        ("2024-05-01T12:15:00+00:00", "SUCCESS", ""),
    ]
    runs = store.list_runs()
    assert [r["trigger"] for r in runs] == ["schedule:often"] * 3
    assert {tuple(r["selection"]) for r in runs} == {("raw", "report")}
    assert {r["status"] for r in runs} == {"SUCCESS"}
    assert [run_id for *_, run_id in launches.started] == [r["id"] for r in reversed(runs)]


@replayed
async def test_the_loop_sleeps_until_the_next_cron_time(store: RunStore) -> None:
    clock = FakeClock(at(2024, 5, 1, 12, 0, 30))
    daily = ScheduleDefinition("daily", "0 13 * * *", "*", default_status="RUNNING")
    ticker, launches = make_ticker(store, clock, FakeLocation("etl", daily))
    task = asyncio.create_task(ticker.run())
    try:
        await asyncio.wait_for(clock.slept.wait(), REAL_DEADLINE)
        # Woken every POLL_SECONDS to look for changed servers, but no cron work before 13:00.
        await clock.advance_to(at(2024, 5, 1, 12, 59, 59), REAL_DEADLINE)
        assert launches.started == []
        await clock.advance_to(at(2024, 5, 1, 13, 0, 1), REAL_DEADLINE)
        assert [s for _, s, _ in launches.started] == ["daily"]
        assert ticks_of(store, "etl", "daily") == [("2024-05-01T13:00:00+00:00", "SUCCESS", "")]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


@pytest.mark.parametrize(
    ("cron", "start", "end", "expected"),
    [
        # The day the clock springs forward over 02:00-03:00: 02:30 runs at 03:00, once.
        (
            "30 2 * * *",
            (2024, 3, 9, 12),
            (2024, 3, 11, 12),
            ["2024-03-10T03:00:00-05:00", "2024-03-11T02:30:00-05:00"],
        ),
        # The day it falls back over 01:00-02:00: 01:30 runs once, the second time.
        (
            "30 1 * * *",
            (2024, 11, 2, 12),
            (2024, 11, 4, 12),
            ["2024-11-03T01:30:00-06:00", "2024-11-04T01:30:00-06:00"],
        ),
        # Every 30 minutes through the repeated hour: every real half hour, once each.
        (
            "*/30 * * * *",
            (2024, 11, 3, 0, 45),
            (2024, 11, 3, 2, 15),
            [
                "2024-11-03T01:00:00-05:00",
                "2024-11-03T01:30:00-05:00",
                "2024-11-03T01:00:00-06:00",
                "2024-11-03T01:30:00-06:00",
                "2024-11-03T02:00:00-06:00",
            ],
        ),
    ],
)
@replayed
async def test_the_ticker_across_daylight_saving_changes(
    store: RunStore, cron: str, start: tuple[int, ...], end: tuple[int, ...], expected: list[str]
) -> None:
    schedule = ScheduleDefinition(
        "local", cron, "*", execution_timezone="America/Chicago", default_status="RUNNING"
    )
    clock = FakeClock(at(*start, tz=CHICAGO))
    ticker, _ = make_ticker(store, clock, FakeLocation("etl", schedule))
    ticker.begin()
    moment, stop = clock.now, at(*end, tz=CHICAGO)
    while moment < stop:  # a step every 10 real minutes, as a sleeping loop would wake
        moment += 600
        await step_at(ticker, clock, moment)
    found = records.history(store, "etl", "local")
    assert [local(t.scheduled_at, CHICAGO) for t in reversed(found)] == expected
    assert {t.status for t in found} == {"SUCCESS"}


@replayed
async def test_the_store_refuses_a_tick_twice(store: RunStore) -> None:
    store.create_run("etl", ["raw"], "a" * 32, trigger="schedule:s", tick=("s", 1000.0))
    with pytest.raises(TickTakenError, match=r"tick of schedule etl\.s at .* already recorded"):
        store.create_run("etl", ["raw"], "b" * 32, trigger="schedule:s", tick=("s", 1000.0))
    with pytest.raises(TickTakenError):
        store.record_tick("etl", "s", 1000.0, "SKIPPED", "no reason")
    assert [r["id"] for r in store.list_runs()] == ["a" * 32]  # the refused run left nothing


@replayed
async def test_two_tickers_racing_start_each_tick_once(store: RunStore) -> None:
    clock = FakeClock(at(2024, 5, 1, 12, 0, 30))
    location = FakeLocation("etl", every(1))
    first, first_launches = make_ticker(store, clock, location)
    second, second_launches = make_ticker(store, clock, location)
    first.begin()
    second.begin()
    for minute in range(1, 4):
        clock.now = at(2024, 5, 1, 12, minute, 0) + 0.1
        await asyncio.gather(first.step(), second.step())
        await asyncio.gather(first.settle(), second.settle())
    assert len(first_launches.started) + len(second_launches.started) == 3
    assert len(store.list_runs()) == 3
    assert [status for _, status, _ in ticks_of(store, "etl", "often")] == ["SUCCESS"] * 3


@replayed
async def test_a_restart_in_the_middle_of_a_tick_does_not_run_it_again(store: RunStore) -> None:
    clock = FakeClock(at(2024, 5, 1, 12, 0, 30))
    location = FakeLocation("etl", every(1, catch_up=3))
    before, launches = make_ticker(store, clock, location)
    launches.hold = True  # the run is in progress when the supervisor dies
    before.begin()
    await step_at_no_settle(before, clock, at(2024, 5, 1, 12, 1) + 0.1)
    assert len(launches.started) == 1
    await before.close()  # the supervisor went away mid-run
    store.reconcile("the supervisor stopped while the run was in progress")
    # A new `up` a little later catches up on the last 3 ticks: 12:01 is already recorded.
    after, again = make_ticker(store, clock, location)
    clock.now = at(2024, 5, 1, 12, 3, 30)
    after.begin()
    await after.step()
    await after.settle()
    assert ticks_of(store, "etl", "often") == [
        ("2024-05-01T12:01:00+00:00", "SUCCESS", ""),
        ("2024-05-01T12:02:00+00:00", "SUCCESS", ""),
        ("2024-05-01T12:03:00+00:00", "SUCCESS", ""),
    ]
    assert len(again.started) == 2 and len(store.list_runs()) == 3


async def step_at_no_settle(ticker: Ticker, clock: FakeClock, moment: float) -> None:
    clock.now = moment
    await ticker.step()
    await asyncio.sleep(0)  # let the launched run task begin (a yield, not a wait on time)


@replayed
async def test_missed_ticks_are_not_run_by_default_and_catch_up_runs_the_last_n(
    store: RunStore,
) -> None:
    clock = FakeClock(at(2024, 5, 1, 12, 0, 30))
    plain = every(10, "plain")
    catching = every(10, "catching", catch_up=2)
    location = FakeLocation("etl", plain, catching)
    first, _ = make_ticker(store, clock, location)
    first.begin()
    await step_at(first, clock, at(2024, 5, 1, 12, 10, 1))  # both tick at 12:10
    await first.close()
    # The supervisor is down from 12:11 to 13:05: five ticks are missed, 12:20 to 13:00.
    later, _ = make_ticker(store, clock, location)
    clock.now = at(2024, 5, 1, 13, 5)
    later.begin()
    await later.step()
    await later.settle()
    assert [t for t, _, _ in ticks_of(store, "etl", "plain")] == ["2024-05-01T12:10:00+00:00"]
    assert [t for t, _, _ in ticks_of(store, "etl", "catching")] == [
        "2024-05-01T12:10:00+00:00",
        "2024-05-01T12:50:00+00:00",
        "2024-05-01T13:00:00+00:00",
    ]


@replayed
async def test_a_tick_of_a_location_that_is_not_serving_is_skipped(store: RunStore) -> None:
    clock = FakeClock(at(2024, 5, 1, 12, 0, 30))
    location = FakeLocation("etl", every(1))
    ticker, launches = make_ticker(store, clock, location)
    ticker.begin()
    await step_at(ticker, clock, at(2024, 5, 1, 12, 1) + 0.1)
    location.state, location.pid = State.BACKOFF, None
    await step_at(ticker, clock, at(2024, 5, 1, 12, 2) + 0.1)
    location.state, location.pid = State.SERVING, 101
    await step_at(ticker, clock, at(2024, 5, 1, 12, 3) + 0.1)
    assert ticks_of(store, "etl", "often") == [
        ("2024-05-01T12:01:00+00:00", "SUCCESS", ""),
        ("2024-05-01T12:02:00+00:00", "SKIPPED", "location 'etl' is BACKOFF"),
        ("2024-05-01T12:03:00+00:00", "SUCCESS", ""),
    ]
    assert len(launches.started) == 2
    assert location.asked == 2  # asked again once its server changed, not every step


@replayed
async def test_a_tick_is_skipped_while_the_previous_ticks_run_is_in_progress(
    store: RunStore,
) -> None:
    clock = FakeClock(at(2024, 5, 1, 12, 0, 30))
    location = FakeLocation("etl", every(1), every(1, "overlapping", allow_overlap=True))
    ticker, launches = make_ticker(store, clock, location)
    launches.hold = True
    ticker.begin()
    await step_at_no_settle(ticker, clock, at(2024, 5, 1, 12, 1) + 0.1)
    await step_at_no_settle(ticker, clock, at(2024, 5, 1, 12, 2) + 0.1)
    first_run = store.list_runs(trigger="schedule:often")[0]["id"]
    launches.release.set()
    await ticker.settle()
    await step_at(ticker, clock, at(2024, 5, 1, 12, 3) + 0.1)
    assert ticks_of(store, "etl", "often") == [
        ("2024-05-01T12:01:00+00:00", "SUCCESS", ""),
        (
            "2024-05-01T12:02:00+00:00",
            "SKIPPED",
            f"run {first_run[:8]} of an earlier tick is still in progress",
        ),
        ("2024-05-01T12:03:00+00:00", "SUCCESS", ""),
    ]
    assert [s for _, s, _ in ticks_of(store, "etl", "overlapping")] == ["SUCCESS"] * 3


@replayed
async def test_schedules_are_stopped_by_default_and_start_stop_persists(store: RunStore) -> None:
    clock = FakeClock(at(2024, 5, 1, 12, 0, 30))
    quiet = ScheduleDefinition("quiet", "* * * * *", "*")
    location = FakeLocation("etl", quiet)
    ticker, launches = make_ticker(store, clock, location)
    ticker.begin()
    await step_at(ticker, clock, at(2024, 5, 1, 12, 1) + 0.1)
    assert launches.started == [] and ticker.listing()[0].status == "STOPPED"
    clock.now = at(2024, 5, 1, 12, 1, 30)
    assert ticker.set_status("etl.quiet", True) == "RUNNING"
    await step_at(ticker, clock, at(2024, 5, 1, 12, 2) + 0.1)
    assert [t for t, _, _ in ticks_of(store, "etl", "quiet")] == ["2024-05-01T12:02:00+00:00"]
    listed = ticker.listing()[0]
    assert listed.next_tick == at(2024, 5, 1, 12, 3) and listed.last is not None
    # A new `up` (a restart) keeps it RUNNING; stopped, it stays stopped.
    again, _ = make_ticker(store, clock, location)
    again.begin()
    await again.step()
    assert again.listing()[0].status == "RUNNING"
    again.set_status("etl.quiet", False)
    third, third_launches = make_ticker(store, clock, location)
    third.begin()
    await step_at(third, clock, at(2024, 5, 1, 12, 5) + 0.1)
    assert third.listing()[0].status == "STOPPED" and third_launches.started == []


@replayed
async def test_unknown_schedule_names_list_the_known_ones(store: RunStore) -> None:
    clock = FakeClock(at(2024, 5, 1, 12))
    ticker, _ = make_ticker(store, clock, FakeLocation("etl", every(1)))
    ticker.begin()
    await ticker.step()
    with pytest.raises(SupervisorError, match=r"unknown schedule 'etl.nope'; known: etl.often"):
        ticker.set_status("etl.nope", True)
    with pytest.raises(SupervisorError, match=r"expected LOCATION\.NAME"):
        ticker.set_status("often", True)


def test_schedules_ticks_reads_the_store(tmp_path: Path) -> None:
    state = tmp_path / ".supervisor"
    state.mkdir()
    workspace = tmp_path / "workspace.yaml"
    with closing(RunStore(runs_db_path(state))) as store:
        schedule = from_proto("etl", pb.ScheduleDef(name="s", cron="* * * * *", targets=["raw"]))
        records.save(store, schedule, None, None, 1000.0)
        store.record_tick("etl", "s", at(2024, 5, 1, 12), "SKIPPED", "location 'etl' is STOPPED")
    run = CliRunner().invoke
    result = run(cli, ["schedules", "ticks", "etl.s", "--json", "-w", str(workspace)])
    assert result.exit_code == 0, result.output
    assert '"reason": "location \'etl\' is STOPPED"' in result.output
    result = run(cli, ["schedules", "-w", str(workspace), "ticks", "etl.x"])
    assert result.exit_code == 2
    assert "unknown schedule 'etl.x'; known: etl.s" in result.output
    assert "Traceback" not in result.output


def test_a_schema_1_database_is_migrated_with_its_runs(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    with closing(sqlite3.connect(path)) as raw_db:
        raw_db.executescript(
            "CREATE TABLE runs (id TEXT PRIMARY KEY, location TEXT NOT NULL, selection TEXT NOT"
            " NULL, status TEXT NOT NULL, started_at REAL NOT NULL, ended_at REAL, reason TEXT);"
            "CREATE TABLE events (seq INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL"
            " REFERENCES runs (id) ON DELETE CASCADE, time REAL NOT NULL, type TEXT NOT NULL,"
            " step TEXT NOT NULL, message TEXT NOT NULL, metadata TEXT NOT NULL, error TEXT NOT"
            " NULL, traceback TEXT NOT NULL);"
            "INSERT INTO runs VALUES ('old1', 'etl', '[\"raw\"]', 'SUCCESS', 1000.0, 1001.0, NULL);"
            "PRAGMA user_version = 1;"
        )
    with closing(RunStore(path, readonly=True)) as old:  # read as it is, before any migration
        assert [(r["id"], r["trigger"]) for r in old.list_runs()] == [("old1", "manual")]
    with closing(RunStore(path)) as store:
        assert [(r["id"], r["trigger"]) for r in store.list_runs()] == [("old1", "manual")]
        store.create_run("etl", ["raw"], "new1", trigger="schedule:s", tick=("s", 2000.0))
        assert [r["trigger"] for r in store.list_runs()] == ["schedule:s", "manual"]
    with closing(sqlite3.connect(path)) as raw_db:
        assert raw_db.execute("PRAGMA user_version").fetchone()[0] == 2


@replayed
async def test_a_new_server_with_a_changed_cron_ticks_on_the_new_one(store: RunStore) -> None:
    clock = FakeClock(at(2024, 5, 1, 12, 0, 30))
    location = FakeLocation("etl", every(30))
    ticker, _ = make_ticker(store, clock, location)
    ticker.begin()
    await step_at(ticker, clock, at(2024, 5, 1, 12, 1) + 0.1)
    location.set(every(2))  # a reload: the new server's schedule runs every 2 minutes
    location.pid = 101
    await step_at(ticker, clock, at(2024, 5, 1, 12, 1, 30))
    await step_at(ticker, clock, at(2024, 5, 1, 12, 2) + 0.1)
    assert [t for t, _, _ in ticks_of(store, "etl", "often")] == ["2024-05-01T12:02:00+00:00"]


@pytest.mark.parametrize(
    "zone", ["America/Chicago", "Europe/Berlin", "Australia/Sydney", "Australia/Lord_Howe"]
)
def test_a_year_of_cron_times_has_one_daily_tick_per_day(zone: str) -> None:
    tz = ZoneInfo(zone)
    start, end = at(2024, 1, 1, tz=tz), at(2025, 1, 1, tz=tz)
    daily = CronTimes("30 1 * * *", zone).between(start, end, limit=10_000)
    days = [datetime.fromtimestamp(t, tz).date() for t in daily]
    assert len(days) == len(set(days)) == 366, "one tick on every local day, none twice"
    assert daily == sorted(daily)
    if zone != "Australia/Lord_Howe":  # its clock moves by half an hour
        hourly = CronTimes("0 * * * *", zone).between(start, end, limit=10_000)
        assert len(hourly) == round((end - start) / 3600)
        assert all(b - a == 3600 for a, b in itertools.pairwise(hourly))


@replayed
async def test_a_dagster_location_is_left_to_dagsters_daemon(store: RunStore) -> None:
    clock = FakeClock(at(2024, 5, 1, 12, 0, 30))
    location = FakeLocation("dg", every(1))
    location.runtime = "dagster"  # type: ignore[attr-defined]  # a Location's property
    ticker, launches = make_ticker(store, clock, location)
    ticker.begin()
    await step_at(ticker, clock, at(2024, 5, 1, 12, 2) + 0.1)
    assert (location.asked, launches.started, ticks_of(store, "dg", "often")) == (0, [], [])
