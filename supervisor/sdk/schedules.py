"""Schedules: a cron expression that materializes a set of assets, and the cron validator."""

from __future__ import annotations

import enum
import re
from typing import Any, Sequence, Union

from supervisor.sdk.assets import AssetDefinition
from supervisor.sdk.errors import DefinitionsError, describe, key_problem

ALIASES: dict[str, str] = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}

_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")

# The ASCII class, not \d, which would also accept digits of other scripts.
_NUMBER = re.compile(r"[0-9]+\Z")
_GRAMMAR = "a comma list of *, N or A-B, each optionally followed by /STEP"


class _Field:
    def __init__(self, name: str, low: int, high: int, names: Sequence[str] = ()) -> None:
        self.name = name
        self.low = low
        self.high = high
        # Names map to numbers from `low`: jan is 1, sun is 0.
        self.names = {text: low + i for i, text in enumerate(names)}
        self.allowed = f"{low}-{high}"
        if names:
            self.allowed += f" or {names[0]}-{names[-1]}"

    def value(self, text: str, item: str) -> int:
        if _NUMBER.match(text):
            number = int(text)
        elif text.lower() in self.names:
            return self.names[text.lower()]
        else:
            raise self.error(
                item, f"{text!r} is not a number" + (" or a name" if self.names else "")
            )
        if not self.low <= number <= self.high:
            raise self.error(item, f"{number} is out of range")
        return number

    def error(self, item: str, problem: str) -> ValueError:
        return ValueError(
            f"{self.name} field {item!r}: {problem} (allowed: {self.allowed}; each field is "
            f"{_GRAMMAR})"
        )


_FIELDS = (
    _Field("minute", 0, 59),
    _Field("hour", 0, 23),
    _Field("day-of-month", 1, 31),
    _Field("month", 1, 12, _MONTHS),
    _Field("day-of-week", 0, 7, _DAYS),
)


def validate_cron(expr: str) -> None:
    """Raise ValueError saying what is wrong unless `expr` is a valid 5-field cron expression."""
    if not isinstance(expr, str):
        raise ValueError(f"a cron expression must be a string, got {describe(expr)}")
    text = expr.strip()
    if text.startswith("@"):
        if text.lower() not in ALIASES:
            raise ValueError(f"unknown alias {text!r} (allowed: {', '.join(ALIASES)})")
        return
    parts = text.split()
    if len(parts) != len(_FIELDS):
        raise ValueError(
            f"expected 5 fields (minute hour day-of-month month day-of-week) or one of "
            f"{', '.join(ALIASES)}; got {len(parts)} field{'' if len(parts) == 1 else 's'}"
        )
    for field, part in zip(_FIELDS, parts):
        for item in part.split(","):
            _check_item(field, item, part)


def _check_item(field: _Field, item: str, part: str) -> None:
    if not item:
        raise field.error(part, "empty list element")
    base, slash, step = item.partition("/")
    if slash and (not _NUMBER.match(step) or int(step) < 1):
        raise field.error(item, f"step {step!r} must be a whole number >= 1")
    if base == "*":
        return
    first, dash, last = base.partition("-")
    if not first or (dash and not last):
        raise field.error(item, "expected *, N or A-B")
    low = field.value(first, item)
    if dash:
        high = field.value(last, item)
        if low > high:
            raise field.error(item, f"range start {first} is after its end {last}")


Target = Union[str, AssetDefinition, Sequence[Union[str, AssetDefinition]]]
# The most missed ticks a schedule may ask to catch up on when `up` starts.
MAX_CATCH_UP = 100


class DefaultScheduleStatus(enum.Enum):
    """Whether a schedule ticks before anyone starts or stops it (Dagster's names)."""

    RUNNING = "RUNNING"
    STOPPED = "STOPPED"


