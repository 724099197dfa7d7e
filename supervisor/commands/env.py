"""`supervisor env build|list|path|gc`: the locations' environments."""

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
    say,
    workspace_option,
)
from supervisor.envs import build_all, collect_garbage, list_envs, location_env_path, plan
from supervisor.errors import SupervisorError, WorkspaceError
from supervisor.workspace import envs_dir_problem


@click.group()
def env() -> None:
    """Build, list, locate and clean up the locations' environments."""


@env.command("build")
@workspace_option
@click.argument("locations", nargs=-1, shell_complete=complete_locations)
def env_build(workspace_file: Path, locations: tuple[str, ...]) -> None:
    """Build the environments of LOCATIONS (default: all); equal specs share one."""
    workspace = read_workspace(workspace_file)
    check_locations(workspace, locations)
    problem = envs_dir_problem(workspace)
    if problem:
        raise WorkspaceError(problem, str(workspace.path))
    requests = plan(workspace, locations)
    if not requests:
        say("no location here needs an environment")
        return
    live = say if sys.stderr.isatty() else None  # a build's progress, for a person only
    report = build_all(workspace.envs_dir, requests.values(), say, live)
    for name, request in requests.items():
        if request.key in report.built:
            built = report.built[request.key]
            state = "cached" if built.hit else f"built in {built.seconds:.1f}s"
            click.echo(f"{name}: {built.path} ({state})")
    if report.failed:
        raise SupervisorError(
            f"{len(report.failed)} of {len(report.failed) + len(report.built)} environments"
            " failed to build (see above)"
        )


@env.command("list")
@workspace_option
@json_option
def env_list(workspace_file: Path, as_json: bool) -> None:
    """List the built environments and the locations that use them."""
    rows = list_envs(read_workspace(workspace_file))
    if as_json:
        click.echo(render.to_json([{k: v for k, v in r.items() if k != "installed"} for r in rows]))
        return
    click.echo(
        render.table(
            ("NAME", "PYTHON", "BUILDER", "LOCATIONS", "SIZE", "LAST USED"),
            [
                (
                    r["name"],
                    r["python"],
                    r["builder"],
                    ", ".join(r["locations"]) or "(unused)",
                    render.size(r["size_bytes"]),
                    r["last_used"],
                )
                for r in rows
            ],
        )
    )


@env.command("path")
@workspace_option
@click.argument("location", shell_complete=complete_locations)
def env_path(workspace_file: Path, location: str) -> None:
    """Print the environment folder of LOCATION."""
    workspace = read_workspace(workspace_file)
    check_locations(workspace, [location])
    click.echo(location_env_path(workspace, location))


@env.command("gc")
@workspace_option
@click.option("--dry-run", is_flag=True, help="Only say what would be removed.")
def env_gc(workspace_file: Path, dry_run: bool) -> None:
    """Remove environments no entry of the workspace uses, and leftovers of dead builds."""
    removed = collect_garbage(read_workspace(workspace_file), dry_run)
    verb = "would remove" if dry_run else "removed"
    for path, size in removed:
        click.echo(f"{verb} {path} ({render.size(size)})")
    total = sum(size for _, size in removed)
    folders = "folder" if len(removed) == 1 else "folders"
    click.echo(f"{verb} {len(removed)} {folders}, {render.size(total)}")
