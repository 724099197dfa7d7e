"""The default workspace (the repository's workspace.yaml) comes up as the README promises."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from supervisor.control.codeserver import CodeServerClient
from supervisor.dagsterui.graphql import Webserver, WebserverError
from supervisor.workspace import load_workspace
from tests.helpers import REPO, wait_for
from tests.uphelp import Up


def dagster_loaded(url: str, name: str) -> bool:
    try:
        entry = Webserver(url).locations(10).get(name)
    except WebserverError:
        return False
    return entry is not None and entry.loaded


def test_default_workspace_loads_with_four_pythons() -> None:
    workspace = load_workspace(REPO / "workspace.yaml", cwd=REPO)
    pythons = {spec.name: spec.python for spec in workspace.locations}
    assert pythons == {
        "flowers": "3.8",
        "flower_stats": "3.12",
        "hello": "3.10",
        "my_dagster_code_location": "3.11",
    }
    runtimes = {spec.name: spec.effective_runtime for spec in workspace.locations}
    assert runtimes["my_dagster_code_location"] == "dagster"
    assert {runtimes[n] for n in ("flowers", "flower_stats", "hello")} == {"supervisor"}
    kinds = {spec.kind for spec in workspace.locations}
    assert kinds == {"python_module", "python_file"}


# Builds pandas (and dagster) environments: one deadline for all four starts, and the test's
# own above it.
STARTS_SECONDS = 600


@pytest.mark.timeout(STARTS_SECONDS + 300)
def test_default_workspace_runs_conflicting_pandas_side_by_side(
    tmp_path: Path, shared_envs_dir: Path
) -> None:
    # The same file, moved beside a private state folder and the session's environments.
    text = (REPO / "workspace.yaml").read_text().replace("examples/", f"{REPO}/examples/")
    text = text.replace("working_directory: examples", f"working_directory: {REPO}/examples")
    workspace = tmp_path / "workspace.yaml"
    workspace.write_text(f"envs_dir: {shared_envs_dir}\n{text}")
    up = Up(workspace, "--dagster-port", "0")
    try:
        deadline = time.monotonic() + STARTS_SECONDS
        entries = {
            n: up.wait_state(n, "SERVING", timeout=max(1.0, deadline - time.monotonic()))
            for n in ("flowers", "flower_stats", "hello", "my_dagster_code_location")
        }
        assert entries["my_dagster_code_location"]["runtime"] == "dagster"
        assert entries["my_dagster_code_location"]["python"].startswith("3.11.")
        assert entries["flowers"]["python"].startswith("3.8.")
        assert entries["flower_stats"]["python"].startswith("3.12.")
        assert entries["hello"]["python"].startswith("3.10.")
        versions = {}
        for name in ("flowers", "flower_stats"):
            with CodeServerClient(entries[name]["address"], name) as client:
                info = client.server_info()
                versions[name] = {d.name.lower(): d.version for d in info.distributions}["pandas"]
                assert [a.key for a in client.list_definitions().assets]
        assert versions["flowers"] == "1.5.3"
        assert versions["flower_stats"].startswith("2.2.")
        # Dagster's UI runs over the Dagster location, as the README says.
        url = up.wait_state("dagster-webserver", "SERVING", timeout=STARTS_SECONDS)["url"]
        wait_for(
            lambda: dagster_loaded(url, "my_dagster_code_location"),
            60,
            "my_dagster_code_location LOADED in Dagster's webserver",
            lambda: up.log(),
        )
    finally:
        code = up.stop()
    assert code == 0, up.log()
