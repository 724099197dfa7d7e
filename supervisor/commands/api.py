"""`supervisor api grpc` and `supervisor ls --address`: one code server, no supervisor."""

from __future__ import annotations

import sys

import click


@click.group()
def api() -> None:
    """Run a code server by itself, for remote hosts."""


@api.command("grpc")
@click.option("-m", "--module-name", help="Import this module as the code location.")
@click.option("-f", "--python-file", help="Load this file as the code location.")
@click.option("-d", "--working-directory", help="Put first on sys.path and run from here.")
@click.option("-a", "--attribute", help="The Definitions variable to use, if not the only one.")
@click.option("--location-name", help="Name of the location (default: module or file name).")
@click.option("--host", default="127.0.0.1", show_default=True, help="TCP host to bind.")
@click.option("-p", "--port", type=click.IntRange(0, 65535), help="TCP port (0: any free one).")
@click.option("-s", "--socket", "socket_path", help="Unix socket path to listen on.")
@click.option(
    "--heartbeat-timeout",
    type=click.FloatRange(min=0, min_open=True),
    help="Stop when no client sent a Heartbeat for this many seconds.",
)
def api_grpc(
    module_name: str | None,
    python_file: str | None,
    working_directory: str | None,
    attribute: str | None,
    location_name: str | None,
    host: str,
    port: int | None,
    socket_path: str | None,
    heartbeat_timeout: float | None,
) -> None:
    """Serve one code location on this interpreter until Ctrl-C or SIGTERM.

    Logs "Started code server for module M on port P in process N" once ready.
    """
    from supervisor.codeserver.server import main as serve

    if (module_name is None) == (python_file is None):
        raise click.UsageError("give exactly one of --module-name/-m and --python-file/-f")
    if (port is None) == (socket_path is None):
        raise click.UsageError("give exactly one of --port/-p and --socket/-s")
    argv = ["--module-name", module_name] if module_name else ["--python-file", str(python_file)]
    argv += ["--port", str(port)] if port is not None else ["--socket", str(socket_path)]
    argv += ["--host", host]
    for flag, value in (
        ("--working-directory", working_directory),
        ("--attribute", attribute),
        ("--location-name", location_name),
        ("--heartbeat-timeout", heartbeat_timeout),
    ):
        if value is not None:
            argv += [flag, str(value)]
    sys.exit(serve(argv))
