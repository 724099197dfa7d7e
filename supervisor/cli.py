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
    "status": "supervisor.commands.status:status",
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
    "dagster": "supervisor.commands.dagster:dagster",
    "ui": "supervisor.commands.ui:ui",
    "export": "supervisor.commands.export:export",
    "api": "supervisor.commands.api:api",
}
# What `supervisor --help` lists beside each name, without importing every command's module
# (tests/test_cli_misc.py checks that each is the command's own first line).
SHORT_HELP = {
    "up": "Build every location's environment, start its code server, and supervise them all.",
    "down": "Stop the running supervisor and every location it runs.",
    "status": "Show each location's state, pid, restarts, Python and last error.",
    "ls": "List the definitions of every location (or LOCATIONS), through the supervisor.",
    "start": "Start stopped (or FATAL) locations.",
    "stop": "Stop locations; they stay stopped until started.",
    "restart": "Restart locations.",
    "reload": (
        "Re-read the workspace: start new locations, stop removed ones, restart changed ones."
    ),
    "logs": "Print a location's output (its stdout and stderr, and its state changes).",
    "materialize": (
        "Materialize ASSETS (and the upstream assets they need) inside their code server."
    ),
    "runs": "List the runs of a workspace, newest first; `runs show ID` shows one with its events.",
    "schedules": (
        "List the schedules of the serving locations: status, next tick, last tick and its run."
    ),
    "check": (
        "Build and start every location (or LOCATIONS) and verify, inside each: the"
        " interpreter, the declared requirements, a consistent environment, isolation from"
        " the host and the other locations, that the Definitions load, and that it keeps"
        " serving (`stable`)."
    ),
    "env": "Build, list, locate and clean up the locations' environments.",
    "pythons": (
        "List the Python interpreters found (PATH, pyenv, asdf, uv, /usr/bin, /usr/local/bin)."
    ),
    "dagster": "Dagster's webserver and daemon over the workspace's Dagster locations.",
    "ui": "Print the address of the running supervisor's dashboard.",
    "export": "Export locations as Docker images and Kubernetes manifests, for a cluster.",
    "api": "Run a code server by itself, for remote hosts.",
}


class _Group(click.Group):
    """Loads commands on demand; turns SupervisorError into its message on stderr and its
    exit code, and Ctrl-C into 130."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The list of commands, from SHORT_HELP: no command module is imported for it."""
        limit = formatter.width - 6 - max(len(name) for name in COMMANDS)
        rows = [
            (name, click.Command(name, help=SHORT_HELP[name]).get_short_help_str(limit))
            for name in COMMANDS
        ]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

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
