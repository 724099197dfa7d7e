"""`supervisor check`: the CI smoke test that every location builds, loads, and is isolated."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from supervisor import render
from supervisor.commands.common import (
    check_locations,
    json_option,
    read_workspace,
    workspace_option,
)


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
@click.argument("locations", nargs=-1)
def check(
    workspace_file: Path,
    junit_file: Path | None,
    as_json: bool,
    keep_running: bool,
    locations: tuple[str, ...],
) -> None:
    """Build and start every location (or LOCATIONS) and verify, inside each: the interpreter,
    the declared requirements, a consistent environment, isolation from the host and the
    other locations, and that the Definitions load. Exits 0 only when all pass."""
    from supervisor.checkrun import check_workspace
    from supervisor.checks import results_json, results_table, sort_results
    from supervisor.junit import write_junit
    from supervisor.workspace import check_paths

    workspace = read_workspace(workspace_file)
    check_locations(workspace, locations)
    check_paths(workspace, locations)
    results, timings = check_workspace(workspace, locations, keep_running)
    results = sort_results(results)
    if junit_file is not None:
        write_junit(results, junit_file, timings)
    click.echo(render.to_json(results_json(results)) if as_json else results_table(results))
    failed = [r for r in results if not r.ok]
    if not as_json:
        click.echo(f"\n{len(results) - len(failed)} passed, {len(failed)} failed")
    sys.exit(1 if failed else 0)
