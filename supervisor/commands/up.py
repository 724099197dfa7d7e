"""`supervisor up`: bring a workspace up and keep it up, in the foreground."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from supervisor.commands.common import workspace_option
from supervisor.errors import UsageError
from supervisor.workspace import check_paths, load_workspace, workspace_from_targets


@click.command("up")
@workspace_option
@click.option(
    "-m", "--module-name", "modules", multiple=True, help="A module location (repeatable)."
)
@click.option("-f", "--python-file", "files", multiple=True, help="A file location (repeatable).")
@click.option("--python", help="Python for the -m/-f locations (a version spec or a path).")
def up(
    workspace_file: Path, modules: tuple[str, ...], files: tuple[str, ...], python: str | None
) -> None:
    """Build every location's environment, start its code server, and supervise them all.

    Ctrl-C or SIGTERM stops everything (exit 130 for Ctrl-C, 0 for SIGTERM or `down`).
    """
    from supervisor.daemon import run_supervisor

    if modules or files:
        workspace = workspace_from_targets(modules, files, python, Path.cwd())
    elif python:
        raise UsageError("--python goes with -m/-f; a workspace file sets python per location")
    else:
        workspace = load_workspace(workspace_file)
    check_paths(workspace)
    sys.exit(run_supervisor(workspace))
