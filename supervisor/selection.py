"""Choosing entries by name, as every command that takes LOCATION... does."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TypeVar

from supervisor.errors import UsageError

T = TypeVar("T")


def select(items: Mapping[str, T], names: Sequence[str], all_: bool = False) -> list[T]:
    """The items NAMES, in that order (all with ALL_ or no names); UsageError naming the
    unknown ones and the known."""
    if all_ or not names:
        return list(items.values())
    unknown = [n for n in names if n not in items]
    if unknown:
        raise UsageError(
            f"unknown location {', '.join(repr(n) for n in unknown)};"
            f" known: {', '.join(items) or 'none'}"
        )
    return [items[n] for n in names]
