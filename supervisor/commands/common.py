"""Options and helpers that several commands share."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from supervisor.errors import UsageError

if TYPE_CHECKING:
    from supervisor.workspace import WorkspaceSpec


F = TypeVar("F", bound=Callable[..., Any])


def workspace_option(func: F) -> F:
    """The -w/--workspace option every workspace command takes."""
    return click.option(
        "-w",
        "--workspace",
        "workspace_file",
        default="workspace.yaml",
        show_default=True,
        type=click.Path(dir_okay=False, path_type=Path),
        help="The workspace file.",
    )(func)


def json_option(func: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON.")(func)


def read_workspace(path: Path) -> WorkspaceSpec:
    from supervisor.workspace import load_workspace  # yaml and packaging: only when needed

    return load_workspace(path)


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
