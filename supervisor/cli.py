"""The command line: parse, call, render. The only module that exits."""

from __future__ import annotations

import importlib
from typing import Any

import click

from supervisor import __version__
from supervisor.errors import SupervisorError

EXIT_INTERRUPTED = 130

# Each command's module is imported only when that command runs: a CLI call should not
# pay for grpc.aio, yaml and the rest of what other commands need.
COMMANDS = {
    "up": "supervisor.commands.up:up",
    "down": "supervisor.commands.control:down",
    "status": "supervisor.commands.control:status",
    "ls": "supervisor.commands.control:ls",
    "start": "supervisor.commands.control:start",
    "stop": "supervisor.commands.control:stop",
    "restart": "supervisor.commands.control:restart",
    "reload": "supervisor.commands.control:reload",
    "logs": "supervisor.commands.control:logs",
    "materialize": "supervisor.commands.materialize:materialize",
    "runs": "supervisor.commands.runs:runs",
    "schedules": "supervisor.commands.schedules:schedules",
    "check": "supervisor.commands.check:check",
    "env": "supervisor.commands.env:env",
    "pythons": "supervisor.commands.pythons:pythons",
    "api": "supervisor.commands.api:api",
}


class _Group(click.Group):
    """Loads commands on demand; turns SupervisorError into its message on stderr and its
    exit code, and Ctrl-C into 130."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, _, attribute = target.partition(":")
        command = getattr(importlib.import_module(module), attribute)
        assert isinstance(command, click.Command)
        return command

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


def main() -> None:
    """Entry point of the `supervisor` console script."""
    cli(prog_name="supervisor")
