"""The ticker: the part of `up` that starts a run at each cron time of each RUNNING schedule.

It learns the schedules from the code servers (asked again whenever a location's server
changes: a restart, a reload), keeps each schedule's status and ticks in the run store, and
sleeps on the injected clock until the next cron time, so that tests replay it on a fake one.

Exactly once: a tick is recorded under the unique key (location, schedule, scheduled time),
together with the run it starts, in one transaction. A tick already recorded (by an `up`
before a restart, by a second ticker racing this one) starts nothing. Ticks missed while no
`up` ran are not run, unless the schedule asks for a catch-up of its last N; ticks this `up`
sees come in order, each started, or recorded as SKIPPED with the reason (the location is not
serving, the run of an earlier tick is still in progress), or FAILURE when it cannot start.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from supervisor._proto import codeserver_pb2 as pb
from supervisor.errors import SupervisorError
from supervisor.render import iso_utc
from supervisor.runs import materialize
from supervisor.runs.store import RunStore, TickTakenError
from supervisor.schedules import records
from supervisor.schedules.model import RUNNING, STOPPED, Schedule, from_proto, split_name
from supervisor.supervision.clock import REAL_CLOCK, Clock
from supervisor.supervision.logs import Console
from supervisor.supervision.states import State

# How often the ticker looks for locations whose server changed; costs no call when none did.
POLL_SECONDS = 1.0


class ScheduleSource(Protocol):
    """What the ticker needs of a location (supervision.location.Location has it all)."""

    @property
    def name(self) -> str: ...
    @property
    def state(self) -> State: ...
    @property
    def pid(self) -> int | None: ...
    async def definitions(self, timeout: float = ...) -> pb.DefinitionsReply: ...


# Runs one tick's run (already recorded, as RUN_ID) in its location, to its end.
Launch = Callable[[Any, Schedule, str], Coroutine[Any, Any, None]]


@dataclass(frozen=True)
class Listed:
    """One schedule as `supervisor schedules` shows it."""

    schedule: Schedule
    status: str
    next_tick: float | None
    last: records.Tick | None


class Ticker:
    """Ticks the RUNNING schedules of LOCATIONS (the supervisor's own mapping, live)."""

    def __init__(
        self,
        store: RunStore,
        locations: Mapping[str, ScheduleSource],
        launch: Launch,
        clock: Clock = REAL_CLOCK,
        console: Console | None = None,
    ) -> None:
        self.store = store
        self.locations = locations
        self.launch = launch
        self.clock = clock
        self.console = console or Console()
        # Per location: which server the schedules came from, and the schedules.
        self.known: dict[str, tuple[tuple[int, int | None], list[Schedule]]] = {}
        self.started_at: float | None = None
        self._status: dict[tuple[str, str], records.Status] = {}
        self._latest: dict[tuple[str, str], records.Tick] = {}
        # Ticks up to this time are evaluated; the next cron time after it.
        self._cursor: dict[tuple[str, str], float] = {}
        self._next: dict[tuple[str, str], float] = {}
        self._runs: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()

    # -- the loop ----------------------------------------------------------------------------

    async def run(self) -> None:
        """Tick until cancelled; runs it started are cancelled with it."""
        self.begin()
        last_error: str | None = None
        try:
            while True:
                self._wake.clear()
                try:
                    await self.step()
                except Exception as exc:  # a bug here must not end the ticking of the others
                    said = f"schedules: internal error while ticking: {exc!r}"
                    if said != last_error:  # once, not on every step
                        self.console.event(said)
                    last_error = said
                else:
                    last_error = None
                now = self.clock.time()
                wake_at = min([now + POLL_SECONDS, *self._next.values()])
                await self.clock.wait(self._wake, max(0.0, wake_at - now))
        finally:
            await self.close()

    def begin(self) -> None:
        """Start this ticker's life: read what the store kept."""
        self.started_at = self.clock.time()
        self._status = records.statuses(self.store)
        self._latest = records.latest(self.store)

    async def step(self) -> None:
        """Learn new definitions, then evaluate every schedule up to now."""
        if self.started_at is None:
            self.begin()
        await self.refresh()
        now = self.clock.time()
        current = set()
        for schedule in self.schedules():
            current.add(schedule.key)
            self._advance(schedule, now)
        for key in [k for k in self._cursor if k not in current]:
            del self._cursor[key]
            self._next.pop(key, None)

    async def close(self) -> None:
        """Cancel the runs this ticker started and wait for them to record it."""
        for task in list(self._runs):
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*self._runs, return_exceptions=True)

    async def settle(self) -> None:
        """Wait for the runs this ticker started to end (tests, benchmarks)."""
        await asyncio.gather(*self._runs, return_exceptions=True)

    # -- definitions -------------------------------------------------------------------------

    def schedules(self) -> list[Schedule]:
        """Every schedule known, by location then name."""
        found = [s for _, (_, schedules) in sorted(self.known.items()) for s in schedules]
        return sorted(found, key=lambda s: s.key)

    async def refresh(self) -> None:
        """Ask each location whose server changed for its schedules."""
        for gone in [name for name in self.known if name not in self.locations]:
            del self.known[gone]
        asks = []
        for name, location in list(self.locations.items()):
            identity = (id(location), location.pid)
            cached = self.known.get(name)
            if location.state is State.SERVING and (cached is None or cached[0] != identity):
                asks.append(self._ask(name, location, identity))
        await asyncio.gather(*asks)

    async def _ask(
        self, name: str, location: ScheduleSource, identity: tuple[int, int | None]
    ) -> None:
        # Dagster's own locations are ticked by Dagster's daemon, not here.
        if getattr(location, "runtime", "supervisor") == "dagster":
            return
        try:
            reply = await location.definitions()
        except SupervisorError:
            return  # asked again on the next step
        # A new server may bring new cron expressions: their next times are computed anew.
        for key in [k for k in self._next if k[0] == name]:
            del self._next[key]
        if reply.HasField("load_error"):
            self.known[name] = (identity, [])
            return
        self.known[name] = (identity, [from_proto(name, d) for d in reply.schedules])

    # -- ticks -------------------------------------------------------------------------------

    def status_of(self, schedule: Schedule) -> str:
        return self._status.get(schedule.key, records.Status(None, None)).effective(schedule)

    def _advance(self, schedule: Schedule, now: float) -> None:
        key = schedule.key
        if key not in self._cursor:
            self._first_sight(schedule, now)
        times = schedule.times()
        if self.status_of(schedule) != RUNNING or times is None:
            self._cursor[key] = now
            self._next.pop(key, None)
            return
        if key in self._next and self._next[key] > now:
            return  # nothing due yet: the common case costs no cron evaluation
        due = times.between(self._cursor[key], now)
        self._cursor[key] = now
        self._next[key] = times.next_after(now)
        batch: set[str] = set()
        for at in due:
            self._tick(schedule, at, now, batch)

    def _first_sight(self, schedule: Schedule, now: float) -> None:
        """The first look at SCHEDULE in this ticker's life: keep it in the store, and run the
        catch-up it asks for of the ticks missed while no `up` ran."""
        key = schedule.key
        kept = self._status.get(key, records.Status(None, None))
        running = kept.effective(schedule) == RUNNING
        since = (kept.running_since or now) if running else None
        records.save(self.store, schedule, kept.explicit, since, now)
        self._status[key] = records.Status(kept.explicit, since)
        started = self.started_at if self.started_at is not None else now
        # Ticks since this `up` started are not missed: its locations were coming up.
        self._cursor[key] = min(started, now) if running else now
        times = schedule.times()
        if not running or times is None or not schedule.catch_up or since is None:
            return
        last = self._latest.get(key)
        after = max(since, last.scheduled_at if last else since)
        batch: set[str] = set()
        for at in times.last(schedule.catch_up, self._cursor[key], after):
            self._tick(schedule, at, now, batch)

    def _tick(self, schedule: Schedule, at: float, now: float, batch: set[str]) -> None:
        """Start the run of the tick AT, or record why not. BATCH: the runs started by the
        ticks due together with this one (a catch-up), which do not count as overlapping."""
        location = self.locations.get(schedule.location)
        if location is None:
            return
        if location.state is not State.SERVING:
            self._skip(schedule, at, f"location {location.name!r} is {location.state.value}", now)
            return
        if not schedule.targets:
            self._skip(schedule, at, "the schedule targets no asset", now)
            return
        if not schedule.allow_overlap:
            started = self.store.list_runs(
                location=schedule.location, status="STARTED", trigger=schedule.trigger
            )
            busy = [run["id"] for run in started if run["id"] not in batch]
            if busy:
                why = f"run {busy[0][:8]} of an earlier tick is still in progress"
                self._skip(schedule, at, why, now)
                return
        run_id = uuid.uuid4().hex
        try:
            self.store.create_run(
                schedule.location,
                list(schedule.targets),
                run_id,
                now=self.clock.time(),  # when it really started: a burst of ticks takes a while
                trigger=schedule.trigger,
                tick=(schedule.name, at),
            )
        except TickTakenError:
            return  # an earlier `up`, or another ticker, has this tick: it is not ours to run
        batch.add(run_id)
        self._latest[schedule.key] = records.Tick(*schedule.key, at, "SUCCESS", run_id, "")
        self.console.line(
            schedule.location, f"schedule {schedule.name}: tick {iso_utc(at)}, run {run_id[:8]}"
        )
        task = asyncio.create_task(self._launch(location, schedule, run_id), name=run_id)
        self._runs.add(task)
        task.add_done_callback(self._runs.discard)

    def _skip(self, schedule: Schedule, at: float, reason: str, now: float) -> None:
        try:
            self.store.record_tick(schedule.location, schedule.name, at, "SKIPPED", reason, now)
        except TickTakenError:
            return
        self._latest[schedule.key] = records.Tick(*schedule.key, at, "SKIPPED", None, reason)
        self.console.line(
            schedule.location, f"schedule {schedule.name}: tick {iso_utc(at)} skipped: {reason}"
        )

    async def _launch(self, location: ScheduleSource, schedule: Schedule, run_id: str) -> None:
        try:
            await self.launch(location, schedule, run_id)
        except Exception as exc:  # the run fails, visibly; the ticker goes on
            reason = f"the run of schedule {schedule.full_name} could not start: {exc}"
            self.console.line(schedule.location, reason)
            with contextlib.suppress(ValueError):
                self.store.finish_run(run_id, "FAILURE", reason)

    # -- commands ----------------------------------------------------------------------------

    def find(self, full_name: str) -> Schedule:
        """The known schedule LOCATION.NAME; SupervisorError listing the known ones."""
        try:
            location, name = split_name(full_name)
        except ValueError as exc:
            raise SupervisorError(str(exc)) from None
        for schedule in self.schedules():
            if schedule.key == (location, name):
                return schedule
        known = ", ".join(s.full_name for s in self.schedules()) or "none"
        away = [n for n, loc in self.locations.items() if n not in self.known]
        note = f" (not known yet: the schedules of {', '.join(away)})" if away else ""
        raise SupervisorError(f"unknown schedule {full_name!r}; known: {known}{note}")

    def set_status(self, full_name: str, running: bool) -> str:
        """Start or stop a schedule, keeping the choice in the store; what it did, for people."""
        schedule = self.find(full_name)
        now = self.clock.time()
        kept = self._status.get(schedule.key, records.Status(None, None))
        was_running = kept.effective(schedule) == RUNNING
        explicit = RUNNING if running else STOPPED
        since = ((kept.running_since or now) if was_running else now) if running else None
        records.save(self.store, schedule, explicit, since, now)
        self._status[schedule.key] = records.Status(explicit, since)
        if running and not was_running:
            self._cursor[schedule.key] = now  # ticks before it was started are not its own
        self._next.pop(schedule.key, None)
        self._wake.set()
        if schedule.problem:
            return f"{explicit}, but it cannot tick: {schedule.problem}"
        return explicit

    def listing(self) -> list[Listed]:
        """Every known schedule with its status, next and last tick."""
        now = self.clock.time()
        latest = records.latest(self.store)
        rows = []
        for schedule in self.schedules():
            status = self.status_of(schedule)
            times = schedule.times()
            upcoming = None
            if status == RUNNING and times is not None:
                upcoming = self._next.get(schedule.key) or times.next_after(now)
            rows.append(Listed(schedule, status, upcoming, latest.get(schedule.key)))
        return rows


def materializer(store: RunStore) -> Launch:
    """The launch `up` uses: a tick's run goes exactly the way of `supervisor materialize`."""

    async def launch(location: Any, schedule: Schedule, run_id: str) -> None:
        async for _ in materialize.run(
            store, location, list(schedule.targets), False, schedule.trigger, run_id
        ):
            pass

    return launch
