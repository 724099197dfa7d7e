"""The dashboard `up` serves, in a real headless Chromium against a real `supervisor up`:
live states, buttons, the lineage graph, runs streamed as they happen, environments."""

from __future__ import annotations

import os
import re
import signal
import textwrap
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By

from tests.browser import Page, chromium
from tests.helpers import EXAMPLES
from tests.uphelp import Up, cli, dashboard_entry

# Above the inner waits: building the environments (shared with the session) and starting.
pytestmark = pytest.mark.timeout(600)

GATED = """
import os
import time
from pathlib import Path

from supervisor import Definitions, asset


@asset(group_name="gate")
def opened():
    \"\"\"Waits until the test opens the gate, so the run is seen while it runs.\"\"\"
    gate = Path(os.environ["GATE_FILE"])
    deadline = time.monotonic() + 120
    while not gate.exists():
        if time.monotonic() > deadline:
            raise TimeoutError("the gate was never opened")
        time.sleep(0.02)
    return 1


@asset(group_name="gate")
def after(opened):
    return opened + 1


@asset
def broken():
    raise ValueError("broken on purpose: the dashboard shows this traceback")


defs = Definitions(assets=[opened, after, broken])
"""

UNLOADABLE = """
raise RuntimeError("this location cannot load, on purpose")
"""

# The page records every state its rows take, to show what it saw without a reload.
OBSERVE_STATES = """
window.seenStates = [];
window.notReloaded = true;
const body = document.querySelector('#locations tbody');
new MutationObserver((changes) => {
  for (const change of changes) {
    const tr = change.target;
    window.seenStates.push(tr.dataset.name + ':' + tr.dataset.state);
  }
}).observe(body, {attributes: true, subtree: true, attributeFilter: ['data-state']});
"""


@pytest.fixture(scope="module")
def dashboard(
    tmp_path_factory: pytest.TempPathFactory, shared_envs_dir: Path
) -> Iterator[tuple[Up, Page, Path]]:
    root = tmp_path_factory.mktemp("dashboard")
    (root / "gated.py").write_text(GATED)
    (root / "unloadable.py").write_text(UNLOADABLE)
    workspace = root / "workspace.yaml"
    workspace.write_text(
        textwrap.dedent(
            f"""
            envs_dir: {shared_envs_dir}
            defaults:
              health: {{interval: 0.5, timeout: 1}}
            load_from:
              - python_module:
                  module_name: hello_location
                  working_directory: {EXAMPLES}
                  location_name: hello
                  python: "3.8"
                  restart: {{backoff_initial: 1.5}}
              - python_file:
                  relative_path: gated.py
                  location_name: gated
                  env: {{GATE_FILE: {root / "gate"}}}
              - python_file:
                  relative_path: unloadable.py
                  location_name: unloadable
            """
        )
    )
    up = Up(workspace, "--ui-port", "0")
    driver = None
    try:
        up.wait_state("hello", "SERVING", timeout=300)
        up.wait_state("gated", "SERVING", timeout=300)
        up.wait_state("unloadable", "LOAD_ERROR", timeout=300)
        url = dashboard_entry(workspace)["url"]
        driver = chromium()
        yield up, Page(driver, url), root
    finally:
        if driver is not None:
            driver.quit()
        up.stop()


def row_state(page: Page, name: str) -> str | None:
    rows = page.all(f'#locations tr[data-name="{name}"]')
    return rows[0].get_attribute("data-state") if rows else None


def test_ui_prints_the_address(dashboard, tmp_path: Path) -> None:
    up, page, _ = dashboard
    plain = cli("ui", "-w", str(up.workspace_file))
    assert plain.returncode == 0, plain.stderr
    assert plain.stdout.strip() == page.base + "/"
    assert plain.stdout.startswith("http://127.0.0.1:")
    assert "dashboard: http://127.0.0.1:" in up.log(400)


def test_deployment_lists_every_location_with_its_state(dashboard, tmp_path: Path) -> None:
    up, page, _ = dashboard
    page.open("/")
    page.wait(lambda: row_state(page, "hello") == "SERVING", "hello SERVING on the page")
    names = [tr.get_attribute("data-name") for tr in page.all("#locations tbody tr")]
    assert names == ["hello", "gated", "unloadable"]
    hello = page.find('#locations tr[data-name="hello"]')
    assert hello.find_element(By.CSS_SELECTOR, '[data-field="state"]').text == "SERVING"
    assert "good" in hello.find_element(By.CSS_SELECTOR, '[data-field="state"]').get_attribute(
        "class"
    )
    status = up.status()
    assert hello.find_element(By.CSS_SELECTOR, '[data-field="python"]').text == "3.8.18"
    assert hello.find_element(By.CSS_SELECTOR, '[data-field="pid"]').text == str(
        status["hello"]["pid"]
    )
    # The process figures arrive: RSS in MiB, CPU in percent.
    page.wait(
        lambda: "MiB" in hello.find_element(By.CSS_SELECTOR, '[data-field="rss"]').text,
        "hello's RSS",
    )
    assert row_state(page, "unloadable") == "LOAD_ERROR"
    shot = page.screenshot(tmp_path, "deployment")
    print(f"screenshot: {shot}")


