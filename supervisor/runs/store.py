"""Runs and their events, kept in SQLite in the workspace's state folder.

The supervisor is the only writer; the CLI opens the same file read-only while it
runs. WAL mode lets those readers see the last committed state without waiting
for the writer, and a busy timeout covers the short moments when SQLite still
needs a lock (a checkpoint, the schema being created).

Schema 2 adds what schedules need: each run's trigger (`manual` or `schedule:NAME`), the
ticks of every schedule, unique by (location, schedule, scheduled time) so that no tick ever
starts two runs, and each schedule's status as last set by `schedules start|stop`. A
database of schema 1 is migrated in place, its runs kept (their trigger: `manual`).
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import time as _time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from supervisor.errors import SupervisorError
from supervisor.private import private_dir, private_fd
from supervisor.render import iso_utc

STATUSES = ("STARTED", "SUCCESS", "FAILURE", "CANCELED")
EVENT_TYPES = (
    "RUN_START",
    "STEP_START",
    "LOG",
    "ASSET_MATERIALIZATION",
    "STEP_SUCCESS",
    "STEP_FAILURE",
    "RUN_SUCCESS",
    "RUN_FAILURE",
    "RUN_CANCELED",
)
TICK_STATUSES = ("SUCCESS", "SKIPPED", "FAILURE")
SCHEMA_VERSION = 2
MIN_PREFIX = 4
BUSY_TIMEOUT_S = 5.0

_SCHEMA = """
CREATE TABLE runs (
    id TEXT PRIMARY KEY, location TEXT NOT NULL, selection TEXT NOT NULL,
    status TEXT NOT NULL, started_at REAL NOT NULL, ended_at REAL, reason TEXT
);
CREATE INDEX runs_by_start ON runs (started_at);
CREATE INDEX runs_by_status ON runs (status, location);
CREATE TABLE events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    time REAL NOT NULL, type TEXT NOT NULL, step TEXT NOT NULL, message TEXT NOT NULL,
    metadata TEXT NOT NULL, error TEXT NOT NULL, traceback TEXT NOT NULL
);
CREATE INDEX events_by_run ON events (run_id, seq);
"""
# From schema 1 to 2: a column with a default keeps every row; the rest is new.
_MIGRATE_2 = """
ALTER TABLE runs ADD COLUMN trigger TEXT NOT NULL DEFAULT 'manual';
CREATE INDEX runs_by_trigger ON runs (location, trigger, status);
CREATE TABLE ticks (
    location TEXT NOT NULL, schedule TEXT NOT NULL, scheduled_at REAL NOT NULL,
    status TEXT NOT NULL, run_id TEXT, reason TEXT NOT NULL, recorded_at REAL NOT NULL,
    UNIQUE (location, schedule, scheduled_at)
);
CREATE TABLE schedules (
    location TEXT NOT NULL, name TEXT NOT NULL, cron TEXT NOT NULL, timezone TEXT NOT NULL,
    status TEXT, running_since REAL, updated_at REAL NOT NULL, PRIMARY KEY (location, name)
);
"""
_MIGRATIONS = {2: _MIGRATE_2}

_RUN_COLUMNS = "id, location, selection, status, started_at, ended_at, reason, trigger"
# A read-only look at a schema-1 database (written by an older supervisor) has no trigger.
_RUN_COLUMNS_1 = "id, location, selection, status, started_at, ended_at, reason, 'manual'"


class TickTakenError(SupervisorError):
    """A tick (location, schedule, scheduled time) that is already recorded."""


def runs_db_path(state_dir: Path) -> Path:
    """The runs database of a workspace's state folder."""
    return state_dir / "runs.db"


def _check(value: str, allowed: tuple[str, ...], what: str) -> None:
    # Callers are our own code, so a bad value is a bug, not a user error.
    if value not in allowed:
        raise ValueError(f"unknown {what} {value!r}; allowed: {', '.join(allowed)}")