class ScheduleDefinition:
    """Materialize `target` (asset keys, AssetDefinitions, or "*" for all) on a cron schedule.

    As in Dagster, times are in `execution_timezone` (an IANA name; UTC when None) and a
    schedule is STOPPED until started, unless `default_status` is RUNNING. Ours beyond
    Dagster's: `catch_up`, how many of the ticks missed while `up` was down to run when it
    starts (0, Dagster's default for schedules here: none), and `allow_overlap`, whether a
    tick starts a run while the run of an earlier tick is still in progress (no: skipped).
    """

    def __init__(
        self,
        name: str,
        cron_schedule: str,
        target: Target,
        description: str = "",
        execution_timezone: str | None = None,
        default_status: DefaultScheduleStatus | str = DefaultScheduleStatus.STOPPED,
        catch_up: int = 0,
        allow_overlap: bool = False,
    ) -> None:
        problem = key_problem(name, "schedule name")
        if problem is not None:
            raise DefinitionsError(problem)
        try:
            validate_cron(cron_schedule)
        except ValueError as exc:
            raise DefinitionsError(
                f"schedule {name!r}: invalid cron_schedule {cron_schedule!r}: {exc}"
            ) from None
        if not isinstance(description, str):
            raise DefinitionsError(
                f"schedule {name!r}: description must be a string, got {describe(description)}"
            )
        self._name = name
        self._cron = cron_schedule
        self._description = description
        self._timezone = _check_timezone(name, execution_timezone)
        self._default_status = _check_status(name, default_status)
        self._catch_up = _check_catch_up(name, catch_up)
        if not isinstance(allow_overlap, bool):
            raise DefinitionsError(
                f"schedule {name!r}: allow_overlap must be True or False, "
                f"got {describe(allow_overlap)}"
            )
        self._allow_overlap = allow_overlap
        self._target_all = isinstance(target, str) and target == "*"
        self._targets = () if self._target_all else _normalize_target(name, target)

    @property
    def name(self) -> str:
        """The schedule's name."""
        return self._name

    @property
    def cron_schedule(self) -> str:
        """The cron expression, as given."""
        return self._cron

    @property
    def description(self) -> str:
        """The schedule's description."""
        return self._description

    @property
    def execution_timezone(self) -> str | None:
        """The IANA timezone its cron times are in; None means UTC."""
        return self._timezone

    @property
    def default_status(self) -> DefaultScheduleStatus:
        """RUNNING or STOPPED until someone starts or stops it."""
        return self._default_status

    @property
    def catch_up(self) -> int:
        """How many ticks missed while `up` was down to run when it starts."""
        return self._catch_up

    @property
    def allow_overlap(self) -> bool:
        """Whether a tick starts a run while an earlier tick's run is still in progress."""
        return self._allow_overlap

    @property
    def targets(self) -> tuple[str, ...]:
        """The targeted asset keys; empty when `target_all`."""
        return self._targets

    @property
    def target_all(self) -> bool:
        """Whether the schedule targets every asset of its Definitions ("*")."""
        return self._target_all

    def __repr__(self) -> str:
        target = "'*'" if self._target_all else repr(self._targets)
        return f"ScheduleDefinition(name={self._name!r}, cron={self._cron!r}, target={target})"


# An IANA name: letters, digits and - + _ in parts joined by "/", as the tz database has them.
_TIMEZONE = re.compile(r"[A-Za-z0-9_+\-]+(/[A-Za-z0-9_+\-]+)*\Z")


def _check_timezone(name: str, timezone: Any) -> str | None:
    # Only the form is checked here: zoneinfo is 3.9+ and a location's environment may lack
    # tzdata. The supervisor, which evaluates the cron times, checks that the zone exists.
    if timezone is None:
        return None
    if not isinstance(timezone, str) or not _TIMEZONE.match(timezone):
        raise DefinitionsError(
            f"schedule {name!r}: execution_timezone must be an IANA timezone name such as "
            f"'Europe/Berlin' or None (UTC), got {describe(timezone)}"
        )
    return timezone


def _check_status(name: str, status: Any) -> DefaultScheduleStatus:
    if isinstance(status, DefaultScheduleStatus):
        return status
    if isinstance(status, str) and status.upper() in DefaultScheduleStatus.__members__:
        return DefaultScheduleStatus[status.upper()]
    raise DefinitionsError(
        f"schedule {name!r}: default_status must be DefaultScheduleStatus.RUNNING or "
        f"DefaultScheduleStatus.STOPPED (or 'RUNNING', 'STOPPED'), got {describe(status)}"
    )


def _check_catch_up(name: str, catch_up: Any) -> int:
    if isinstance(catch_up, bool) or not isinstance(catch_up, int):
        raise DefinitionsError(
            f"schedule {name!r}: catch_up must be a whole number of ticks, got {describe(catch_up)}"
        )
    if not 0 <= catch_up <= MAX_CATCH_UP:
        raise DefinitionsError(
            f"schedule {name!r}: catch_up must be between 0 and {MAX_CATCH_UP}, got {catch_up}"
        )
    return catch_up


def _normalize_target(name: str, target: Any) -> tuple[str, ...]:
    # A lone key or asset is one target; a string must not be split into characters.
    items = [target] if isinstance(target, (str, AssetDefinition)) else target
    if isinstance(items, (bytes, dict)) or not hasattr(items, "__iter__"):
        raise DefinitionsError(
            f"schedule {name!r}: target must be asset keys, AssetDefinitions or '*', "
            f"got {describe(target)}"
        )
    keys: list[str] = []
    for position, item in enumerate(items):
        if isinstance(item, AssetDefinition):
            key = item.key
        elif item == "*":
            raise DefinitionsError(
                f"schedule {name!r}: '*' selects every asset and must be the whole target "
                "(target='*')"
            )
        else:
            problem = key_problem(item, f"schedule {name!r}: target[{position}]")
            if problem is not None:
                raise DefinitionsError(problem)
            key = item
        if key not in keys:
            keys.append(key)
    if not keys:
        raise DefinitionsError(
            f"schedule {name!r}: target is empty; give asset keys, AssetDefinitions or '*'"
        )
    return tuple(keys)
