"""The typed, frozen specs a workspace file turns into: what each location asks for."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

RESTART_POLICIES = ("always", "on-failure", "never")
BUILDERS = ("uv", "pip")  # what makes a location's environment; uv unless asked
# What serves a location: our code server (our SDK), or Dagster's (`dagster api grpc`).
RUNTIMES = ("supervisor", "dagster")
KINDS = ("python_module", "python_file", "python_package", "autoload_defs_module", "grpc_server")


@dataclass(frozen=True)
class RestartSpec:
    """When and how fast a crashed code server is started again."""

    policy: str = "on-failure"  # always | on-failure | never
    max_restarts: int | None = None  # within `window`; None = unlimited
    window: float = 60.0
    backoff_initial: float = 0.5
    backoff_max: float = 30.0
    stable_after: float = 10.0

    def __post_init__(self) -> None:
        """Refuse a bad setting, naming it, its value and what is allowed (ValueError); the
        workspace reader says the same with file and line before it gets here."""
        if self.policy not in RESTART_POLICIES:
            allowed = ", ".join(RESTART_POLICIES)
            raise ValueError(f"restart.policy: expected one of {allowed}; got {self.policy!r}")
        if self.max_restarts is not None and self.max_restarts < 0:
            raise ValueError(
                f"restart.max_restarts: expected >= 0 or null; got {self.max_restarts!r}"
            )
        for key in ("window", "backoff_initial", "backoff_max", "stable_after"):
            value = getattr(self, key)
            if not value >= 0:  # also refuses NaN
                raise ValueError(f"restart.{key}: expected seconds >= 0; got {value!r}")


@dataclass(frozen=True)
class HealthSpec:
    """The periodic gRPC health check: how often, how long to wait, how many misses are fatal."""

    interval: float = 2.0
    timeout: float = 1.0
    failures: int = 3


@dataclass(frozen=True)
class LocationSpec:
    """One code location as the workspace asks for it; paths are absolute."""

    name: str
    kind: str  # one of KINDS
    line: int  # line of the entry in its file (1-based; 0 when not from a file)
    # python_module, python_package (its package_name), autoload_defs_module
    module_name: str | None = None
    python_file: Path | None = None  # python_file
    attribute: str | None = None
    # Absolute. Dagster's default when absent: the workspace file's folder for python_file,
    # the current folder for the other kinds and for -m/-f.
    working_directory: Path | None = None
    executable_path: Path | None = None  # use this interpreter as is, build nothing
    host: str | None = None  # grpc_server
    port: int | None = None
    socket: str | None = None  # absolute
    ssl: bool = False  # grpc_server: connect with TLS
    metadata: tuple[tuple[str, str], ...] = ()  # grpc_server's additional_metadata, sorted
    # A version spec ("3.9", ">=3.10,<3.12", "cpython3.11") or an absolute path;
    # None = the supervisor's own interpreter.
    python: str | None = None
    requirements: tuple[str, ...] = ()  # normalized PEP 508 strings, in order, no duplicates
    requirements_file: Path | None = None  # set when `requirements` named a file
    env: tuple[tuple[str, str], ...] = ()  # sorted by key
    startup_timeout: float = 60.0
    drain_timeout: float = 30.0
    heartbeat_timeout: float = 15.0
    memory_limit: int | None = None  # bytes
    health: HealthSpec = HealthSpec()
    restart: RestartSpec = RestartSpec()
    builder: str = "uv"  # uv | pip (virtualenv + pip, with pip's own configuration)
    runtime: str | None = None  # one of RUNTIMES; None: dagster when the requirements name it
    standby: bool = False  # a second server, started and loaded, takes over on a crash
    # The workspace file of the entry (None for -m/-f): for messages, not part of its meaning.
    source: Path | None = field(default=None, compare=False)

    @property
    def where(self) -> str:
        """FILE:LINE of the entry, or "command line"."""
        return f"{self.source}:{self.line}" if self.source and self.line else "command line"

    def __post_init__(self) -> None:
        """Refuse a bad builder (ValueError); the workspace reader says so with file and line."""
        if self.builder not in BUILDERS:
            allowed = ", ".join(BUILDERS)
            raise ValueError(f"builder: expected one of {allowed}; got {self.builder!r}")
        if self.runtime is not None and self.runtime not in RUNTIMES:
            allowed = ", ".join(RUNTIMES)
            raise ValueError(f"runtime: expected one of {allowed}; got {self.runtime!r}")

    @property
    def is_remote(self) -> bool:
        """True for a grpc_server entry: a server that runs elsewhere, not supervised here."""
        return self.kind == "grpc_server"

    @property
    def effective_runtime(self) -> str:
        """The runtime asked for, or the one the requirements imply (dagster when they name
        it; an executable_path environment is looked at when it starts)."""
        if self.runtime is not None:
            return self.runtime
        return "dagster" if any(_names_dagster(r) for r in self.requirements) else "supervisor"

    @property
    def env_dict(self) -> dict[str, str]:
        """The extra environment variables as a fresh dict."""
        return dict(self.env)


DEFAULT_WEBSERVER_HOST = "127.0.0.1"
DEFAULT_WEBSERVER_PORT = 3000
# The dashboard's: beside Dagster's 3000, not on it.
DEFAULT_UI_HOST = "127.0.0.1"
DEFAULT_UI_PORT = 3030


@dataclass(frozen=True)
class DagsterSpec:
    """The top-level `dagster:` block: Dagster's webserver and daemon over the workspace's
    Dagster locations, in an environment of their own."""

    webserver: bool = True
    host: str = DEFAULT_WEBSERVER_HOST
    port: int = DEFAULT_WEBSERVER_PORT  # 0: a free port, chosen when up starts
    daemon: bool = True
    # A PEP 440 specifier for dagster in their environment ("==1.13.28", ">=1.13,<1.14");
    # None: the newest dagster-webserver and its dagster.
    version: str | None = None
    python: str | None = None  # as a location's `python`; None: the supervisor's own
    line: int = 0  # the block's line in its file; 0 when absent

    @property
    def enabled(self) -> bool:
        return self.webserver or self.daemon

    @property
    def requirements(self) -> tuple[str, ...]:
        """What their environment installs."""
        pinned = ("dagster" + self.version,) if self.version else ()
        return ("dagster-webserver", *pinned)


@dataclass(frozen=True)
class UiSpec:
    """The top-level `ui:` block: the supervisor's own dashboard, served by `up`."""

    enabled: bool = True
    host: str = DEFAULT_UI_HOST
    # 0: a free port, chosen when up starts; None: DEFAULT_UI_PORT, or a free one if taken
    port: int | None = None
    token_file: Path | None = None  # absolute; None: a token is made when one is needed
    line: int = 0  # the block's line in its file; 0 when absent


