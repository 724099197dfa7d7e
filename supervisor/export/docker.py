"""`export docker`: a build context per location, whose image holds what `up` runs.

DIR/<location>/ holds a Dockerfile, a .dockerignore, `requirements.lock` (the built
environment's distributions, exactly: see lock.py), `runtime/` (the child runtime, copied
as `up` copies it into every environment) and `code/` (the location's folder: see
code.py). Two stages: the first installs the pinned uv from PyPI and with it exactly the
lock file into /opt/venv on the official `python:X.Y-slim` image of the interpreter's minor
version; the second copies that environment and the code, and serves as a user of its own.
A folder left by an earlier export is replaced whole; any other folder there is refused.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

from supervisor.envs import BuiltEnv, EnvRequest, build_all, plan
from supervisor.envs.build import Progress, site_packages_of, uv_version
from supervisor.errors import EnvBuildError, SupervisorError, UsageError
from supervisor.export.code import APP_DIR, CodeLayout, collect_code, mark_output
from supervisor.export.images import image_tag
from supervisor.export.lock import LOCK_FILE, environment_pins, lock_text
from supervisor.export.selection import Selection
from supervisor.export.serve import HOME, PORT, PYTHON, USER_ID, VENV, server_command
from supervisor.runtime import install_runtime
from supervisor.safepath import child_path
from supervisor.workspace import LocationSpec, WorkspaceSpec

MARK = "# Made by `supervisor export docker`"  # the first line: an export's own Dockerfile
DOCKERFILE = "Dockerfile"
DOCKERIGNORE = ".dockerignore"
RUNTIME_DIR = "runtime"
CODE_DIR = "code"
# What no image needs, should a later hand add it to the context.
IGNORED = ("**/__pycache__", "**/*.py[cod]", "**/.git", "**/.venv", "**/.supervisor")


@dataclass(frozen=True)
class DockerContext:
    """One exported build context."""

    location: str
    path: Path
    python: str  # the base image's Python, X.Y
    pins: int  # distributions in the lock file
    code: CodeLayout
    tag: str  # the image's content tag (images.py), as `export kubernetes` names it


@dataclass(frozen=True)
class DockerExport:
    """What `export docker` made, and the environments that failed to build."""

    contexts: list[DockerContext]
    failed: dict[str, EnvBuildError]  # by environment key


def export_images(
    workspace: WorkspaceSpec,
    selection: Selection,
    out: Path,
    progress: Progress | None = None,
    live: Progress | None = None,
) -> DockerExport:
    """Build the environments of SELECTION's locations (as `env build` does) and write a
    build context for each one that built, below OUT."""
    if not selection.exported:
        return DockerExport([], {})
    requests = plan(workspace, tuple(location.name for location in selection.exported))
    report = build_all(workspace.envs_dir, requests.values(), progress, live)
    mark_output(out)
    contexts = []
    for location in selection.exported:
        request = requests[location.name]
        built = report.built.get(request.key)
        if built is None:
            continue  # its build failed: the report says why
        code = collect_code(workspace, location)
        target = child_path(out, location.name)
        contexts.append(export_context(workspace, location, request, built, code, target))
    return DockerExport(contexts, report.failed)


def minor_of(version: str) -> str:
    """X.Y of a full version X.Y.Z."""
    return ".".join(version.split(".")[:2])


def uv_pin() -> str:
    """The version of the uv the environments are built with, for the image to pin."""
    said = uv_version().split()  # "uv 0.6.3 (abc 2025-01-01)"
    if len(said) < 2 or not said[1][:1].isdigit():
        raise SupervisorError(f"cannot read uv's version from {' '.join(said)!r}")
    return said[1]


def dockerfile_text(
    location: str, workspace: str, python: str, env: str, command: list[str], dagster: bool
) -> str:
    """The Dockerfile of a location served by COMMAND on Python PYTHON (X.Y)."""
    site = VENV / "lib" / f"python{python}" / "site-packages"
    # Dagster's Helm chart gives the container its own `args`: those must replace the
    # command (CMD), not follow an ENTRYPOINT.
    start = "CMD" if dagster else "ENTRYPOINT"
    return "\n".join(
        [
            f"{MARK} for location {location!r} of {workspace}",
            f"# from its environment {env}. Build it from this folder:",
            "#   docker build -t IMAGE:TAG .",
            "# The location's env: is not baked in: its Deployment sets it (docker run -e).",
            f"FROM python:{python}-slim AS build",
            "ENV UV_PYTHON_DOWNLOADS=never \\",
            "    UV_NO_CACHE=1 \\",
            "    UV_COMPILE_BYTECODE=1 \\",
            "    UV_LINK_MODE=copy",
            f"RUN pip install --no-cache-dir uv=={uv_pin()}",
            f"COPY {LOCK_FILE} /tmp/{LOCK_FILE}",
            f"RUN uv venv --python /usr/local/bin/python{python} {VENV} \\",
            f"    && uv pip sync --python {PYTHON} /tmp/{LOCK_FILE}",
            "# The child runtime, as the supervisor copies it into every environment it builds.",
            f"COPY {RUNTIME_DIR}/supervisor {site}/supervisor",
            "",
            f"FROM python:{python}-slim",
            f"RUN groupadd --gid {USER_ID} app \\",
            f"    && useradd --no-log-init --create-home --home-dir {HOME} --uid {USER_ID}"
            f" --gid {USER_ID} app",
            f"COPY --from=build {VENV} {VENV}",
            f"COPY {CODE_DIR} {APP_DIR}",
            f"ENV PATH={VENV}/bin:$PATH \\",
            f"    VIRTUAL_ENV={VENV} \\",
            "    PYTHONUNBUFFERED=1",
            f"WORKDIR {APP_DIR}",
            f"USER {USER_ID}:{USER_ID}",
            f"EXPOSE {PORT}",
            f"{start} {json.dumps(command)}",
            "",
        ]
    )


def dockerignore_text() -> str:
    return "\n".join(["# The context is made by `supervisor export docker`.", *IGNORED, ""])


def export_context(
    workspace: WorkspaceSpec,
    location: LocationSpec,
    request: EnvRequest,
    built: BuiltEnv,
    code: CodeLayout,
    target: Path,
) -> DockerContext:
    """Write LOCATION's build context at TARGET (replacing an earlier export there)."""
    python = minor_of(request.python.version)
    pins = environment_pins(site_packages_of(built.path, request.python.version), location.name)
    manifest = built.manifest()
    builder = manifest.get("builder", "uv")
    tool = str(manifest.get("tools", {}).get(builder, builder)).split(" (")[0]  # "uv 0.6.3"
    files = {
        DOCKERFILE: dockerfile_text(
            location.name,
            str(workspace.path),
            python,
            request.name,
            server_command(workspace, location),
            location.effective_runtime == "dagster",
        ),
        DOCKERIGNORE: dockerignore_text(),
        LOCK_FILE: lock_text(pins, location.name, request.name, tool),
    }
    _check_replaceable(target)
    staging = target.parent / f".tmp-export-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        staging.mkdir(parents=True)
        for name, text in files.items():
            (staging / name).write_text(text)
        (staging / RUNTIME_DIR).mkdir()
        install_runtime(staging / RUNTIME_DIR)
        code.copy_to(staging / CODE_DIR)
        _replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    tag = image_tag(workspace, location, code)
    return DockerContext(location.name, target, python, len(pins), code, tag)


def _check_replaceable(target: Path) -> None:
    """Refuse to replace TARGET unless it is absent, empty, or an earlier export."""
    if not target.exists():
        return
    if not target.is_dir():
        raise UsageError(f"{target} exists and is not a folder; remove it or choose another -o")
    dockerfile = target / DOCKERFILE
    ours = dockerfile.is_file() and dockerfile.read_text(errors="replace").startswith(MARK)
    if not ours and any(target.iterdir()):
        raise UsageError(
            f"{target} exists and is not an earlier `supervisor export docker` of this"
            " location; remove it or choose another -o"
        )


def _replace(staging: Path, target: Path) -> None:
    """Put STAGING in TARGET's place; an earlier TARGET is removed after the swap."""
    if target.exists():
        old = target.with_name(f".tmp-old-{os.getpid()}-{uuid.uuid4().hex[:8]}")
        os.replace(target, old)
        os.replace(staging, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(staging, target)
