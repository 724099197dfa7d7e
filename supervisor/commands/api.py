"""`supervisor api grpc` and `supervisor ls --address`: one code server, no supervisor."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import click

from supervisor.control.codeserver import TlsSettings


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
@click.option(
    "--tls-cert",
    type=click.Path(dir_okay=False),
    help="Serve TLS on the TCP port with this PEM certificate (chain); needs --tls-key.",
)
@click.option(
    "--tls-key", type=click.Path(dir_okay=False), help="The PEM private key of --tls-cert."
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
    tls_cert: str | None,
    tls_key: str | None,
) -> None:
    """Serve one code location on this interpreter until Ctrl-C or SIGTERM.

    Logs "Started code server for module M on port P in process N" once ready. A --host
    beyond loopback without --tls-cert/--tls-key is served, with a warning.
    """
    # Imported when the command runs: the code server's grpc and SDK load only for it.
    from supervisor.codeserver.listen import StartError, read_tls_files
    from supervisor.codeserver.server import main as serve

    if (module_name is None) == (python_file is None):
        raise click.UsageError("give exactly one of --module-name/-m and --python-file/-f")
    if (port is None) == (socket_path is None):
        raise click.UsageError("give exactly one of --port/-p and --socket/-s")
    if tls_cert is not None or tls_key is not None:
        if tls_key is None:
            raise click.UsageError("--tls-cert needs --tls-key: give both or neither")
        if tls_cert is None:
            raise click.UsageError("--tls-key needs --tls-cert: give both or neither")
        if socket_path is not None:
            raise click.UsageError(
                "--tls-cert/--tls-key apply to a TCP port (--port) only, not to --socket:"
                " a Unix socket is reached only on this machine, guarded by its file mode"
            )
        try:
            read_tls_files(tls_cert, tls_key)
        except StartError as exc:
            raise click.UsageError(str(exc)) from None
    argv = ["--module-name", module_name] if module_name else ["--python-file", str(python_file)]
    argv += ["--port", str(port)] if port is not None else ["--socket", str(socket_path)]
    argv += ["--host", host]
    for flag, value in (
        ("--working-directory", working_directory),
        ("--attribute", attribute),
        ("--location-name", location_name),
        ("--heartbeat-timeout", heartbeat_timeout),
        ("--tls-cert", tls_cert),
        ("--tls-key", tls_key),
    ):
        if value is not None:
            argv += [flag, str(value)]
    sys.exit(serve(argv))


def tls_client_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The `--tls` and `--tls-ca` flags of a command that calls a code server at --address."""
    command = click.option(
        "--tls-ca",
        type=click.Path(dir_okay=False),
        help="Trust the PEM certificates in this file, not the system's (implies --tls).",
    )(command)
    return click.option(
        "--tls", is_flag=True, help="Connect to --address with TLS (`api grpc --tls-cert`)."
    )(command)


def tls_settings(address: str | None, tls: bool, tls_ca: str | None) -> TlsSettings | None:
    """The TLS to connect to --address with, from --tls and --tls-ca; None for plaintext."""
    if not tls and tls_ca is None:
        return None
    if address is None:
        raise click.UsageError(
            "--tls/--tls-ca are for --address: the supervisor itself is reached locally"
        )
    return TlsSettings.from_ca_file(tls_ca)
