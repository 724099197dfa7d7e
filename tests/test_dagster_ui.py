"""`supervisor up` as a better `dagster dev`: the real Dagster webserver and daemon, in an
environment of their own, over two Dagster locations on two Pythons, one instance."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import signal
import stat
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import psutil
import pytest
import yaml
from selenium.webdriver.common.by import By

from supervisor.dagsterui.graphql import Webserver, WebserverError
from tests.browser import Page, chromium
from tests.conftest import DAGSTER_REQUIREMENT
from tests.helpers import pid_gone, wait_for
from tests.uphelp import Up, cli, dashboard_entry

pytestmark = pytest.mark.timeout(900)
cli = functools.partial(cli, timeout=300)
BUILD_TIMEOUT = 600.0  # cold builds download dagster and the webserver
RUN_TIMEOUT = 180.0  # a queued run: the daemon's pick-up, a run worker, a step worker each

DEFS = """
from dagster import Definitions, asset


@asset
def numbers():
    return [1, 2, 3]


@asset
def total(numbers):
    return sum(numbers)


defs = Definitions(assets=[numbers, total])
"""
LAUNCH = """
mutation($p: ExecutionParams!) { launchRun(executionParams: $p) {
    __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message } } }
"""
RUN_STATUS = "query($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }"


def workspace_text(envs: Path, extra: bool = False) -> str:
    text = textwrap.dedent(f"""
        envs_dir: {envs}
        defaults:
          requirements: ["{DAGSTER_REQUIREMENT}"]
          health: {{interval: 0.5, timeout: 2}}
        load_from:
          - python_file: {{relative_path: defs.py, location_name: older, python: "3.11"}}
          - python_file: {{relative_path: defs.py, location_name: newer, python: "3.12"}}
        """)
    if extra:
        text += '  - python_file: {relative_path: defs.py, location_name: extra, python: "3.12"}\n'
    return text


@pytest.fixture(scope="module")
def ui_up(tmp_path_factory: pytest.TempPathFactory, shared_envs_dir: Path) -> Iterator[Up]:
    root = tmp_path_factory.mktemp("dagster-ui")
    (root / "defs.py").write_text(DEFS)
    workspace = root / "workspace.yaml"
    workspace.write_text(workspace_text(shared_envs_dir))
    up = Up(workspace, "--dagster-port", "0")
    try:
        for name in ("older", "newer", "dagster-webserver", "dagster-daemon"):
            up.wait_state(name, "SERVING", timeout=BUILD_TIMEOUT)
        yield up
    finally:
        up.stop()


def webserver(up: Up) -> Webserver:
    return Webserver(up.status()["dagster-webserver"]["url"])


def ui_locations(client: Webserver) -> dict[str, Any]:
    try:
        return client.locations(10)
    except WebserverError as exc:
        return {"error": str(exc)}


def wait_loaded(client: Webserver, names: set[str], timeout: float) -> dict[str, Any]:
    def loaded() -> dict[str, Any] | None:
        found = ui_locations(client)
        ok = all(getattr(found.get(n), "loaded", False) for n in names)
        return found if ok else None

    found = wait_for(
        loaded, timeout, f"{sorted(names)} LOADED in the webserver", lambda: ui_locations(client)
    )
    return cast(dict[str, Any], found)


def test_the_webserver_shows_both_locations_loaded(ui_up: Up) -> None:
    status = ui_up.status()
    web, daemon = status["dagster-webserver"], status["dagster-daemon"]
    assert web["runtime"] == daemon["runtime"] == "system", (web, daemon)
    assert web["url"].startswith("http://127.0.0.1:"), web
    assert daemon["url"] is None and daemon["pid"], daemon
    assert status["older"]["python"].startswith("3.11"), status["older"]
    assert status["newer"]["python"].startswith("3.12"), status["newer"]
    assert status["older"]["dagster_version"].startswith("1.13."), status["older"]
    assert status["older"]["warning"] is None, status["older"]
    found = wait_loaded(webserver(ui_up), {"older", "newer"}, 60)
    assert set(found) == {"older", "newer"}, found
    shown = cli("status", "-w", str(ui_up.workspace_file)).stdout
    assert f"dagster-webserver: {web['url']}" in shown, shown


def test_a_run_launched_in_the_ui_runs_in_its_location(ui_up: Up) -> None:
    client = webserver(ui_up)
    wait_loaded(client, {"newer"}, 60)
    selector = {
        "repositoryLocationName": "newer",
        "repositoryName": "__repository__",
        "jobName": "__ASSET_JOB",
    }
    launched = client.graphql(LAUNCH, 30, p={"selector": selector})["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    run_id = launched["run"]["runId"]

    def ended() -> str | None:
        status = client.graphql(RUN_STATUS, 10, id=run_id)["runOrError"].get("status")
        return status if status in ("SUCCESS", "FAILURE", "CANCELED") else None

    final = wait_for(ended, RUN_TIMEOUT, f"run {run_id} to end", lambda: ui_up.log(60))
    assert final == "SUCCESS", ui_up.log(80)
    # Its events went through the location's own server: they are in its log.
    logs = cli("logs", "newer", "-n", "2000", "-w", str(ui_up.workspace_file)).stdout
    mine = [line for line in logs.splitlines() if run_id in line]
    assert any("RUN_SUCCESS" in line for line in mine), logs[-3000:]
    assert any("ASSET_MATERIALIZATION" in line for line in mine), logs[-3000:]


def test_a_killed_location_is_loaded_again_without_a_reload(ui_up: Up) -> None:
    client = webserver(ui_up)
    before = wait_loaded(client, {"older"}, 60)["older"]
    pid = ui_up.wait_state("older", "SERVING")["pid"]
    killed_at = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    ui_up.wait(
        "older",
        lambda e: e["state"] == "SERVING" and e["pid"] not in (None, pid),
        120,
        "SERVING again with a new pid",
    )
    serving_at = time.monotonic()

    def followed() -> Any:
        now = ui_locations(client).get("older")
        changed = now is not None and getattr(now, "version_key", "") != before.version_key
        return now if changed and now.loaded else None

    wait_for(followed, 5.0, "the webserver to load the new server", lambda: ui_locations(client))
    print(
        f"killed -> LOADED from the new server: {time.monotonic() - killed_at:.2f}s"
        f" (of which after SERVING: {time.monotonic() - serving_at:.2f}s)"
    )
    assert "asked it to reload" not in ui_up.log(400), ui_up.log(80)


def test_a_zero_downtime_restart_is_a_code_update_in_the_ui_never_an_error(ui_up: Up) -> None:
    client = webserver(ui_up)
    before = wait_loaded(client, {"newer"}, 60)["newer"]
    seen: list[object] = []
    done_watching = threading.Event()

    def watch() -> None:
        while not done_watching.is_set():
            entry = ui_locations(client).get("newer")
            if not getattr(entry, "loaded", False):
                seen.append(entry)
            done_watching.wait(0.1)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        done = cli("restart", "newer", "-w", str(ui_up.workspace_file))
        assert done.returncode == 0, done.stdout + done.stderr

        def updated() -> bool:
            now = ui_locations(client).get("newer")
            return bool(getattr(now, "loaded", False)) and now.version_key != before.version_key

        wait_for(
            updated, 10.0, "the webserver to load the new server", lambda: ui_locations(client)
        )
    finally:
        done_watching.set()
        watcher.join(5)
    assert not seen, seen


def test_dagster_workspace_names_the_file_the_url_and_the_instance(ui_up: Up) -> None:
    done = cli("dagster", "workspace", "--json", "-w", str(ui_up.workspace_file))
    assert done.returncode == 0, done.stderr
    info = json.loads(done.stdout)
    state = ui_up.workspace_file.parent / ".supervisor" / "dagster"
    assert info["path"] == str(state / "workspace.yaml"), info
    assert info["dagster_home"] == str(state), info
    assert info["webserver_url"] == ui_up.status()["dagster-webserver"]["url"], info
    assert (state / "dagster.yaml").is_file()
    entries = yaml.safe_load(Path(info["path"]).read_text())["load_from"]
    sockets = {e["grpc_server"]["location_name"]: e["grpc_server"]["socket"] for e in entries}
    assert set(sockets) == {"older", "newer"}, entries
    for path in sockets.values():
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path
    plain = cli("dagster", "workspace", "-w", str(ui_up.workspace_file)).stdout.strip()
    assert plain == info["path"]


def test_a_location_added_and_removed_by_reload_comes_and_goes_in_the_ui(
    ui_up: Up, shared_envs_dir: Path
) -> None:
    client = webserver(ui_up)
    workspace = ui_up.workspace_file
    workspace.write_text(workspace_text(shared_envs_dir, extra=True))
    done = cli("reload", "-w", str(workspace))
    assert done.returncode == 0, done.stdout + done.stderr
    wait_loaded(client, {"older", "newer", "extra"}, 60)
    workspace.write_text(workspace_text(shared_envs_dir))
    done = cli("reload", "-w", str(workspace))
    assert done.returncode == 0, done.stdout + done.stderr
    wait_for(
        lambda: "extra" not in ui_locations(client),
        30,
        "extra to leave the webserver",
        lambda: ui_locations(client),
    )


def test_check_judges_each_dagster_location_beside_the_webserver(ui_up: Up) -> None:
    done = cli("check", "-w", str(ui_up.workspace_file), "--json", "--settle", "0")
    assert done.returncode == 0, done.stdout + done.stderr
    verdicts = {(r["location"], r["check"]): r for r in json.loads(done.stdout)}
    for name in ("older", "newer"):
        verdict = verdicts[(name, "dagster_ui")]
        assert verdict["ok"] and "compatible" in verdict["detail"], verdict


def test_the_dashboard_shows_the_webserver_daemon_and_dagster_definitions(
    ui_up: Up, tmp_path: Path
) -> None:
    url = dashboard_entry(ui_up.workspace_file)["url"]
    driver = chromium()
    try:
        page = Page(driver, url)
        page.open("/")
        names = [tr.get_attribute("data-name") for tr in page.all("#locations tbody tr")]
        assert names == ["older", "newer", "dagster-webserver", "dagster-daemon"]
        webserver_row = page.find('#locations tr[data-name="dagster-webserver"]')
        assert "system" in webserver_row.text and "SERVING" in webserver_row.text
        link = webserver_row.find_element(By.CSS_SELECTOR, "a.ext")
        assert link.get_attribute("href").rstrip("/") == ui_up.status()["dagster-webserver"][
            "url"
        ].rstrip("/")
        page.screenshot(tmp_path, "deployment-dagster")
        # A Dagster location's definitions, read through its own server, drawn as a graph.
        page.open("/locations/newer")
        page.wait(lambda: len(page.all("#graph svg g.node")) == 2, "two asset nodes")
        edges = [
            (e.get_attribute("data-from"), e.get_attribute("data-to")) for e in page.all(".edge")
        ]
        assert edges == [("numbers", "total")]
        assert "dagster" in page.text(".facts")
        page.screenshot(tmp_path, "location-dagster")
    finally:
        driver.quit()


def test_down_leaves_no_process_behind(ui_up: Up) -> None:
    """Last in this module: it stops the module's `up`."""
    status = ui_up.status()
    pids = {ui_up.proc.pid}
    for entry in status.values():
        if entry["pid"]:
            pids.add(entry["pid"])
            with contextlib.suppress(psutil.Error):
                pids |= {c.pid for c in psutil.Process(entry["pid"]).children(recursive=True)}
    assert len(pids) >= 5, status  # up, two servers, the webserver and the daemon
    done = cli("down", "-w", str(ui_up.workspace_file))
    assert done.returncode == 0, done.stdout + done.stderr
    wait_for(
        lambda: all(pid_gone(p) for p in pids),
        30,
        "every process to end",
        lambda: [p for p in pids if not pid_gone(p)],
    )
