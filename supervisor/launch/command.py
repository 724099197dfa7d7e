"""The command line and environment that start a code server."""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Variables of the supervisor's own environment that must not reach a location.
LEAKY_VARIABLES = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONSAFEPATH")


# `python -m` would put the working directory first on sys.path, where a folder
# named like our package (a checkout of this project, say) would shadow the
# environment's runtime; -c puts "" there, which the bootstrap removes first.
BOOTSTRAP = (
    "import sys; del sys.path[0]; from supervisor.codeserver.server import main; sys.exit(main())"
)


@dataclass(frozen=True)
class Launchable:
    """How to start a location's code server: argv (less the socket), environment, folder."""

    argv: list[str]
    env: dict[str, str]
    cwd: str | None
    python_version: str
    env_key: str | None
    runtime: str = "supervisor"  # what serves: our code server, or "dagster" (its api grpc)
    dagster_version: str = ""  # the environment's dagster, for the dagster runtime


def child_environment(
    extra: Mapping[str, str] | None = None, venv: Path | None = None
) -> dict[str, str]:
    """Return a code server's environment: ours less what leaks, VENV activated, EXTRA on top."""
    env = {k: v for k, v in os.environ.items() if k not in LEAKY_VARIABLES}
    env.pop("VIRTUAL_ENV", None)
    env["PYTHONUNBUFFERED"] = "1"
    if venv is not None:
        # As `activate` does: console scripts of the location's own packages come first.
        env["VIRTUAL_ENV"] = str(venv)
        env["PATH"] = os.pathsep.join([str(venv / "bin"), env.get("PATH", os.defpath)])
    env.update(extra or {})
    return env


def _socket_stem(location: str, digits: int) -> str:
    """A short, socket-safe stem for LOCATION's sockets (107-byte path limit)."""
    safe = "".join(c for c in location if c.isalnum() or c in "-_")[:16]
    return f"{safe}-{hashlib.sha256(location.encode()).hexdigest()[:digits]}"


def socket_name(location: str) -> str:
    """A fresh socket file name for one server of LOCATION."""
    return f"{_socket_stem(location, 6)}-{uuid.uuid4().hex[:6]}.sock"


def stable_socket_name(location: str) -> str:
    """The one socket file name of LOCATION across its restarts."""
    return f"{_socket_stem(location, 12)}.sock"


def code_server_flags(
    *,
    module_name: str | None = None,
    python_file: str | None = None,
    autoload_defs_module: str | None = None,
    working_directory: str | None = None,
    attribute: str | None = None,
    location_name: str | None = None,
    socket: str | None = None,
    port: int | None = None,
    host: str | None = None,
    heartbeat_timeout: float | None = None,
    drain_timeout: float | None = None,
    warm_workers: int | None = None,
) -> list[str]:
    """Return the code server's command-line flags for what is given."""
    options: Sequence[tuple[str, Any]] = (
        ("--module-name", module_name),
        ("--python-file", python_file),
        ("--autoload-defs-module", autoload_defs_module),
        ("--working-directory", working_directory),
        ("--attribute", attribute),
        ("--location-name", location_name),
        ("--socket", socket),
        ("--port", port),
        ("--host", host),
        ("--heartbeat-timeout", heartbeat_timeout),
        ("--drain-timeout", drain_timeout),
        ("--warm-workers", warm_workers),
    )
    flags: list[str] = []
    for flag, value in options:
        if value is not None:
            flags += [flag, str(value)]
    return flags


def code_server_command(python: str, **flags: Any) -> list[str]:
    """Return the argv that starts a code server on PYTHON (whose environment holds the runtime)."""
    return [python, "-c", BOOTSTRAP, *code_server_flags(**flags)]
