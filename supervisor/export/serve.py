"""What serves a location inside its image: the same server the supervisor starts, on a port.

Both runtimes start as the supervisor starts them (supervisor/launch/), with the image's
paths, listening on 0.0.0.0:PORT instead of a private socket, and without what only a
supervisor provides: no heartbeat timeout (nothing sends heartbeats in a cluster; the
kubelet's health checks stand in for them), no parent pid, no readiness pipe.

- `supervisor`: our code server, through the bootstrap that keeps the working folder from
  shadowing the runtime, as the image's ENTRYPOINT.
- `dagster`: `python -m dagster api grpc` with the flags `up` gives it, as the image's CMD
  (not ENTRYPOINT): Dagster's Helm chart starts a user deployment by giving the container
  `args: [dagster, api, grpc, -h, 0.0.0.0, -p, PORT, ...dagsterApiGrpcArgs]`, which must
  replace the command, not be appended to it.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path, PurePosixPath

from supervisor.export.code import APP_DIR, python_file_in_image
from supervisor.launch.command import BOOTSTRAP, code_server_flags
from supervisor.launch.dagster import dagster_target_flags
from supervisor.workspace import LocationSpec, WorkspaceSpec

PORT = 4000  # every image serves here; its Service maps the same port
HOST = "0.0.0.0"
VENV = PurePosixPath("/opt/venv")
PYTHON = VENV / "bin" / "python"
USER_ID = 10001  # the image's own user, not root; Kubernetes checks runAsNonRoot by the number
HOME = PurePosixPath("/home/app")
# Our server keeps asset values below its working folder by default; /app is read-only to
# the user, so they go to the user's home.
VALUES_DIR = HOME / "values"
# Dagster's server logs one JSON object a line, as `up` reads it.
DAGSTER_FLAGS = ("--lazy-load-user-code", "--use-python-environment-entry-point")
DAGSTER_LOGS = ("--log-format", "json")


def in_image(workspace: WorkspaceSpec, location: LocationSpec) -> LocationSpec:
    """LOCATION with the image's paths: its folder at /app, its file below it."""
    python_file = python_file_in_image(workspace, location)
    return replace(
        location,
        working_directory=Path(APP_DIR),
        python_file=Path(python_file) if python_file is not None else None,
    )


def server_command(workspace: WorkspaceSpec, location: LocationSpec) -> list[str]:
    """The argv that serves LOCATION in its image, on 0.0.0.0:PORT."""
    inside = in_image(workspace, location)
    if location.effective_runtime == "dagster":
        return [
            str(PYTHON),
            "-m",
            "dagster",
            "api",
            "grpc",
            *dagster_target_flags(inside),
            *DAGSTER_FLAGS,
            *DAGSTER_LOGS,
            "--host",
            HOST,
            "--port",
            str(PORT),
        ]
    autoload = inside.kind == "autoload_defs_module"
    flags = code_server_flags(
        module_name=None if autoload else inside.module_name,
        autoload_defs_module=inside.module_name if autoload else None,
        python_file=str(inside.python_file) if inside.python_file else None,
        working_directory=str(inside.working_directory),
        attribute=inside.attribute,
        location_name=inside.name,
        host=HOST,
        port=PORT,
        drain_timeout=inside.drain_timeout,
        # As under `up`: with a memory limit (the container's), every run starts cold.
        warm_workers=0 if inside.memory_limit else None,
    )
    return [str(PYTHON), "-c", BOOTSTRAP, *flags, "--values-dir", str(VALUES_DIR)]


def dagster_chart_args(workspace: WorkspaceSpec, location: LocationSpec) -> list[str]:
    """`dagsterApiGrpcArgs` for Dagster's Helm chart, which itself gives `dagster api grpc
    -h 0.0.0.0 -p PORT` and names the location after its deployment."""
    flags = dagster_target_flags(in_image(workspace, location))
    at = flags.index("--location-name")
    return [*flags[:at], *flags[at + 2 :], *DAGSTER_FLAGS, *DAGSTER_LOGS]


def grace_seconds(location: LocationSpec) -> int:
    """How long Kubernetes waits after SIGTERM: the location's drain, plus time to exit."""
    return math.ceil(location.drain_timeout) + 5
