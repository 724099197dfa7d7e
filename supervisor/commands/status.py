"""`supervisor status`: each location's state, read from the state file `up` keeps at every
change (so it imports neither grpc nor protobuf, nor anything of the code server side)."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from supervisor import render
from supervisor.commands.common import complete_locations, json_option, workspace_option
from supervisor.control.snapshot import chosen, read_status


@click.command("status")
@workspace_option
@json_option
@click.argument("locations", nargs=-1, shell_complete=complete_locations)
def status(workspace_file: Path, as_json: bool, locations: tuple[str, ...]) -> None:
    """Show each location's state, pid, restarts, Python and last error."""
    rows = chosen(read_status(workspace_file), locations)
    if as_json:
        click.echo(render.to_json(rows))
        return
    click.echo(
        render.table(
            ("NAME", "STATE", "PID", "RESTARTS", "PYTHON", "ENV", "LAST ERROR"),
            [
                (
                    r["name"],
                    _state_cell(r),
                    r["pid"] or "-",
                    r["restarts"],
                    r["python"] or "-",
                    r["env"] or "-",
                    (r["last_error"] or "").splitlines()[0][:80] if r["last_error"] else "",
                )
                for r in rows
            ],
        )
    )
    for row in rows:
        if row["url"]:
            click.echo(f"{row['name']}: {row['url']}")
        if row["warning"]:
            click.echo(f"warning: {row['name']}: {row['warning']}")


def _state_cell(row: dict[str, Any]) -> str:
    """The state, and in BACKOFF how long until the next start."""
    if not row["next_attempt"]:
        return str(row["state"])
    # fromisoformat before Python 3.11 does not take the "Z" suffix.
    at = datetime.fromisoformat(row["next_attempt"].replace("Z", "+00:00")).timestamp()
    return f"{row['state']} (next start in {max(0.0, at - time.time()):.1f}s)"
