"""The command line: parse, call, render. The only module that exits."""

from __future__ import annotations

from typing import Any

import click

from supervisor import __version__
from supervisor.commands.api import api
from supervisor.commands.check import check
from supervisor.commands.control import down, logs, ls, reload, restart, start, status, stop
from supervisor.commands.env import env
from supervisor.commands.materialize import materialize
from supervisor.commands.pythons import pythons
from supervisor.commands.runs import runs
from supervisor.commands.up import up
from supervisor.errors import SupervisorError

EXIT_INTERRUPTED = 130


class _Group(click.Group):
    """Turns SupervisorError into its message on stderr and its exit code, Ctrl-C into 130."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except SupervisorError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(EXIT_INTERRUPTED)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="supervisor")
def cli() -> None:
    """Build an isolated environment per code location, serve each, keep them up."""


for command in (
    up,
    down,
    status,
    ls,
    start,
    stop,
    restart,
    reload,
    logs,
    materialize,
    check,
    runs,
    env,
    pythons,
    api,
):
    cli.add_command(command)


def main() -> None:
    """Entry point of the `supervisor` console script."""
    cli(prog_name="supervisor")
