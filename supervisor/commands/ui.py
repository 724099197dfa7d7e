"""`supervisor ui`: where the running supervisor serves its dashboard."""

from __future__ import annotations

from pathlib import Path

import click

from supervisor import render
from supervisor.commands.common import json_option, workspace_option
from supervisor.errors import SupervisorError


@click.command("ui")
@workspace_option
@json_option
def ui(workspace_file: Path, as_json: bool) -> None:
    """Print the address of the running supervisor's dashboard.

    Read from the state `up` keeps beside the workspace file, so it needs no connection;
    --json prints {"url": ..., "token_required": ...}. Beyond loopback the address needs the
    token `up` printed (or the one in ui.token_file).
    """
    # The state file only (and psutil): this stays as light as `status`.
    from supervisor.control.snapshot import running_state

    state = running_state(workspace_file)
    pid = state["supervisor_pid"]
    entry = state.get("ui")
    if not isinstance(entry, dict) or not entry.get("url"):
        raise SupervisorError(
            f"the supervisor of {workspace_file} (pid {pid}) serves no dashboard: it was"
            " started with --no-ui or `ui: false`, or could not listen (its output says why)"
        )
    if as_json:
        click.echo(
            render.to_json(
                {"url": entry["url"], "token_required": bool(entry.get("token_required"))}
            )
        )
    else:
        click.echo(entry["url"])