def test_the_last_error_opens_its_whole_traceback(dashboard) -> None:
    _, page, _ = dashboard
    page.open("/")
    link = page.find('#locations tr[data-name="unloadable"] [data-field="last_error"]')
    page.wait(lambda: link.text, "the last error of unloadable", seen=lambda: link.text)
    link.click()
    dialog = page.find("#detail")
    page.wait(lambda: dialog.get_attribute("open") is not None, "the traceback dialog to open")
    text = page.find("#detail-text").text
    assert "Traceback" in text and "this location cannot load, on purpose" in text
    assert page.find("#detail-title").text == "unloadable"


def test_a_killed_location_turns_backoff_then_serving_without_a_reload(dashboard) -> None:
    up, page, _ = dashboard
    page.open("/")
    page.wait(lambda: row_state(page, "hello") == "SERVING", "hello SERVING on the page")
    page.js(OBSERVE_STATES)
    pid = up.status()["hello"]["pid"]
    os.kill(pid, signal.SIGKILL)

    def seen() -> object:
        return page.js("return window.seenStates")

    page.wait(lambda: "hello:BACKOFF" in seen(), "hello BACKOFF on the page", seen=seen)
    page.wait(lambda: seen()[-1:] == ["hello:SERVING"], "hello SERVING again", seen=seen)
    assert page.js("return window.notReloaded") is True, "the page was reloaded"
    cell = page.find('#locations tr[data-name="hello"] [data-field="pid"]')
    page.wait(lambda: cell.text.isdigit() and cell.text != str(pid), "hello's new pid on the page")
    assert cell.text == str(up.status()["hello"]["pid"])
    restarts = page.find('#locations tr[data-name="hello"] [data-field="restarts"]').text
    assert int(restarts) >= 1


def test_the_restart_button_restarts_the_location(dashboard) -> None:
    up, page, _ = dashboard
    page.open("/")
    page.wait(lambda: row_state(page, "hello") == "SERVING", "hello SERVING on the page")
    page.js(OBSERVE_STATES)
    before = up.status()["hello"]["pid"]
    page.find('#locations tr[data-name="hello"] button[data-action="restart"]').click()
    cell = page.find('#locations tr[data-name="hello"] [data-field="pid"]')

    def restarted() -> bool:
        pid = up.status().get("hello", {}).get("pid")
        return bool(pid and pid != before and cell.text == str(pid)) and (
            row_state(page, "hello") == "SERVING"
        )

    page.wait(restarted, "a new pid for hello, serving", seen=lambda: page.js("return seenStates"))
    assert page.js("return window.notReloaded") is True


def test_location_page_draws_the_lineage_and_lists_definitions(dashboard, tmp_path: Path) -> None:
    _, page, _ = dashboard
    page.open("/locations/hello")
    page.wait(lambda: len(page.all("#graph svg g.node")) == 3, "three asset nodes in the graph")
    edges = {(e.get_attribute("data-from"), e.get_attribute("data-to")) for e in page.all(".edge")}
    assert edges == {("names", "greetings"), ("greetings", "greeting_count")}
    # A layered layout: each asset is drawn right of what it depends on.
    x = {node.get_attribute("data-key"): node.rect["x"] for node in page.all("#graph svg g.node")}
    assert x["names"] < x["greetings"] < x["greeting_count"]
    groups = [g.get_attribute("data-group") for g in page.all(".groups [data-group]")]
    assert groups == ["default", "people"]
    assert sorted(c.text for c in page.all(".cluster-label")) == ["default", "people"]
    assert page.text("#resources") == "greeting"
    schedule = page.find('#schedules tr[data-schedule="daily_greetings"]')
    assert "0 6 * * *" in schedule.text and "UTC" in schedule.text
    # The log, live: the code server's start is in it.
    page.wait(lambda: "Started code server" in page.text("#log"), "the location's log")
    shot = page.screenshot(tmp_path, "location")
    print(f"screenshot: {shot}")


