"""Options and helpers that several commands share."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from supervisor.errors import UsageError

# For annotations only: at run time the workspace package (yaml, packaging) is imported by
# the commands that read a workspace, when they run, so that `--help` and the others stay light.
if TYPE_CHECKING:
    from supervisor.workspace import WorkspaceSpec


F = TypeVar("F", bound=Callable[..., Any])


WORKSPACE_FILES = "supervisor.workspace_files"  # ctx.meta: every -w file, in order


def _first_file(ctx: click.Context, param: click.Parameter, value: tuple[Path, ...]) -> Path:
    """The command gets the first -w file (its folder holds the state); read_workspace reads
    them all."""
    files = value or (Path("workspace.yaml"),)
    ctx.meta[WORKSPACE_FILES] = files
    return files[0]


def workspace_option(func: F) -> F:
    """The -w/--workspace option every workspace command takes (repeatable, as Dagster's)."""
    return click.option(
        "-w",
        "--workspace",
        "workspace_file",
        multiple=True,
        callback=_first_file,
        type=click.Path(dir_okay=False, path_type=Path),
        help="The workspace file [default: workspace.yaml]. Repeat it to merge several in"
        " order, as Dagster does: a later entry replaces an earlier one of the same name; the"
        " state lives beside the first.",
    )(func)


def workspace_files(first: Path) -> tuple[Path, ...]:
    """Every -w file of the running command when FIRST is the first of them; else FIRST."""
    ctx = click.get_current_context(silent=True)
    files: tuple[Path, ...] = ctx.meta.get(WORKSPACE_FILES, ()) if ctx is not None else ()
    return files if files and files[0] == first else (first,)


def json_option(func: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON.")(func)


def read_workspace(path: Path) -> WorkspaceSpec:
    """The workspace of PATH, merged with the other -w files given; its warnings on stderr."""
    from supervisor.workspace import load_workspace  # yaml and packaging: only when needed

    workspace = load_workspace(workspace_files(path))
    for warning in workspace.warnings:
        say(f"warning: {warning}")
    return workspace


def say(message: str) -> None:
    """Progress for people, on stderr so that stdout stays parseable."""
    click.echo(message, err=True)


def check_locations(workspace: WorkspaceSpec, names: tuple[str, ...] | list[str]) -> None:
    """Refuse location names the workspace does not have (a usage error, exit 2)."""
    known = [spec.name for spec in workspace.locations]
    unknown = [name for name in names if name not in known]
    if unknown:
        raise UsageError(
            f"unknown location {', '.join(repr(n) for n in unknown)} in {workspace.path};"
            f" known: {', '.join(known) or 'none'}"
        )


# -- shell completion (click's: `eval "$(_SUPERVISOR_COMPLETE=bash_source supervisor)"`) ------


def _workspace_of(ctx: click.Context) -> Path:
    return Path(ctx.params.get("workspace_file") or "workspace.yaml")


def complete_locations(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    """The location names of the workspace file given with -w (or ./workspace.yaml)."""
    try:
        workspace = read_workspace(_workspace_of(ctx))
    except Exception:  # a completion must never break the shell; it offers nothing instead
        return []
    return [spec.name for spec in workspace.locations if spec.name.startswith(incomplete)]


def complete_assets(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    """Asset names (and LOCATION.ASSET forms) from the running supervisor, if one answers."""
    # Imported only when completing: every other command line stays light.
    from supervisor._proto_host import control_pb2 as pb
    from supervisor.control.client import ControlClient

    try:
        with ControlClient(_workspace_of(ctx), timeout=COMPLETION_TIMEOUT) as client:
            reply = client.call("ListDefinitions", pb.LocationsRequest(all=True))
    except Exception:  # no supervisor, or a slow one: offer nothing rather than fail
        return []
    names: list[str] = []
    for location in reply.locations:
        for asset in location.assets:
            names += [asset.key, f"{location.location_name}.{asset.key}"]
    return sorted(n for n in set(names) if n.startswith(incomplete))


COMPLETION_TIMEOUT = 2.0
