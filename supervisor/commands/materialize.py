"""`supervisor materialize`: run assets in their location's code server, showing each event."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from supervisor._proto import codeserver_pb2 as cs
from supervisor._proto_host import control_pb2 as pb
from supervisor.commands.common import complete_assets, complete_locations, workspace_option
from supervisor.control.client import ControlClient
from supervisor.errors import SupervisorError

EXIT_INTERRUPTED = 130


def event_line(event: cs.RunEvent) -> str:
    """One event for people: time, type, step, message, then any error and traceback."""
    stamp = time.strftime("%H:%M:%S", time.localtime(event.time))
    millis = int((event.time % 1) * 1000)
    kind = cs.EventType.Name(event.type)
    text = f"{stamp}.{millis:03d}  {kind:<21}  {event.step or '-':<16}  {event.message}"
    if event.type == cs.ASSET_MATERIALIZATION:
        meta = {m.key: m.text for m in event.metadata}
        shown = {k: v for k, v in meta.items() if k in ("rows", "columns", "length")}
        if shown:
            text += " (" + ", ".join(f"{k} {v}" for k, v in shown.items()) + ")"
    if event.error:
        text += "\n    error: " + event.error
    if event.traceback:
        text += "\n" + "\n".join("    " + line for line in event.traceback.rstrip().splitlines())
    return text


@click.command("materialize")
@workspace_option
@click.option(
    "-l",
    "--location",
    default="",
    help="The location (when a name is in several).",
    shell_complete=complete_locations,
)
@click.option("--all", "all_", is_flag=True, help="Every asset of the location.")
@click.option(
    "--upstream", is_flag=True, help="Run all upstream assets too, not only missing ones."
)
@click.argument("assets", nargs=-1, shell_complete=complete_assets)
def materialize(
    workspace_file: Path, location: str, all_: bool, upstream: bool, assets: tuple[str, ...]
) -> None:
    """Materialize ASSETS (and the upstream assets they need) inside their code server.

    Exits 0 when the run succeeds and 1 when it fails; Ctrl-C cancels the run.
    """
    request = pb.MaterializeRequest(
        assets=list(assets), location=location, all=all_, upstream=upstream
    )
    final = None
    run_id = ""
    with ControlClient(workspace_file) as client:
        call = client.stream("Materialize", request)
        try:
            for event in client.events(call):
                run_id = run_id or event.run_id
                click.echo(event_line(event))
                if event.type in (cs.RUN_SUCCESS, cs.RUN_FAILURE, cs.RUN_CANCELED):
                    final = event
        except KeyboardInterrupt:
            call.cancel()
            click.echo("interrupted: the run is canceled", err=True)
            sys.exit(EXIT_INTERRUPTED)
        except SupervisorError as exc:
            if not run_id:
                raise
            # The supervisor went away mid-run: its server ends the run with it, and the
            # next `up` records it as failed.
            raise SupervisorError(
                f"{exc}; run {run_id} did not finish: it is recorded as failed"
                f" (`supervisor runs show {run_id}` once the supervisor runs again)"
            ) from None
    if final is None:
        raise SupervisorError("the run ended without a final event")
    status = cs.EventType.Name(final.type).removeprefix("RUN_")
    click.echo(f"run {final.run_id}: {status}")
    if final.type != cs.RUN_SUCCESS:
        sys.exit(1)
