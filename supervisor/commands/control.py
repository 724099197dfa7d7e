"""Commands that drive a running `supervisor up`: status, start/stop/restart, reload, ls, logs."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from supervisor import render
from supervisor._proto_host import control_pb2 as pb
from supervisor.commands.api import tls_client_options, tls_settings
from supervisor.commands.common import (
    complete_locations,
    json_option,
    read_workspace,
    workspace_option,
)
from supervisor.control.client import ControlClient
from supervisor.control.codeserver import CodeServerClient, definitions_to_dict
from supervisor.dagsterui import SYSTEM_NAMES
from supervisor.errors import SupervisorError, UsageError
from supervisor.supervision import statefile
from supervisor.supervision.logs import follow, log_file, tail


def _action(name: str, help_text: str) -> click.Command:
    @click.command(name, help=help_text)
    @workspace_option
    @click.option("--all", "all_", is_flag=True, help="Every location.")
    @click.argument("locations", nargs=-1, shell_complete=complete_locations)
    def command(workspace_file: Path, all_: bool, locations: tuple[str, ...]) -> None:
        if not locations and not all_:
            raise UsageError(f"name the locations to {name}, or give --all")
        if locations and all_:
            raise UsageError(f"give either location names or --all to {name}, not both")
        with ControlClient(workspace_file, timeout=600) as client:
            reply = client.call(
                name.capitalize(), pb.LocationsRequest(locations=list(locations), all=all_)
            )
        failed = [r for r in reply.results if not r.ok]
        for result in reply.results:
            click.echo(f"{result.location}: {result.message}")
        if failed:
            raise SupervisorError(f"{len(failed)} of {len(reply.results)} did not {name}")

    return command


start = _action("start", "Start stopped (or FATAL) locations.")
stop = _action("stop", "Stop locations; they stay stopped until started.")
restart = _action("restart", "Restart locations.")


@click.command("reload")
@workspace_option
def reload(workspace_file: Path) -> None:
    """Re-read the workspace: start new locations, stop removed ones, restart changed ones."""
    with ControlClient(workspace_file, timeout=1800) as client:
        reply = client.call("Reload", pb.ReloadRequest())
    for result in reply.results:
        click.echo(f"{result.location}: {result.message}")
    failed = [r.location for r in reply.results if not r.ok]
    if failed:
        raise SupervisorError(f"the new version of {', '.join(failed)} failed; see above")


@click.command("down")
@workspace_option
@click.option("--timeout", default=120.0, show_default=True, help="Seconds to wait.")
def down(workspace_file: Path, timeout: float) -> None:
    """Stop the running supervisor and every location it runs."""
    state_dir = statefile.state_dir_of(workspace_file)
    owner = statefile.read_owner(state_dir) or {}
    if not owner.get("supervisor_pid") or not statefile.control_socket(workspace_file).exists():
        click.echo(f"no supervisor is running for {workspace_file}")
        return
    with ControlClient(workspace_file) as client:
        client.call("Shutdown", pb.ShutdownRequest(reason="supervisor down"))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        owner = statefile.read_owner(state_dir) or {}
        if not owner.get("supervisor_pid"):
            click.echo("stopped")
            return
        time.sleep(0.05)
    raise SupervisorError(f"the supervisor did not stop within {timeout:g}s")


@click.command("ls")
@workspace_option
@click.option("--address", help="Ask one code server directly: HOST:PORT or a socket path.")
@tls_client_options
@json_option
@click.option("--timeout", default=10.0, show_default=True, help="Seconds to wait for an answer.")
@click.argument("locations", nargs=-1, shell_complete=complete_locations)
def ls(
    workspace_file: Path,
    address: str | None,
    tls: bool,
    tls_ca: str | None,
    as_json: bool,
    timeout: float,
    locations: tuple[str, ...],
) -> None:
    """List the definitions of every location (or LOCATIONS), through the supervisor."""
    tls_setting = tls_settings(address, tls, tls_ca)
    if address:
        with CodeServerClient(address, timeout=timeout, tls=tls_setting) as direct:
            entries = [definitions_to_dict(direct.list_definitions())]
    else:
        with ControlClient(workspace_file, timeout=timeout + 5) as client:
            reply = client.call("ListDefinitions", pb.LocationsRequest(locations=list(locations)))
        entries = [definitions_to_dict(d) for d in reply.locations]
    if as_json:
        click.echo(render.to_json(entries))
    else:
        click.echo("\n\n".join(render.definitions_text(e) for e in entries))


@click.command("logs")
@workspace_option
@click.option("-f", "--follow", "follow_", is_flag=True, help="Keep printing new lines.")
@click.option(
    "-n",
    "lines",
    default=50,
    show_default=True,
    type=click.IntRange(min=0),
    help="How many last lines.",
)
@click.argument("location", shell_complete=complete_locations)
def logs(workspace_file: Path, follow_: bool, lines: int, location: str) -> None:
    """Print a location's output (its stdout and stderr, and its state changes)."""
    workspace = read_workspace(workspace_file)
    try:
        if location not in SYSTEM_NAMES:
            workspace.location(location)
    except KeyError:
        known = ", ".join(spec.name for spec in workspace.locations)
        raise UsageError(
            f"unknown location {location!r}; known: {known} (and {', '.join(SYSTEM_NAMES)}"
            " when Dagster's UI runs)"
        ) from None
    path = log_file(workspace.state_dir, location)
    for line in tail(path, lines):
        click.echo(line)
    if follow_:
        for line in follow(path):
            click.echo(line)
            sys.stdout.flush()
