"""The command line that starts a real Dagster code server (`dagster api grpc`) in a
location's environment, and the check that its dagster can be started so.

The server runs through a small bootstrap on the environment's interpreter, which, before
Dagster's CLI takes over in the same process:
- restores SIGINT and SIGTERM to their defaults: Dagster maps SIGTERM to its SIGINT
  handler, so a server that inherited SIGINT ignored (a background job of a shell) would
  never stop on SIGTERM;
- asks the kernel for SIGTERM when the supervisor dies (the child runtime's lifeline), so
  that a SIGKILLed `up` leaves no server behind even before Dagster's own heartbeat
  timeout ends it.
"""

from __future__ import annotations

import os
import subprocess
from typing import TYPE_CHECKING

from supervisor.errors import SupervisorError
from supervisor.launch.command import Launchable
from supervisor.workspace import LocationSpec

# For annotations only: protobuf loads where a reply is read, after `up` starts its servers.
if TYPE_CHECKING:
    from supervisor._proto import codeserver_pb2 as pb

# The oldest dagster whose `api grpc` takes every flag given below.
MIN_DAGSTER = (1, 9)
VERSION_TIMEOUT = 30.0
# How long Dagster's server lives without a heartbeat of ours: its own orphan guard.
MIN_HEARTBEAT_SECONDS = 5

# argv[1]: the supervisor's pid; the rest: `dagster` CLI arguments.
DAGSTER_BOOTSTRAP = """
import signal, sys
signal.signal(signal.SIGINT, signal.SIG_DFL)
signal.signal(signal.SIGTERM, signal.SIG_DFL)
del sys.path[0]
try:
    from supervisor.codeserver.lifeline import Parent, ask_for_parent_death_signal
except ImportError:
    pass
else:
    if not ask_for_parent_death_signal(Parent(int(sys.argv[1]))):
        sys.exit(0)
sys.argv = ["dagster"] + sys.argv[2:]
import runpy
runpy.run_module("dagster", run_name="__main__", alter_sys=True)
"""

# Run by the location's interpreter, as its server would see the world (the working directory
# first on sys.path, as Dagster puts it): the child runtime's facts, serialized, on stdout.
FACTS_PROBE = """
import sys
del sys.path[0]
if sys.argv[1]:
    sys.path.insert(0, sys.argv[1])
from supervisor.codeserver.facts import inspect_environment
sys.stdout.buffer.write(inspect_environment().SerializeToString())
"""
FACTS_TIMEOUT = 60.0

# Run by the environment's interpreter: the installed dagster's version, without importing it.
VERSION_PROBE = (
    "import importlib.metadata as m\n"
    "try:\n    print(m.version('dagster'))\n"
    "except m.PackageNotFoundError:\n    print('')\n"
)


def dagster_target_flags(location: LocationSpec) -> list[str]:
    """`dagster api grpc`'s flags for the location's target, folder and name."""
    flags: list[str] = []
    if location.kind == "python_file" and location.python_file is not None:
        flags += ["--python-file", str(location.python_file)]
    elif location.kind == "python_package" and location.module_name:
        flags += ["--package-name", location.module_name]
    elif location.kind == "autoload_defs_module" and location.module_name:
        flags += ["--autoload-defs-module-name", location.module_name]
    elif location.module_name:
        flags += ["--module-name", location.module_name]
    if location.attribute:
        flags += ["--attribute", location.attribute]
    if location.working_directory is not None:
        flags += ["--working-directory", str(location.working_directory)]
    return [*flags, "--location-name", location.name]


def dagster_command(python: str, location: LocationSpec) -> list[str]:
    """The argv (less `--socket PATH`, which each start adds) of the location's server."""
    heartbeat = max(MIN_HEARTBEAT_SECONDS, round(location.heartbeat_timeout))
    return [
        python,
        "-c",
        DAGSTER_BOOTSTRAP,
        str(os.getpid()),
        "api",
        "grpc",
        *dagster_target_flags(location),
        # A broken location serves its error instead of exiting.
        "--lazy-load-user-code",
        # Run and step workers start with the location's own interpreter.
        "--use-python-environment-entry-point",
        "--heartbeat",
        "--heartbeat-timeout",
        str(heartbeat),
        "--log-format",
        "json",
    ]


def dagster_version(python: str) -> str:
    """The version of dagster installed for PYTHON ("" when there is none)."""
    try:
        done = subprocess.run(
            [python, "-c", VERSION_PROBE],
            capture_output=True,
            text=True,
            timeout=VERSION_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SupervisorError(f"cannot ask {python} for its dagster version: {exc}") from None
    return done.stdout.strip() if done.returncode == 0 else ""


def recent_enough(version: str) -> bool:
    """Whether dagster VERSION takes every flag the supervisor gives it (MIN_DAGSTER on)."""
    parts = tuple(int(p) for p in version.split(".")[:2] if p.isdigit())
    return bool(version) and parts >= MIN_DAGSTER


def check_dagster(location: LocationSpec, python: str, version: str | None = None) -> str:
    """The environment's dagster VERSION (read from PYTHON when not given); SupervisorError
    when it has none or one too old."""
    if version is None:
        version = dagster_version(python)
    if not version:
        raise SupervisorError(
            f"location {location.name!r} runs as runtime dagster, but its environment"
            f" ({python}) has no dagster: add dagster to its requirements, or set runtime:"
            " supervisor for a location written with our SDK"
        )
    if not recent_enough(version):
        wanted = ".".join(str(p) for p in MIN_DAGSTER)
        raise SupervisorError(
            f"location {location.name!r}: dagster {version} is too old; its code server is"
            f" started with the flags of dagster {wanted} and later (require dagster>={wanted})"
        )
    return version


def probe_facts(launchable: Launchable, location: LocationSpec) -> pb.InspectReply:
    """The environment facts `check` judges, gathered by the location's own interpreter in
    the environment its Dagster server runs with (Dagster's server has no Inspect call)."""
    python = launchable.argv[0]
    folder = str(location.working_directory or "")
    try:
        done = subprocess.run(
            [python, "-c", FACTS_PROBE, folder],
            capture_output=True,
            env=launchable.env,
            cwd=launchable.cwd,
            timeout=FACTS_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SupervisorError(
            f"location {location.name!r}: the facts probe failed: {exc}"
        ) from None
    if done.returncode != 0:
        said = done.stderr.decode(errors="replace").strip().splitlines()[-3:]
        raise SupervisorError(
            f"location {location.name!r}: the facts probe exited {done.returncode}: "
            + " | ".join(said)
        )
    from supervisor._proto import codeserver_pb2 as pb

    return pb.InspectReply.FromString(done.stdout)
