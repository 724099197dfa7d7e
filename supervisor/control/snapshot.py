"""What `status` shows, kept in the state file by `up` at every change: so `status` reads a
file instead of calling the supervisor, and needs neither grpc nor protobuf.

The supervisor writes `status_to_dict` of each location's status (the `status --json`
shape) with its own pid and create time; a reader trusts it only while that very process
runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from supervisor import render
from supervisor.errors import SupervisorError
from supervisor.selection import select


def status_to_dict(status: Any) -> dict[str, Any]:
    """The JSON shape of one location's LocationStatus in `status --json`."""
    return {
        "name": status.name,
        "state": status.state,
        "pid": status.pid if status.HasField("pid") else None,
        "restarts": status.restarts,
        "python": status.python or None,
        "env": status.env if status.HasField("env") else None,
        "last_error": status.last_error if status.HasField("last_error") else None,
        "kind": status.kind,
        "address": status.address or None,
        "load_error": status.load_error if status.HasField("load_error") else None,
        "since": render.iso_utc(status.since) if status.since else None,
        "next_attempt": (
            render.iso_utc(status.next_attempt, "milliseconds")
            if status.HasField("next_attempt")
            else None
        ),
        "metadata": dict(sorted(status.metadata.items())),
        "runtime": status.runtime or "supervisor",
        "url": status.url or None,
        "dagster_version": status.dagster_version or None,
        "warning": status.warning if status.HasField("warning") else None,
    }


def running_state(workspace_file: Path) -> dict[str, Any]:
    """The state file of the supervisor running for WORKSPACE_FILE; SupervisorError when
    none runs (no file, or its pid no longer names the process that wrote it)."""
    from supervisor.supervision import statefile

    state = statefile.read_owner(statefile.state_dir_of(workspace_file)) or {}
    owner = {"pid": state.get("supervisor_pid"), "create_time": state.get("supervisor_started")}
    if not statefile.is_same_process(owner):
        raise SupervisorError(
            f"no supervisor is running for {workspace_file}; start one with"
            f" `supervisor up -w {workspace_file}`"
        )
    return state


def read_status(workspace_file: Path) -> list[dict[str, Any]]:
    """Every location's status as the running supervisor last recorded it; SupervisorError
    when none runs for WORKSPACE_FILE."""
    rows = running_state(workspace_file).get("status")
    if not isinstance(rows, list):
        raise SupervisorError(f"the state file of {workspace_file} holds no status")
    return rows


def chosen(rows: list[dict[str, Any]], names: Sequence[str]) -> list[dict[str, Any]]:
    """The rows of NAMES, in that order (all without names); UsageError naming unknown ones."""
    return select({row["name"]: row for row in rows}, names)
