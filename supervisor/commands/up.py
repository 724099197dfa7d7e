"""`supervisor up`: bring a workspace up and keep it up, in the foreground."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from supervisor.commands.common import read_workspace, workspace_option
from supervisor.errors import UsageError
from supervisor.workspace import check_paths, workspace_from_targets


@click.command("up")
@workspace_option
@click.option(
    "-m", "--module-name", "modules", multiple=True, help="A module location (repeatable)."
)
@click.option("-f", "--python-file", "files", multiple=True, help="A file location (repeatable).")
@click.option("--package-name", "packages", multiple=True, help="A package location (repeatable).")
@click.option(
    "-a", "--attribute", help="The Definitions variable of the one -m/-f/--package-name target."
)
@click.option(
    "-d",
    "--working-directory",
    help="Where the -m/-f/--package-name code is imported from [default: the current folder].",
)
@click.option("--python", help="Python for the -m/-f locations (a version spec or a path).")
@click.option(
    "-r",
    "--requirement",
    "requirements",
    multiple=True,
    help="A requirement (six==1.16) or requirements file for the -m/-f locations (repeatable).",
)
@click.option(
    "--watch",
    is_flag=True,
    help="Reload when the workspace file or a location's Python files change.",
)
@click.option(
    "--dagster-port",
    type=click.IntRange(0, 65535),
    help="The Dagster webserver's port (0: a free one) [default: dagster.webserver.port, 3000].",
)
@click.option(
    "--ui-port",
    type=click.IntRange(0, 65535),
    help="The dashboard's port (0: a free one) [default: ui.port, 3030, or a free one when"
    " 3030 is taken].",
)
@click.option("--no-ui", is_flag=True, help="Do not serve the dashboard.")
def up(
    workspace_file: Path,
    modules: tuple[str, ...],
    files: tuple[str, ...],
    packages: tuple[str, ...],
    attribute: str | None,
    working_directory: str | None,
    python: str | None,
    requirements: tuple[str, ...],
    watch: bool,
    dagster_port: int | None,
    ui_port: int | None,
    no_ui: bool,
) -> None:
    """Build every location's environment, start its code server, and supervise them all.

    Ctrl-C or SIGTERM stops everything (exit 130 for Ctrl-C, 0 for SIGTERM or `down`).
    -m/-f/--package-name with -a and -d name locations as `dagster dev` does (`repo.py`,
    `pkg.defs:defs`), instead of a workspace file.

    With Dagster locations, Dagster's webserver (http://127.0.0.1:3000) and daemon run too,
    supervised like locations, over one instance (.supervisor/dagster/, or DAGSTER_HOME);
    the workspace's `dagster:` block sets them, or turns them off.

    The dashboard of the supervision is served at http://127.0.0.1:3030 (`supervisor ui`
    prints its address); the workspace's `ui:` block sets it, or turns it off.
    """
    # Imported when the command runs: grpc.aio and the supervision loop load only for `up`.
    from supervisor.supervision.supervisor import run_supervisor

    if modules or files or packages:
        workspace = workspace_from_targets(
            modules,
            files,
            python,
            Path.cwd(),
            requirements,
            packages=packages,
            attribute=attribute,
            working_directory=working_directory,
        )
    elif python or requirements or attribute or working_directory:
        raise UsageError(
            "--python, -r, -a and -d go with -m/-f/--package-name; a workspace file sets"
            " them per location"
        )
    else:
        workspace = read_workspace(workspace_file)
    check_paths(workspace)
    sys.exit(
        run_supervisor(
            workspace, watch=watch, dagster_port=dagster_port, ui=not no_ui, ui_port=ui_port
        )
    )
