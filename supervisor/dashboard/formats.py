"""How the dashboard writes figures: sizes, durations, times (Jinja filters, and the same
rules the pages' scripts follow)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from supervisor import render

# What a page shows where there is no value (an en dash).
NOTHING = "\u2013"


def size(value: int | None) -> str:
    return NOTHING if value is None else render.size(value)


def duration(seconds: float | None) -> str:
    if seconds is None:
        return NOTHING
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h {minutes:02d}m"
    return f"{hours // 24}d {hours % 24}h"


def clock(at: float | None) -> str:
    """A POSIX time as a UTC time of day (with the date when it is not today)."""
    if at is None:
        return NOTHING
    when = datetime.fromtimestamp(at, timezone.utc)
    today = datetime.now(timezone.utc).date()
    return when.strftime("%H:%M:%S" if when.date() == today else "%Y-%m-%d %H:%M:%S") + " UTC"


def ago(at: float | None) -> str:
    return NOTHING if at is None else duration(max(0.0, time.time() - at))


def iso_seconds(text: str | None) -> float | None:
    """An ISO 8601 time from the run store as POSIX seconds."""
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def iso_clock(text: str | None) -> str:
    """An ISO 8601 time from the run store as a UTC time of day."""
    return clock(iso_seconds(text))


def run_duration(run: dict[str, Any]) -> str:
    start, end = iso_seconds(run.get("started_at")), iso_seconds(run.get("ended_at"))
    if start is None:
        return NOTHING
    return duration((end if end is not None else time.time()) - start)


def first_line(text: str | None) -> str:
    return (text or "").strip().splitlines()[0] if (text or "").strip() else ""


FILTERS: dict[str, Callable[..., str]] = {
    "size": size,
    "duration": duration,
    "clock": clock,
    "ago": ago,
    "iso_clock": iso_clock,
    "run_duration": run_duration,
    "first_line": first_line,
}
