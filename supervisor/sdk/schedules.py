"""Schedules: a cron expression that materializes a set of assets, and the cron validator."""

from __future__ import annotations

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


class ScheduleDefinition:
    """Materialize `target` (asset keys, AssetDefinitions, or "*" for all) on a cron schedule."""

    def __init__(
        self, name: str, cron_schedule: str, target: Target, description: str = ""
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
