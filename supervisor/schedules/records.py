"""What the run store keeps of schedules: each one's status and the history of its ticks.

The tables are made by the run store's schema (supervisor/runs/store.py); a tick that starts
a run is recorded there too, with its run, in one transaction.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any

from supervisor.render import iso_utc
from supervisor.runs.store import RunStore
from supervisor.schedules.model import RUNNING, STOPPED, Schedule


@dataclass(frozen=True)
class Status:
    """A schedule's status as the store keeps it: EXPLICIT (set by start/stop, or None for
    the definition's default) and, while it runs, since when."""

    explicit: str | None
    running_since: float | None

    def effective(self, schedule: Schedule) -> str:
        return self.explicit or schedule.default_status


@dataclass(frozen=True)
class Tick:
    """One recorded tick."""

    location: str
    schedule: str
    scheduled_at: float
    status: str
    run_id: str | None
    reason: str

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of `schedules ticks --json`."""
        return {
            "time": iso_utc(self.scheduled_at),
            "status": self.status,
            "run_id": self.run_id,
            "reason": self.reason or None,
        }


def statuses(store: RunStore) -> dict[tuple[str, str], Status]:
    """Every schedule's kept status, by (location, name)."""
    with store.reading() as conn:
        rows = conn.execute("SELECT location, name, status, running_since FROM schedules")
        return {(r[0], r[1]): Status(r[2], r[3]) for r in rows.fetchall()}


def save(
    store: RunStore,
    schedule: Schedule,
    explicit: str | None,
    running_since: float | None,
    now: float,
) -> None:
    """Keep SCHEDULE's definition, its explicit status (None: its default) and running_since."""
    if explicit not in (None, RUNNING, STOPPED):
        raise ValueError(f"unknown schedule status {explicit!r}")
    with store.writing() as conn:
        conn.execute(
            "INSERT INTO schedules (location, name, cron, timezone, status, running_since,"
            " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (location, name) DO UPDATE"
            " SET cron = excluded.cron, timezone = excluded.timezone, status = excluded.status,"
            " running_since = excluded.running_since, updated_at = excluded.updated_at",
            (*schedule.key, schedule.cron, schedule.timezone, explicit, running_since, now),
        )


def known(store: RunStore) -> list[str]:
    """LOCATION.NAME of every schedule the store has seen, sorted."""
    with store.reading() as conn:
        if not _has_tables(conn):
            return []
        rows = conn.execute("SELECT location, name FROM schedules ORDER BY location, name")
        return [f"{r[0]}.{r[1]}" for r in rows.fetchall()]


def latest(store: RunStore) -> dict[tuple[str, str], Tick]:
    """The newest tick of every schedule, by (location, name)."""
    with store.reading() as conn:
        rows = conn.execute(
            f"SELECT {_TICK_COLUMNS} FROM ticks t WHERE scheduled_at = (SELECT MAX(scheduled_at)"
            " FROM ticks u WHERE u.location = t.location AND u.schedule = t.schedule)"
        ).fetchall()
    return {(r[0], r[1]): _tick(r) for r in rows}


def history(store: RunStore, location: str, name: str, limit: int | None = None) -> list[Tick]:
    """A schedule's ticks, newest first, at most LIMIT."""
    query = f"SELECT {_TICK_COLUMNS} FROM ticks WHERE location = ? AND schedule = ?"
    query += " ORDER BY scheduled_at DESC"
    params: tuple[Any, ...] = (location, name)
    if limit is not None:
        query, params = query + " LIMIT ?", (*params, int(limit))
    with store.reading() as conn:
        if not _has_tables(conn):
            return []
        return [_tick(r) for r in conn.execute(query, params).fetchall()]


_TICK_COLUMNS = "location, schedule, scheduled_at, status, run_id, reason"


def _tick(row: sqlite3.Row) -> Tick:
    return Tick(row[0], row[1], row[2], row[3], row[4], row[5])


def _has_tables(conn: sqlite3.Connection) -> bool:
    # A database written by a supervisor older than schedules (schema 1) has no such tables.
    found = conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'ticks'").fetchone()
    return found is not None