@dataclass(frozen=True)
class WorkspaceSpec:
    """A whole workspace: where it lives, where environments go, its locations in file order."""

    path: Path  # the workspace file, absolute
    envs_dir: Path  # absolute
    locations: tuple[LocationSpec, ...]
    envs_dir_line: int = 0  # the line of envs_dir in the file; 0 when it was not given
    # Made from `up -m/-f` flags, not read from `path`: a reload re-reads no file.
    from_flags: bool = False
    files: tuple[Path, ...] = ()  # every -w file, merged in order; path is the first
    cwd: Path | None = None  # the folder relative module paths were resolved in
    warnings: tuple[str, ...] = ()  # what loads but may not mean what the writer thinks
    dagster: DagsterSpec = DagsterSpec()  # the first file's `dagster:` block
    ui: UiSpec = UiSpec()  # the first file's `ui:` block

    @property
    def root(self) -> Path:
        """The folder of the workspace file: relative paths in it start here."""
        return self.path.parent

    @property
    def state_dir(self) -> Path:
        """The supervisor's state folder beside the workspace file."""
        return self.root / ".supervisor"

    def location(self, name: str) -> LocationSpec:
        """The location called NAME; KeyError listing the known names when there is none."""
        for location in self.locations:
            if location.name == name:
                return location
        known = ", ".join(repr(location.name) for location in self.locations) or "none"
        raise KeyError(f"no location named {name!r} in {self.path}; known: {known}")


def _names_dagster(requirement: str) -> bool:
    """True when REQUIREMENT (a normalized PEP 508 string) is the `dagster` distribution."""
    name = re.split(r"[\s\[<>=!~;@(]", requirement, maxsplit=1)[0]
    return name.lower().replace("_", "-").replace(".", "-") == "dagster"
