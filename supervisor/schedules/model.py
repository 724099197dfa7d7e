"""What the supervisor knows of one schedule: its definition, as a code server reported it."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from supervisor._proto import codeserver_pb2 as pb
from supervisor.schedules.cron import DEFAULT_TIMEZONE, CronTimes

RUNNING, STOPPED = "RUNNING", "STOPPED"


@dataclass(frozen=True)
class Schedule:
    """One schedule of one location; PROBLEM says why it cannot tick ("" when it can)."""

    location: str
    name: str
    cron: str
    timezone: str
    targets: tuple[str, ...]
    description: str = ""
    default_status: str = STOPPED
    catch_up: int = 0
    allow_overlap: bool = False
    problem: str = ""

    @property
    def key(self) -> tuple[str, str]:
        return (self.location, self.name)

    @property
    def full_name(self) -> str:
        """LOCATION.NAME, as the commands take it."""
        return f"{self.location}.{self.name}"

    @property
    def trigger(self) -> str:
        """The trigger its runs carry."""
        return f"schedule:{self.name}"

    def times(self) -> CronTimes | None:
        """Its cron times, or None when it has a problem."""
        if self.problem:
            return None
        return cron_times(self.cron, self.timezone)


@functools.lru_cache(maxsize=1024)
def cron_times(cron: str, timezone: str) -> CronTimes:
    """CronTimes, made once per expression and zone: the ticker asks for them every tick."""
    return CronTimes(cron, timezone)


def from_proto(location: str, definition: pb.ScheduleDef) -> Schedule:
    """The schedule a code server described; an unknown timezone becomes its problem."""
    timezone = definition.timezone or DEFAULT_TIMEZONE
    problem = ""
    try:
        CronTimes(definition.cron, timezone)
    except ValueError as exc:
        problem = str(exc)
    return Schedule(
        location=location,
        name=definition.name,
        cron=definition.cron,
        timezone=timezone,
        targets=tuple(definition.targets),
        description=definition.description,
        default_status=RUNNING if definition.default_status == RUNNING else STOPPED,
        catch_up=max(0, definition.catch_up),
        allow_overlap=definition.allow_overlap,
        problem=problem,
    )


def split_name(text: str) -> tuple[str, str]:
    """LOCATION.NAME -> (LOCATION, NAME); ValueError when there is no dot."""
    location, dot, name = text.rpartition(".")
    if not dot or not location or not name:
        raise ValueError(f"expected LOCATION.NAME (a location, a dot, a schedule), got {text!r}")
    return location, name
