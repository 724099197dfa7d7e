"""`check`'s verdict on a Dagster location beside Dagster's webserver: whether the webserver
`up` would run (its environment built as `up` builds it) can read what the location sends."""

from __future__ import annotations

from supervisor.check.verdicts import CheckResult
from supervisor.dagsterui.compat import compatibility
from supervisor.dagsterui.system import system_request
from supervisor.envs import ensure_env
from supervisor.errors import SupervisorError
from supervisor.launch.dagster import dagster_version
from supervisor.workspace import WorkspaceSpec

CHECK = "dagster_ui"


def webserver_dagster(workspace: WorkspaceSpec) -> str:
    """The dagster version of the webserver's environment, built if needed (blocking);
    SupervisorError when it cannot be had."""
    built = ensure_env(workspace.envs_dir, system_request(workspace))
    version = dagster_version(str(built.python))
    if not version:
        raise SupervisorError(f"the webserver's environment {built.path} has no dagster")
    return version


def check_dagster_ui(location: str, ours: str, webserver: str | SupervisorError) -> CheckResult:
    """The verdict for LOCATION on dagster OURS beside a webserver on WEBSERVER (or why
    that webserver's environment could not be had)."""
    if isinstance(webserver, SupervisorError):
        return CheckResult(location, CHECK, False, f"the webserver's environment: {webserver}")
    problem = compatibility(ours, webserver)
    if problem is not None:
        return CheckResult(location, CHECK, False, problem)
    return CheckResult(
        location, CHECK, True, f"dagster {ours} here, {webserver} in the webserver: compatible"
    )
