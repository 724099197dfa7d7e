"""`supervisor runs` and `supervisor runs show ID`: read the runs database directly.

Both open `<workspace folder>/.supervisor/runs.db` read-only, so they work with or
without a running supervisor, and without parsing the workspace file (which may
have been edited since the runs were recorded).
"""

from __future__ import annotations

from contextlib import closing
from datetime import datetime
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from supervisor import render
from supervisor.commands.common import json_option, workspace_option
from supervisor.runs.store import STATUSES, RunStore, runs_db_path
from supervisor.supervision import statefile

SELECTION_WIDTH = 60
# Events whose error and traceback are printed under them.
FAILURE_EVENTS = ("STEP_FAILURE", "RUN_FAILURE")


def open_store(workspace_file: Path) -> RunStore:
    """The workspace's runs database, read-only; SupervisorError when there is none yet."""
    state_dir = statefile.state_dir_of(workspace_file)
    return RunStore(runs_db_path(state_dir), readonly=True)


@click.group("runs", invoke_without_command=True)
@workspace_option
@click.option("-l", "--location", help="Only this location's runs.")
@click.option(
    "--status",
    # The event names people see (RUN_SUCCESS) name the same statuses.
    type=click.Choice([*STATUSES, *(f"RUN_{s}" for s in STATUSES[1:])], case_sensitive=False),
    callback=lambda _ctx, _param, value: value and value.upper().removeprefix("RUN_"),
    help="Only runs with this status (SUCCESS or RUN_SUCCESS, ...).",
)
@click.option("--limit", type=click.IntRange(min=1), help="At most this many runs (the newest).")
@json_option
@click.pass_context
def runs(
    ctx: click.Context,
    workspace_file: Path,
    location: str | None,
    status: str | None,
    limit: int | None,
    as_json: bool,
) -> None:
    """List the runs of a workspace, newest first; `runs show ID` shows one with its events."""
    if ctx.invoked_subcommand is not None:
        return
    state_dir = statefile.state_dir_of(workspace_file)
    if not runs_db_path(state_dir).exists():
        rows = []  # nothing has run here yet: an empty list, not an error
    else:
        with closing(open_store(workspace_file)) as store:
            rows = store.list_runs(location=location, status=status, limit=limit)
    if as_json:
        click.echo(render.to_json(rows))
    elif not rows:
        click.echo("no runs")
    else:
        click.echo(
            render.table(
                ("ID", "LOCATION", "STATUS", "STARTED", "DURATION", "SELECTION"),
                [
                    (
                        r["id"][:8],
                        r["location"],
                        r["status"],
                        _seconds_iso(r["started_at"]),
                        duration(r),
                        _shorten(", ".join(r["selection"]), SELECTION_WIDTH),
                    )
                    for r in rows
                ],
            )
        )


@runs.command("show")
@workspace_option
@json_option
@click.argument("run_id", metavar="ID")
@click.pass_context
def show(ctx: click.Context, workspace_file: Path, as_json: bool, run_id: str) -> None:
    """Show one run and its events; ID may be the first characters (at least 4) of the id."""
    # `runs -w FILE --json show ID` means the same as `runs show ID -w FILE --json`.
    parent = ctx.parent.params if ctx.parent else {}
    if ctx.get_parameter_source("workspace_file") is ParameterSource.DEFAULT:
        workspace_file = parent.get("workspace_file", workspace_file)
    as_json = as_json or bool(parent.get("as_json"))
    with closing(open_store(workspace_file)) as store:
        run = store.get_run(run_id)
    click.echo(render.to_json(run) if as_json else run_text(run))


def run_text(run: dict[str, Any]) -> str:
    """Render one run (the `runs show --json` shape) for people."""
    ended = run["ended_at"]
    fields = [
        ("run", run["id"]),
        ("location", run["location"]),
        ("selection", ", ".join(run["selection"]) or "-"),
        ("status", run["status"]),
        ("trigger", run["trigger"]),
        ("started", run["started_at"]),
        ("ended", f"{ended} ({duration(run)})" if ended else "-"),
    ]
    if run["reason"]:
        fields.append(("reason", run["reason"]))
    out = [f"{name:<10} {value}" for name, value in fields]
    out.append("")
    events = run["events"]
    if not events:
        out.append("no events")
    type_width = max((len(e["type"]) for e in events), default=0)
    step_width = max((len(e["step"]) for e in events), default=0)
    for event in events:
        clock = event["time"][11:23]  # HH:MM:SS.mmm of the ISO time
        step = event["step"].ljust(step_width)
        message, *more = event["message"].splitlines() or [""]
        line = f"{clock}  {event['type'].ljust(type_width)}  {step}  {message}".rstrip()
        out.append(line)
        out.extend(_indented(more))
        out.extend(_indented([f"{key}: {value}" for key, value in event["metadata"].items()]))
        if event["type"] in FAILURE_EVENTS:
            for text in (event["error"], event["traceback"]):
                out.extend(_indented(text.rstrip("\n").splitlines()))
    return "\n".join(out)


def duration(run: dict[str, Any]) -> str:
    """How long a finished run took, for people: 0.4s, 3m05s, 2h10m; "-" while it runs."""
    if run["ended_at"] is None:
        return "-"
    seconds = max(0.0, _parse(run["ended_at"]) - _parse(run["started_at"]))
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def _parse(stamp: str) -> float:
    # fromisoformat before Python 3.11 does not take the "Z" suffix.
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def _seconds_iso(stamp: str) -> str:
    """2024-05-01T12:00:03.250Z -> 2024-05-01T12:00:03Z: a table needs no milliseconds."""
    return stamp[:19] + "Z"


def _shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def _indented(lines: list[str]) -> list[str]:
    return ["    " + line for line in lines]