class RunStore:
    """The runs database: written by the supervisor, read by `supervisor runs`."""

    def __init__(self, path: Path, readonly: bool = False) -> None:
        self.path = path
        self.readonly = readonly
        # One connection shared by the supervisor's threads; the lock keeps each
        # transaction whole.
        self._lock = threading.Lock()
        if readonly and not path.exists():
            raise SupervisorError(f"no runs recorded yet at {path}")
        if not readonly:
            # Made 0600 before SQLite opens it: its -wal and -shm files take the same mode.
            os.close(private_fd(private_dir(path.parent) / path.name, os.O_RDWR))
        self._conn = sqlite3.connect(
            f"{path.resolve().as_uri()}?mode=ro" if readonly else str(path),
            uri=readonly,
            timeout=BUSY_TIMEOUT_S,
            isolation_level=None,  # transactions are explicit, see _write
            check_same_thread=False,
        )
        self._conn.row_factory = sqlite3.Row
        self._columns = _RUN_COLUMNS
        try:
            self._conn.execute("PRAGMA foreign_keys = ON")
            if readonly:
                self._check_version(self._version())
                if self._version() < 2:
                    self._columns = _RUN_COLUMNS_1
            else:
                self._prepare()
        except (sqlite3.DatabaseError, SupervisorError) as exc:
            self._conn.close()
            if isinstance(exc, SupervisorError):
                raise
            raise SupervisorError(f"cannot open the runs database {path}: {exc}") from None

    def _version(self) -> int:
        return int(self._conn.execute("PRAGMA user_version").fetchone()[0])

    def _check_version(self, version: int) -> None:
        if version > SCHEMA_VERSION:
            raise SupervisorError(
                f"the runs database {self.path} has schema version {version}, newer than this"
                f" supervisor's ({SCHEMA_VERSION}); upgrade workspace-supervisor to read it"
            )
        if version < 1 and self.readonly:
            raise SupervisorError(f"no runs recorded yet at {self.path}")

    def _prepare(self) -> None:
        # journal_mode cannot change inside a transaction; it stays set in the file.
        self._conn.execute("PRAGMA journal_mode = WAL")
        self._conn.execute("PRAGMA synchronous = NORMAL")
        with self._write():
            version = self._version()  # read under the write lock: two creators cannot race
            self._check_version(version)
            if version == 0:
                self._script(_SCHEMA)
                version = 1
            for step in range(version + 1, SCHEMA_VERSION + 1):
                self._script(_MIGRATIONS[step])
            if version < SCHEMA_VERSION:
                self._conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _script(self, script: str) -> None:
        # executescript would commit the open transaction: one statement at a time instead.
        for statement in script.split(";"):
            if statement.strip():
                self._conn.execute(statement)

    @contextlib.contextmanager
    def writing(self) -> Iterator[sqlite3.Connection]:
        """One write transaction on the database, for the modules that keep schedules here."""
        with self._write():
            yield self._conn

    @contextlib.contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        """The connection, held for one read (rows come back as sqlite3.Row)."""
        with self._lock:
            yield self._conn

    @contextlib.contextmanager
    def _write(self) -> Iterator[None]:
        """BEGIN IMMEDIATE ... COMMIT (ROLLBACK on error), holding the thread lock.

        IMMEDIATE takes the write lock up front, where the busy timeout applies; a
        deferred transaction that upgrades later can fail at once with "database is locked".
        """
        if self.readonly:
            raise ValueError(f"the runs store {self.path} is open read-only")
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def create_run(
        self,
        location: str,
        selection: list[str],
        run_id: str | None = None,
        now: float | None = None,
        trigger: str = "manual",
        tick: tuple[str, float] | None = None,
    ) -> str:
        """Record a new STARTED run and return its id.

        With TICK (schedule name, scheduled time) the tick is recorded in the same
        transaction; TickTakenError, and no run, when that tick is already recorded."""
        run_id = run_id or uuid.uuid4().hex
        at = _now(now)
        with self._write():
            if tick is not None:
                self._insert_tick(location, tick[0], tick[1], "SUCCESS", run_id, "", at)
            self._conn.execute(
                f"INSERT INTO runs ({_RUN_COLUMNS}) VALUES (?, ?, ?, 'STARTED', ?, NULL, NULL, ?)",
                (run_id, location, json.dumps(list(selection)), at, trigger),
            )
        return run_id

    def record_tick(
        self,
        location: str,
        schedule: str,
        scheduled_at: float,
        status: str,
        reason: str,
        now: float | None = None,
    ) -> None:
        """Record a tick that started no run (SKIPPED or FAILURE, with the reason);
        TickTakenError when that tick is already recorded."""
        _check(status, TICK_STATUSES[1:], "tick status")
        with self._write():
            self._insert_tick(location, schedule, scheduled_at, status, None, reason, _now(now))

    def _insert_tick(self, *values: Any) -> None:
        try:
            self._conn.execute(
                "INSERT INTO ticks (location, schedule, scheduled_at, status, run_id, reason,"
                " recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                values,
            )
        except sqlite3.IntegrityError:
            location, schedule, scheduled_at = values[:3]
            raise TickTakenError(
                f"the tick of schedule {location}.{schedule} at {iso_utc(scheduled_at)} is"
                " already recorded"
            ) from None

    def add_event(
        self,
        run_id: str,
        type: str,
        step: str = "",
        message: str = "",
        time: float | None = None,
        metadata: dict[str, str] | None = None,
        error: str = "",
        traceback: str = "",
    ) -> None:
        """Append one event to a run."""
        _check(type, EVENT_TYPES, "event type")
        meta = json.dumps(metadata or {})
        with self._write():
            self._insert_event(run_id, (_now(time), type, step, message, meta, error, traceback))

    def _insert_event(self, run_id: str, values: tuple[Any, ...]) -> None:
        try:
            self._conn.execute(
                "INSERT INTO events (run_id, time, type, step, message, metadata, error,"
                " traceback) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (run_id, *values),
            )
        except sqlite3.IntegrityError:
            raise ValueError(f"no run {run_id!r} to add an event to") from None

    def finish_run(
        self, run_id: str, status: str, reason: str = "", now: float | None = None
    ) -> None:
        """Mark a STARTED run finished; a run that already finished keeps its first outcome."""
        _check(status, STATUSES[1:], "final status")
        with self._write():
            updated = self._conn.execute(
                "UPDATE runs SET status = ?, ended_at = ?, reason = ?"
                " WHERE id = ? AND status = 'STARTED'",
                (status, _now(now), reason or None, run_id),
            ).rowcount
            if not updated and not self._exists(run_id):
                raise ValueError(f"no run {run_id!r} to finish")

    def reconcile(self, reason: str, now: float | None = None) -> list[str]:
        """Fail every STARTED run with REASON (no supervisor is running them); return their ids."""
        return self._fail_started(None, reason, now)

    def fail_location_runs(self, location: str, reason: str, now: float | None = None) -> list[str]:
        """Fail LOCATION's STARTED runs with REASON (its code server died); return their ids."""
        return self._fail_started(location, reason, now)

    def _fail_started(self, location: str | None, reason: str, now: float | None) -> list[str]:
        at = _now(now)
        query = "SELECT id FROM runs WHERE status = 'STARTED'"
        params: tuple[str, ...] = ()
        if location is not None:
            query, params = query + " AND location = ?", (location,)
        with self._write():
            ids = [row[0] for row in self._conn.execute(query + " ORDER BY rowid", params)]
            for run_id in ids:
                self._conn.execute(
                    "UPDATE runs SET status = 'FAILURE', ended_at = ?, reason = ? WHERE id = ?",
                    (at, reason, run_id),
                )
                self._insert_event(run_id, (at, "RUN_FAILURE", "", reason, "{}", "", ""))
        return ids

    def list_runs(
        self,
        location: str | None = None,
        status: str | None = None,
        limit: int | None = None,
        trigger: str | None = None,
    ) -> list[dict[str, Any]]:
        """Runs newest first, optionally of one location, with one status and trigger, at
        most LIMIT."""
        clauses: list[str] = []
        params: list[Any] = []
        if trigger is not None:
            clauses.append("trigger = ?")
            params.append(trigger)
        if location is not None:
            clauses.append("location = ?")
            params.append(location)
        if status is not None:
            _check(status, STATUSES, "run status")
            clauses.append("status = ?")
            params.append(status)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        # rowid breaks ties between runs started in the same instant: later insert is newer.
        query = f"SELECT {self._columns} FROM runs{where} ORDER BY started_at DESC, rowid DESC"
        if limit is not None:
            query += " LIMIT ?"
            params.append(int(limit))
        with self._lock:
            rows = self._conn.execute(query, params).fetchall()
        return [_run_dict(row) for row in rows]

    def get_run(self, run_id: str) -> dict[str, Any]:
        """One run with its events; RUN_ID may be a unique prefix of at least 4 characters."""
        with self._lock:
            # One read transaction, so the run and its events are from the same moment.
            self._conn.execute("BEGIN")
            try:
                row = self._find(run_id)
                events = self._conn.execute(
                    "SELECT time, type, step, message, metadata, error, traceback FROM events"
                    " WHERE run_id = ? ORDER BY seq",
                    (row["id"],),
                ).fetchall()
            finally:
                self._conn.execute("COMMIT")
        run = _run_dict(row)
        run["events"] = [_event_dict(event) for event in events]
        return run

    def _find(self, run_id: str) -> sqlite3.Row:
        query = f"SELECT {self._columns} FROM runs WHERE "
        exact = self._conn.execute(query + "id = ?", (run_id,)).fetchone()
        if exact is not None:
            return exact
        if len(run_id) < MIN_PREFIX:
            raise SupervisorError(
                f"no run {run_id!r} in {self.path}; give the whole id or at least"
                f" {MIN_PREFIX} characters of it"
            )
        # substr, not LIKE: an id typed by a person may hold % or _.
        rows = self._conn.execute(
            query + "substr(id, 1, ?) = ? ORDER BY started_at", (len(run_id), run_id)
        ).fetchall()
        if not rows:
            raise SupervisorError(f"no run {run_id!r} in {self.path}")
        if len(rows) > 1:
            shown = ", ".join(r["id"] for r in rows[:10]) + (", ..." if len(rows) > 10 else "")
            raise SupervisorError(
                f"run id {run_id!r} is ambiguous: {len(rows)} runs start with it ({shown});"
                " give more characters"
            )
        return rows[0]

    def _exists(self, run_id: str) -> bool:
        row = self._conn.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone()
        return row is not None

    def close(self) -> None:
        """Close the database; the store cannot be used afterwards."""
        with self._lock:
            self._conn.close()


_RUN_KEYS = tuple(_RUN_COLUMNS.split(", "))


def _now(at: float | None) -> float:
    return _time.time() if at is None else at


def _run_dict(row: sqlite3.Row) -> dict[str, Any]:
    run = dict(zip(_RUN_KEYS, tuple(row), strict=True))  # the JSON shape's order
    run["selection"] = json.loads(run["selection"])
    run["started_at"] = iso_utc(run["started_at"], "milliseconds")
    run["ended_at"] = (
        iso_utc(run["ended_at"], "milliseconds") if run["ended_at"] is not None else None
    )
    return run


def _event_dict(row: sqlite3.Row) -> dict[str, Any]:
    event = dict(row)
    event["time"] = iso_utc(event["time"], "milliseconds")
    event["metadata"] = json.loads(event["metadata"])
    return event
