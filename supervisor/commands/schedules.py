"""`supervisor schedules`: list the schedules, start and stop them, show their ticks.

The list and start/stop go through the running `up` (only its code servers know the
definitions; only it writes the run store, where the choice is kept across restarts and
reloads). `schedules ticks` reads the run store directly, like `runs`, so it works with or
without a running supervisor.
"""

from __future__ import annotations

from contextlib import closing
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from supervisor import render
from supervisor._proto_host import control_pb2 as pb
from supervisor.commands.common import json_option, workspace_option
from supervisor.control.client import ControlClient
from supervisor.errors import SupervisorError, UsageError
from supervisor.runs.store import RunStore, runs_db_path
from supervisor.schedules import records
from supervisor.schedules.model import split_name
from supervisor.supervision import statefile


def schedule_to_dict(info: pb.ScheduleInfo) -> dict[str, Any]:
    """The JSON shape of one schedule in `schedules --json`."""
    return {
        "location": info.location,
        "name": info.name,
        "cron": info.cron,
        "timezone": info.timezone,
        "status": info.status,
        "next_tick": render.iso_utc(info.next_tick) if info.HasField("next_tick") else None,
        "last_tick": render.iso_utc(info.last_tick) if info.HasField("last_tick") else None,
        "last_tick_status": info.last_tick_status or None,
        "last_run": info.last_run_id or None,
        "targets": list(info.targets),
        "description": info.description,
        "problem": info.problem or None,
    }


@click.group("schedules", invoke_without_command=True)
@workspace_option
@json_option
@click.pass_context
def schedules(ctx: click.Context, workspace_file: Path, as_json: bool) -> None:
    """List the schedules of the serving locations: status, next tick, last tick and its run.

    `schedules start|stop LOCATION.NAME` starts or stops one; `schedules ticks LOCATION.NAME`
    shows its history."""
    if ctx.invoked_subcommand is not None:
        return
    with ControlClient(workspace_file) as client:
        reply = client.call("ListSchedules", pb.ListSchedulesRequest())
    rows = [schedule_to_dict(s) for s in reply.schedules]
    if as_json:
        click.echo(render.to_json(rows))
        return
    if not rows:
        click.echo("no schedules")
        return
    click.echo(
        render.table(
            ("SCHEDULE", "CRON", "TIMEZONE", "STATUS", "NEXT TICK", "LAST TICK", "RUN"),
            [
                (
                    f"{r['location']}.{r['name']}",
                    r["cron"],
                    r["timezone"],
                    r["status"] + (f" ({r['problem']})" if r["problem"] else ""),
                    r["next_tick"] or "-",
                    f"{r['last_tick']} {r['last_tick_status']}" if r["last_tick"] else "-",
                    (r["last_run"] or "-")[:8],
                )
                for r in rows
            ],
        )
    )


def _inherit(ctx: click.Context, workspace_file: Path, as_json: bool = False) -> tuple[Path, bool]:
    """`schedules -w FILE --json ticks X` means the same as `schedules ticks X -w FILE --json`."""
    parent = ctx.parent.params if ctx.parent else {}
    if ctx.get_parameter_source("workspace_file") is ParameterSource.DEFAULT:
        workspace_file = parent.get("workspace_file", workspace_file)
    return workspace_file, as_json or bool(parent.get("as_json"))


def _set_status(ctx: click.Context, workspace_file: Path, schedule: str, running: bool) -> None:
    workspace_file, _ = _inherit(ctx, workspace_file)
    try:
        split_name(schedule)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    request = pb.SetScheduleStatusRequest(schedule=schedule, running=running)
    with ControlClient(workspace_file) as client:
        reply = client.call("SetScheduleStatus", request)
    for result in reply.results:
        click.echo(f"{result.location}: {result.message}")


@schedules.command("start")
@workspace_option
@click.argument("schedule", metavar="LOCATION.NAME")
@click.pass_context
def start(ctx: click.Context, workspace_file: Path, schedule: str) -> None:
    """Start a schedule: it ticks from now on, also after `up` restarts."""
    _set_status(ctx, workspace_file, schedule, True)


@schedules.command("stop")
@workspace_option
@click.argument("schedule", metavar="LOCATION.NAME")
@click.pass_context
def stop(ctx: click.Context, workspace_file: Path, schedule: str) -> None:
    """Stop a schedule: it does not tick again until started, also after `up` restarts."""
    _set_status(ctx, workspace_file, schedule, False)


@schedules.command("ticks")
@workspace_option
@json_option
@click.option("--limit", type=click.IntRange(min=1), help="At most this many ticks (the newest).")
@click.argument("schedule", metavar="LOCATION.NAME")
@click.pass_context
def ticks(
    ctx: click.Context, workspace_file: Path, as_json: bool, limit: int | None, schedule: str
) -> None:
    """Show a schedule's ticks, newest first: time, status, and its run or why none started."""
    workspace_file, as_json = _inherit(ctx, workspace_file, as_json)
    try:
        location, name = split_name(schedule)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    path = runs_db_path(statefile.state_dir_of(workspace_file))
    if not path.exists():
        raise UsageError(
            f"unknown schedule {schedule!r}: no schedule has been seen yet for {workspace_file}"
            f" (no {path}); start `supervisor up -w {workspace_file}`"
        )
    try:
        store = RunStore(path, readonly=True)
    except SupervisorError as exc:
        raise UsageError(f"unknown schedule {schedule!r}: {exc}") from None
    with closing(store):
        known = records.known(store)
        found = records.history(store, location, name, limit)
    if schedule not in known and not found:
        raise UsageError(f"unknown schedule {schedule!r}; known: {', '.join(known) or 'none'}")
    rows = [tick.to_dict() for tick in found]
    if as_json:
        click.echo(render.to_json(rows))
    elif not rows:
        click.echo(f"no ticks of {schedule} yet")
    else:
        click.echo(
            render.table(
                ("TIME", "STATUS", "RUN", "REASON"),
                [(r["time"], r["status"], r["run_id"] or "-", r["reason"] or "") for r in rows],
            )
        )
