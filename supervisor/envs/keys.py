"""What environment each location needs, and the key that names it.

The key hashes everything that decides an environment's contents: the
interpreter's identity, the normalized requirements (a requirements file's
contents included), the child runtime's hash, the index settings of the tool that
builds it and, when that tool is not uv, its name. Locations with equal keys share one
environment.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from supervisor import tools
from supervisor.dagsterui import SYSTEM_NAMES
from supervisor.errors import InterpreterNotFoundError, SupervisorError
from supervisor.pythons import PythonInfo, find_python
from supervisor.runtime import runtime_hash
from supervisor.workspace import LocationSpec, WorkspaceSpec

# What every environment gets besides the location's own requirements: the widest
# ranges our generated stubs work with (protobuf 4.25 gencode runs on 3.20 and later).
BASE_REQUIREMENTS = ("grpcio>=1.48", "protobuf>=3.20")
# Settings that change what uv installs (uv reads no PIP_* variables).
INDEX_VARIABLES = (
    "UV_INDEX",
    "UV_DEFAULT_INDEX",
    "UV_INDEX_URL",
    "UV_EXTRA_INDEX_URL",
    "UV_FIND_LINKS",
    "UV_INDEX_STRATEGY",
    "UV_PRERELEASE",
    "UV_EXCLUDE_NEWER",
)
# Settings that change what pip installs (pip reads no UV_* variables). PIP_CONFIG_FILE's
# contents count too; pip's site and user config files, like uv.toml, do not.
PIP_INDEX_VARIABLES = ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS", "PIP_CONFIG_FILE")
KEY_VERSION = 1


@dataclass(frozen=True)
class EnvRequest:
    """One environment to have: its key and name, what goes in, who uses it."""

    key: str
    python: PythonInfo
    requirements: tuple[str, ...]
    locations: tuple[str, ...]
    builder: str = "uv"  # "uv", or "pip" (virtualenv + pip)
    note: str = ""  # why the builder is not the one the workspace asked for, if it is not

    @property
    def name(self) -> str:
        """The folder name: readable prefix, then the key."""
        return f"py{self.python.version}-{self.key}"

    def install_requirements(self) -> list[str]:
        """The requirement strings to install: the location's, then the base ones it lacks."""
        # Here: a build needs them, and packaging's requirement parser costs every `up`.
        from packaging.requirements import Requirement
        from packaging.utils import canonicalize_name

        declared = {canonicalize_name(Requirement(r).name) for r in self.requirements}
        base = [
            r for r in BASE_REQUIREMENTS if canonicalize_name(Requirement(r).name) not in declared
        ]
        return [*self.requirements, *base]


def index_settings(environ: dict[str, str] | None = None) -> dict[str, str]:
    environ = dict(os.environ) if environ is None else environ
    return {name: environ[name] for name in INDEX_VARIABLES if environ.get(name)}


def pip_index_settings(environ: dict[str, str] | None = None) -> dict[str, str]:
    """pip's index settings from ENVIRON, with the contents of PIP_CONFIG_FILE when it exists."""
    environ = dict(os.environ) if environ is None else environ
    found = {name: environ[name] for name in PIP_INDEX_VARIABLES if environ.get(name)}
    config = found.get("PIP_CONFIG_FILE")
    if config and config != os.devnull:
        with contextlib.suppress(OSError, UnicodeDecodeError):
            found["PIP_CONFIG_FILE contents"] = Path(config).read_text()
    return found


def env_key(
    python: PythonInfo,
    requirements: tuple[str, ...],
    index: dict[str, str] | None = None,
    builder: str = "uv",
) -> str:
    """Hash the inputs that decide an environment's contents (INDEX: the builder's settings)."""
    if index is None:
        index = index_settings() if builder == "uv" else pip_index_settings()
    material: dict[str, object] = {
        "version": KEY_VERSION,
        "implementation": python.implementation,
        "python": python.version,
        "machine": getattr(python, "machine", ""),
        "requirements": sorted(set(requirements)),
        "base": list(BASE_REQUIREMENTS),
        "runtime": runtime_hash(),
        "index": index,
    }
    if builder != "uv":  # uv-built environments keep the keys they had before builders
        material["builder"] = builder
    blob = json.dumps(material, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def choose_builder(wanted: str) -> tuple[str, str]:
    """The builder for a location that asks for WANTED, and a note when it is another; costs
    a stat, no subprocess (where uv is found but fails to run, its build says so)."""
    if wanted != "uv":
        return wanted, ""
    try:
        uv = tools.uv_binary()
    except SupervisorError as exc:
        return "pip", f"{exc}; building with virtualenv + pip"
    if not os.access(uv, os.X_OK):
        return "pip", f"uv at {uv} is not executable; building with virtualenv + pip"
    return "uv", ""


def needs_env(location: LocationSpec) -> bool:
    """True for locations whose environment the supervisor builds."""
    return not location.is_remote and location.executable_path is None


def plan(workspace: WorkspaceSpec, names: tuple[str, ...] = ()) -> dict[str, EnvRequest]:
    """Map each selected location that needs an environment to its request (shared by key)."""
    selected = [workspace.location(n) for n in names] if names else list(workspace.locations)
    by_key: dict[str, EnvRequest] = {}
    chosen: dict[str, str] = {}
    for location in selected:
        if not needs_env(location):
            continue
        try:
            python = find_python(location.python)
        except InterpreterNotFoundError as exc:
            where = location.where
            raise InterpreterNotFoundError(
                f"{where} location {location.name!r} python: {exc}"
            ) from None
        builder, note = choose_builder(location.builder)
        key = env_key(python, location.requirements, builder=builder)
        previous = by_key.get(key)
        users = (*previous.locations, location.name) if previous else (location.name,)
        by_key[key] = EnvRequest(key, python, location.requirements, users, builder, note)
        chosen[location.name] = key
    return {name: by_key[key] for name, key in chosen.items()}


def ui_request(workspace: WorkspaceSpec) -> EnvRequest | None:
    """The environment of Dagster's webserver and daemon, when `up` runs them (the workspace
    has Dagster locations and its `dagster:` block does not turn them off); finds its
    interpreter."""
    spec = workspace.dagster
    if not spec.enabled or not any(
        loc.effective_runtime == "dagster" and needs_env(loc) for loc in workspace.locations
    ):
        return None
    try:
        python = find_python(spec.python)
    except InterpreterNotFoundError as exc:
        where = f"{workspace.path}:{spec.line}" if spec.line else str(workspace.path)
        raise InterpreterNotFoundError(f"{where} dagster.python: {exc}") from None
    builder, note = choose_builder("uv")
    key = env_key(python, spec.requirements, builder=builder)
    return EnvRequest(key, python, spec.requirements, SYSTEM_NAMES, builder, note)
