"""`supervisor dagster ...`: what a user needs to point Dagster's own tools at the
supervised locations."""

from __future__ import annotations

from pathlib import Path

import click

from supervisor import render
from supervisor.commands.common import json_option, read_workspace, workspace_option
from supervisor.errors import SupervisorError


@click.group("dagster")
def dagster() -> None:
    """Dagster's webserver and daemon over the workspace's Dagster locations."""


@dagster.command("workspace")
@workspace_option
@json_option
def workspace(workspace_file: Path, as_json: bool) -> None:
    """Print the path of the workspace file `up` writes for Dagster (a grpc_server entry per
    Dagster location, at its stable address); --json adds the webserver's URL and
    DAGSTER_HOME. `dagster-webserver -w PATH` serves the same locations."""
    from supervisor.dagsterui.instance import dagster_home
    from supervisor.dagsterui.instance import workspace_file as dagster_file

    spec = read_workspace(workspace_file)
    path = dagster_file(spec)
    if not path.is_file():
        raise SupervisorError(
            f"{path} does not exist yet: `supervisor up -w {workspace_file}` writes it when the"
            " workspace has Dagster locations"
        )
    if not as_json:
        click.echo(str(path))
        return
    click.echo(
        render.to_json(
            {
                "path": str(path),
                "webserver_url": _webserver_url(workspace_file),
                "dagster_home": str(dagster_home(spec)),
            }
        )
    )


def _webserver_url(workspace_file: Path) -> str | None:
    """The running webserver's URL; None when no `up` runs one."""
    from supervisor._proto_host import control_pb2 as pb
    from supervisor.control.client import ControlClient
    from supervisor.dagsterui import WEBSERVER

    try:
        with ControlClient(workspace_file, timeout=10.0) as client:
            reply = client.call("Status", pb.StatusRequest(locations=[WEBSERVER]))
    except SupervisorError:
        return None
    return next((s.url for s in reply.locations if s.url), None)
