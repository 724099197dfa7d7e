"""Dagster's webserver and daemon as the supervisor runs them: their environment (built like
a location's: uv, content-hashed, cached) and their command lines.

Both run through a bootstrap on the environment's interpreter that restores SIGINT and
SIGTERM and asks the kernel for SIGTERM when the supervisor dies (as a Dagster location's
server does), then hands over to Dagster's own CLI in the same process.
"""

from __future__ import annotations

import os
from pathlib import Path

from supervisor.dagsterui import DAEMON, RUNTIME, WEBSERVER
from supervisor.dagsterui.instance import init_instance
from supervisor.envs import EnvRequest, ensure_env
from supervisor.envs.build import Progress
from supervisor.envs.keys import ui_request
from supervisor.errors import SupervisorError
from supervisor.launch.command import Launchable, child_environment
from supervisor.launch.dagster import MIN_DAGSTER, dagster_version, recent_enough
from supervisor.workspace import WorkspaceSpec

# argv[1]: the supervisor's pid; argv[2]: MODULE:FUNCTION of the CLI; argv[3]: its name;
# the rest: its arguments.
SYSTEM_BOOTSTRAP = """
import importlib, signal, sys
signal.signal(signal.SIGINT, signal.SIG_DFL)
signal.signal(signal.SIGTERM, signal.SIG_DFL)
del sys.path[0]
from supervisor.codeserver.lifeline import Parent, ask_for_parent_death_signal
if not ask_for_parent_death_signal(Parent(int(sys.argv[1]))):
    sys.exit(0)
module, _, function = sys.argv[2].partition(":")
sys.argv = sys.argv[3:]
sys.exit(getattr(importlib.import_module(module), function)())
"""
ENTRY_POINTS = {WEBSERVER: "dagster_webserver.cli:main", DAEMON: "dagster._daemon.cli:main"}


def system_request(workspace: WorkspaceSpec) -> EnvRequest:
    """The environment of the webserver and the daemon (finds its interpreter)."""
    request = ui_request(workspace)
    if request is None:
        raise SupervisorError(f"{workspace.path} runs no Dagster webserver or daemon")
    return request


def system_command(
    name: str, python: str, dagster_workspace: Path, url_host: str, port: int
) -> list[str]:
    """The argv of NAME (the webserver or the daemon) over DAGSTER_WORKSPACE."""
    head = [python, "-c", SYSTEM_BOOTSTRAP, str(os.getpid()), ENTRY_POINTS[name], name]
    if name == WEBSERVER:
        return [
            *head,
            "-w",
            str(dagster_workspace),
            "-h",
            url_host,
            "-p",
            str(port),
            "--log-format",
            "json",
        ]
    return [*head, "run", "-w", str(dagster_workspace), "--log-format", "json"]


def system_launchable(
    workspace: WorkspaceSpec,
    name: str,
    dagster_workspace: Path,
    port: int,
    progress: Progress | None = None,
    live: Progress | None = None,
) -> Launchable:
    """What starts NAME: its environment built (blocking: uv may run) and its command line."""
    request = system_request(workspace)
    built = ensure_env(workspace.envs_dir, request, progress, live=live)
    version = dagster_version(str(built.python))
    if not recent_enough(version):
        wanted = ".".join(str(p) for p in MIN_DAGSTER)
        raise SupervisorError(
            f"the environment of Dagster's webserver and daemon has dagster {version or 'none'};"
            f" they need {wanted} or later (set dagster.version in {workspace.path})"
        )
    env = child_environment(venv=built.path)
    env["DAGSTER_HOME"] = str(init_instance(workspace, str(built.python), env))
    return Launchable(
        argv=system_command(
            name, str(built.python), dagster_workspace, workspace.dagster.host, port
        ),
        env=env,
        cwd=str(dagster_workspace.parent),
        python_version=request.python.version,
        env_key=request.key,
        runtime=RUNTIME,
        dagster_version=version,
    )