def test_a_run_started_on_the_location_page_streams_its_events(dashboard, tmp_path: Path) -> None:
    _, page, root = dashboard
    gate = root / "gate"
    gate.unlink(missing_ok=True)
    page.open("/locations/gated")
    page.wait(lambda: len(page.all("#graph svg g.node")) == 3, "three asset nodes")
    for key in ("opened", "after"):
        page.find(f'#graph g.node[data-key="{key}"]').click()
    assert page.text("#selected-count") == "2"
    assert page.find('.groups input[value="after"]').is_selected()
    page.find("#materialize-selected").click()
    page.wait(lambda: "/runs/" in page.driver.current_url, "the run's page")
    page.js("window.notReloaded = true;")

    def event_types() -> list[str]:
        return [tr.find_elements(By.TAG_NAME, "td")[1].text for tr in page.all("#events tbody tr")]

    page.wait(lambda: "STEP_START" in event_types(), "the first step's start", seen=event_types)
    assert page.text("#run-status") == "STARTED"
    assert "STEP_SUCCESS" not in event_types()
    gate.touch()
    page.wait(lambda: "RUN_SUCCESS" in event_types(), "the run's end, live", seen=event_types)
    page.wait(lambda: page.text("#run-status") == "SUCCESS", "the status SUCCESS")
    assert page.js("return window.notReloaded") is True, "the page was reloaded"
    assert event_types().count("STEP_SUCCESS") == 2
    bars = page.all("#timeline rect.bar-step")
    assert [b.get_attribute("data-step") for b in bars] == ["opened", "after"]
    assert all("STEP_SUCCESS" in b.get_attribute("class") for b in bars)
    shot = page.screenshot(tmp_path, "run")
    print(f"screenshot: {shot}")


def test_a_failed_run_shows_its_traceback(dashboard) -> None:
    _, page, _ = dashboard
    page.open("/locations/gated")
    page.wait(lambda: page.all('button.materialize-one[data-asset="broken"]'), "broken's button")
    page.find('button.materialize-one[data-asset="broken"]').click()
    page.wait(lambda: "/runs/" in page.driver.current_url, "the run's page")
    page.wait(lambda: page.text("#run-status") == "FAILURE", "the status FAILURE")
    page.wait(lambda: page.all("#failures pre.traceback"), "the failure's traceback")
    traceback = page.text("#failures pre.traceback")
    assert "ValueError: broken on purpose" in traceback
    bar = page.find('#timeline rect.bar-step[data-step="broken"]')
    assert "STEP_FAILURE" in bar.get_attribute("class")


def test_runs_list_filters(dashboard, tmp_path: Path) -> None:
    _, page, _ = dashboard
    page.open("/runs?status=FAILURE")
    statuses = {tr.get_attribute("data-status") for tr in page.all("#runs tbody tr")}
    assert statuses == {"FAILURE"}
    page.open("/runs?location=gated")
    rows = page.all("#runs tbody tr")
    assert {tr.get_attribute("data-status") for tr in rows} >= {"SUCCESS", "FAILURE"}
    assert all("gated" in tr.text and "manual" in tr.text for tr in rows)
    page.open("/runs?location=hello")
    assert page.all("#no-runs"), page.text()
    page.open("/runs")
    shot = page.screenshot(tmp_path, "runs")
    print(f"screenshot: {shot}")


def test_environments_lists_each_with_its_distributions(dashboard, tmp_path: Path) -> None:
    up, page, _ = dashboard
    page.open("/environments")
    status = up.status()
    rows = {tr.get_attribute("data-env"): tr for tr in page.all("#environments tbody tr")}
    mine = {name: tr for name, tr in rows.items() if status["hello"]["env"] in name}
    assert len(mine) == 1, list(rows)
    hello = next(iter(mine.values()))
    assert "3.8.18" in hello.text and "hello" in hello.text
    hello.find_element(By.TAG_NAME, "summary").click()
    listed = hello.find_element(By.CSS_SELECTOR, "details ul").text
    assert "grpcio==" in listed and "protobuf==" in listed
    shot = page.screenshot(tmp_path, "environments")
    print(f"screenshot: {shot}")


def test_loopback_answers_only_its_own_names_and_static_files_are_cached(dashboard) -> None:
    _, page, _ = dashboard
    port = page.base.rsplit(":", 1)[1]
    # A page of another site that rebinds its name to 127.0.0.1 sends its own Host.
    rebound = urllib.request.Request(page.base + "/", headers={"Host": f"evil.example:{port}"})
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(rebound, timeout=10)
    assert caught.value.code == 421
    with urllib.request.urlopen(page.base + "/", timeout=10) as response:
        html = response.read().decode()
        assert response.headers["Cache-Control"] == "no-store"
    css = re.search(r'href="(/static/[0-9a-f]{12}/app\.css)"', html)
    assert css, html[:500]
    with urllib.request.urlopen(page.base + css.group(1), timeout=10) as response:
        assert "immutable" in response.headers["Cache-Control"]
        assert response.headers["Content-Type"].startswith("text/css")
