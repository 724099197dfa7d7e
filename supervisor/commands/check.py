"""`supervisor check`: the CI smoke test that every location builds, loads, and is isolated."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from supervisor import render
from supervisor.commands.common import (
    check_locations,
    complete_locations,
    json_option,
    read_workspace,
    workspace_option,
)

EXIT_INTERRUPTED = 130


@click.command("check")
@workspace_option
@click.option(
    "--junit",
    "junit_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write a JUnit XML report here.",
)
@json_option
@click.option("--keep-running", is_flag=True, help="Leave the code servers up until Ctrl-C.")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    help="Seconds each location may take to start (default: its startup_timeout + 5).",
)
@click.option(
    "--settle",
    type=click.FloatRange(min=0),
    default=3.0,
    show_default=True,
    help="Seconds each location must keep serving after its start to pass `stable`.",
)
@click.argument("locations", nargs=-1, shell_complete=complete_locations)
def check(
    workspace_file: Path,
    junit_file: Path | None,
    as_json: bool,
    keep_running: bool,
    timeout: float | None,
    settle: float,
    locations: tuple[str, ...],
) -> None:
    """Build and start every location (or LOCATIONS) and verify, inside each: the interpreter,
    the declared requirements, a consistent environment, isolation from the host and the
    other locations, that the Definitions load, and that it keeps serving (`stable`).
    Nothing is restarted, each start has a deadline, and Ctrl-C still writes the report.
    Exits 0 only when all pass (1 on a failure, 130 when interrupted)."""
    # Imported when the command runs, as every command's heavy parts are (see cli.COMMANDS).
    from supervisor.check.junit import write_junit
    from supervisor.check.run import CheckOptions, check_workspace
    from supervisor.check.verdicts import results_json, results_table, sort_results
    from supervisor.workspace import check_paths

    workspace = read_workspace(workspace_file)
    check_locations(workspace, locations)
    check_paths(workspace, locations)
    options = CheckOptions(timeout=timeout, settle=settle, keep_running=keep_running)
    report = check_workspace(workspace, locations, options)
    results = sort_results(report.results)
    if junit_file is not None:
        write_junit(results, junit_file, report.seconds)
    click.echo(render.to_json(results_json(results)) if as_json else results_table(results))
    failed = [r for r in results if not r.ok]
    if not as_json:
        click.echo(
            f"\n{len(results) - len(failed)} passed, {len(failed)} failed"
            f" in {report.seconds:.1f}s" + (" (interrupted)" if report.interrupted else "")
        )
    sys.exit(EXIT_INTERRUPTED if report.interrupted else 1 if failed else 0)
