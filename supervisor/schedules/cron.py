"""A schedule's cron times in its timezone, evaluated by the cronsim library.

Why cronsim (https://github.com/cuu508/cronsim, the evaluator behind healthchecks.io): it is
small, pure Python with no dependencies, released regularly, and it handles daylight-saving
changes nearly the way Dagster documents for its schedules (the one difference is made good
here), which is what a user of ours expects:

- a local time that does not exist (the clock springs forward over it) fires at the next
  time that does: `30 2 * * *` on the day 02:00 becomes 03:00 fires at 03:00;
- a local time that happens twice (the clock falls back) fires once, at its second
  occurrence, when the expression names the hour (cronsim alone would take the first: see
  `_settled`); an expression whose hour is `*` (hourly, every minute) fires on every real
  hour, both occurrences of the repeated one included, as Dagster's hourly schedules do.

croniter, the other candidate, would serve too; cronsim is the smaller of the two and needs
no other package (croniter brings python-dateutil), and its handling of the changes is the
one checked here. The tests in tests/test_schedules.py pin this behaviour across both
changes of a year.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from supervisor.sdk.schedules import ALIASES

DEFAULT_TIMEZONE = "UTC"
# A jump of the clock (a suspended laptop) could make very many ticks due at once: the
# ticker looks at no more than this many of them.
MAX_TIMES = 1000


class CronTimes:
    """The times a cron expression names, in one timezone, as POSIX seconds."""

    def __init__(self, cron: str, timezone: str = "") -> None:
        self.cron = cron
        self.timezone = timezone or DEFAULT_TIMEZONE
        try:
            self.zone = ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown timezone {self.timezone!r} (expected an IANA name such as"
                " 'Europe/Berlin' or 'America/New_York')"
            ) from None
        self.expression = ALIASES.get(cron.strip().lower(), cron.strip())
        try:
            next(CronSim(self.expression, datetime.now(self.zone)))
        except CronSimError as exc:
            raise ValueError(f"cron expression {cron!r} cannot be evaluated: {exc}") from None

    def next_after(self, after: float) -> float:
        """The first cron time strictly after AFTER."""
        for stamp in self._forward(after):
            return stamp
        raise ValueError(f"cron expression {self.cron!r} names no time after {after}")

    def between(self, after: float, until: float, limit: int = MAX_TIMES) -> list[float]:
        """The cron times in (AFTER, UNTIL], oldest first; the last LIMIT of them."""
        found: list[float] = []
        for stamp in self._forward(after):
            if stamp > until:
                break
            found.append(stamp)
            if len(found) > limit:
                found.pop(0)
        return found

    def last(self, count: int, until: float, after: float) -> list[float]:
        """At most COUNT of the latest cron times in (AFTER, UNTIL], oldest first."""
        found: list[float] = []
        # Reverse iteration is strictly before its start: start just past UNTIL.
        start = datetime.fromtimestamp(until + 1, self.zone)
        for moment in CronSim(self.expression, start, reverse=True):
            stamp = self._settled(moment)
            if stamp <= after or len(found) >= count:
                break
            if stamp <= until:
                found.append(stamp)
        return found[::-1]

    def _forward(self, after: float) -> Iterator[float]:
        start = datetime.fromtimestamp(after, self.zone)
        earlier = datetime.fromtimestamp(after - _LEEWAY, self.zone)
        later = datetime.fromtimestamp(after + _LEEWAY, self.zone)
        if earlier.utcoffset() != later.utcoffset():
            # The clock changes about now: a time moved to its second occurrence may lie after
            # AFTER while its first lies before.
            start = earlier
        for moment in CronSim(self.expression, start):
            stamp = self._settled(moment)
            if stamp > after:
                yield stamp

    def _settled(self, moment: datetime) -> float:
        """MOMENT as Dagster runs it: a wall time that happens twice, at its second occurrence,
        unless the expression also names that second one itself (an hour of `*`)."""
        if moment.fold == 0:
            twin = moment.replace(fold=1)
            if twin.utcoffset() != moment.utcoffset():
                before = datetime.fromtimestamp(twin.timestamp() - 1, self.zone)
                if next(CronSim(self.expression, before)).timestamp() != twin.timestamp():
                    return twin.timestamp()
        return moment.timestamp()


# Seconds: more than the largest change of a clock (two hours, in Antarctica/Troll).
_LEEWAY = 2 * 3600 + 1
