"""The one Dagster instance of a workspace, and the workspace file Dagster's processes read.

`DAGSTER_HOME` is `.supervisor/dagster/` beside the workspace file unless the environment
sets one. A `dagster.yaml` is written there when there is none (SQLite storage in that
folder, runs queued for the daemon); a user's own file is never touched. The webserver, the
daemon and every Dagster location get the same `DAGSTER_HOME`, so a run launched from the
UI is queued, picked up by the daemon and executed by the location's own server.

The workspace file holds one `grpc_server` entry per Dagster location, with its explicit
`location_name` and the stable address the supervisor serves for it (its pass-through).
"""

from __future__ import annotations

import fcntl
import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

import yaml

from supervisor.errors import SupervisorError
from supervisor.private import open_private_text, private_dir, write_private
from supervisor.workspace import WorkspaceSpec

INSTANCE_FILE = "dagster.yaml"
WORKSPACE_FILE = "workspace.yaml"

DAGSTER_YAML = """\
# Written by workspace-supervisor because this folder had no dagster.yaml; edit it freely,
# it is never rewritten while it exists.
storage:
  sqlite:
    base_dir: {home}
# Runs launched from the UI wait in a queue that the daemon works through.
run_coordinator:
  module: dagster.core.run_coordinator
  class: QueuedRunCoordinator
telemetry:
  enabled: false
"""


# Creates the instance's storage (run, event log and schedule databases). Run once, by the
# first environment with dagster to get there, before any Dagster process starts: two that
# create the SQLite storage at once corrupt it (two schema heads).
INIT_PROBE = "from dagster import DagsterInstance\nDagsterInstance.get().dispose()\n"
INIT_TIMEOUT = 300.0
READY_MARK = ".instance-ready"


def dagster_dir(workspace: WorkspaceSpec) -> Path:
    """The supervisor's Dagster folder of WORKSPACE (the workspace file Dagster reads)."""
    return workspace.state_dir / "dagster"


def dagster_home(workspace: WorkspaceSpec) -> Path:
    """The instance folder: DAGSTER_HOME from the environment, else the Dagster folder."""
    given = os.environ.get("DAGSTER_HOME")
    return Path(given).expanduser().absolute() if given else dagster_dir(workspace)


def ensure_instance(workspace: WorkspaceSpec) -> Path:
    """DAGSTER_HOME, made, with a dagster.yaml written there when it has none."""
    home = dagster_home(workspace)
    if home == dagster_dir(workspace):
        private_dir(home)
    else:
        home.mkdir(parents=True, exist_ok=True)
    config = home / INSTANCE_FILE
    if not config.exists():
        write_private(config, DAGSTER_YAML.format(home=yaml.safe_dump(str(home)).split("\n")[0]))
    return home


def workspace_file(workspace: WorkspaceSpec) -> Path:
    return dagster_dir(workspace) / WORKSPACE_FILE


def workspace_text(entries: Sequence[tuple[str, str]]) -> str:
    """The grpc_server workspace of ENTRIES: (location name, socket path) pairs."""
    load_from = [
        {"grpc_server": {"socket": socket, "location_name": name}} for name, socket in entries
    ]
    header = (
        "# Written by workspace-supervisor: its Dagster locations, at the addresses it serves"
        " for them.\n# Rewritten as locations come and go; point your own Dagster processes"
        " here.\n"
    )
    return header + yaml.safe_dump({"load_from": load_from}, sort_keys=False)


def write_workspace_file(workspace: WorkspaceSpec, entries: Sequence[tuple[str, str]]) -> Path:
    """Write (atomically) the workspace file Dagster's webserver and daemon read."""
    path = workspace_file(workspace)
    private_dir(path.parent)
    write_private(path, workspace_text(entries))
    return path


def init_instance(workspace: WorkspaceSpec, python: str, env: Mapping[str, str]) -> Path:
    """DAGSTER_HOME, its storage created with PYTHON's dagster unless done already (blocking;
    several callers at once wait for the first). SupervisorError when it fails."""
    home = ensure_instance(workspace)
    folder = private_dir(dagster_dir(workspace))
    mark = folder / READY_MARK
    with open_private_text(folder / ".instance.lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if mark.is_file() and mark.read_text() == str(home):
            return home
        try:
            done = subprocess.run(
                [python, "-c", INIT_PROBE],
                env={**env, "DAGSTER_HOME": str(home)},
                capture_output=True,
                text=True,
                timeout=INIT_TIMEOUT,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise SupervisorError(f"cannot create the Dagster instance in {home}: {exc}") from None
        if done.returncode != 0:
            said = " | ".join(done.stderr.strip().splitlines()[-2:])
            raise SupervisorError(f"cannot create the Dagster instance in {home}: {said}")
        write_private(mark, str(home))
    return home
