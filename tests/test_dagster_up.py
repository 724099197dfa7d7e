"""Real Dagster code locations under `supervisor up`: `dagster api grpc` in each location's
own environment (built by the supervisor with the real dagster), supervised like ours."""

from __future__ import annotations

import functools
import json
import os
import signal
import stat
import subprocess
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import psutil
import pytest

from tests.conftest import DAGSTER_REQUIREMENT
from tests.helpers import pid_gone, process_states, wait_for
from tests.uphelp import Up, cli

pytestmark = pytest.mark.timeout(900)
cli = functools.partial(cli, timeout=300)
BUILD_TIMEOUT = 600.0  # a cold build downloads dagster and its dependencies

DEFS = """
from dagster import Definitions, ScheduleDefinition, asset, define_asset_job


@asset(group_name="raw")
def numbers():
    return [1, 2, 3]


@asset
def total(numbers):
    return sum(numbers)


everything = define_asset_job("everything", selection="*")
nightly = ScheduleDefinition(name="nightly", cron_schedule="0 3 * * *", job=everything)
defs = Definitions(assets=[numbers, total], jobs=[everything], schedules=[nightly])
"""
BROKEN = """
from dagster import Definitions

raise RuntimeError("the broken Dagster location fails on purpose")
"""


@pytest.fixture(scope="module")
def dagster_up(tmp_path_factory: pytest.TempPathFactory, shared_envs_dir: Path) -> Iterator[Up]:
    root = tmp_path_factory.mktemp("dagster-up")
    (root / "dg_defs.py").write_text(DEFS)
    (root / "dg_broken.py").write_text(BROKEN)
    workspace = root / "workspace.yaml"
    workspace.write_text(
        textwrap.dedent(f"""
        envs_dir: {shared_envs_dir}
        dagster: false  # Dagster's UI has tests of its own (test_dagster_ui.py)
        defaults:
          python: "3.12"
          requirements: ["{DAGSTER_REQUIREMENT}"]
          health: {{interval: 0.5, timeout: 2}}
        load_from:
          - python_file: {{relative_path: dg_defs.py, location_name: dg}}
          - python_file: {{relative_path: dg_broken.py, location_name: dg_broken}}
          - python_file: {{relative_path: dg_defs.py, location_name: dg_ours, runtime: supervisor}}
        """)
    )
    up = Up(workspace)
    try:
        up.wait_state("dg", "SERVING", timeout=BUILD_TIMEOUT)
        yield up
    finally:
        up.stop()


def test_a_dagster_location_serves_its_assets(dagster_up: Up) -> None:
    status = dagster_up.status()["dg"]
    assert status["runtime"] == "dagster", status
    assert status["python"].startswith("3.12"), status
    process = psutil.Process(status["pid"])
    assert "dagster" in " ".join(process.cmdline()) and "grpc" in process.cmdline(), (
        process.cmdline()
    )
    done = cli("ls", "dg", "--json", "-w", str(dagster_up.workspace_file))
    assert done.returncode == 0, done.stderr
    (entry,) = json.loads(done.stdout)
    assets = {a["key"]: a for a in entry["assets"]}
    assert set(assets) == {"numbers", "total"}, entry
    assert assets["total"]["deps"] == ["numbers"]
    assert assets["numbers"]["group"] == "raw"
    assert [s["name"] for s in entry["schedules"]] == ["nightly"]


def test_a_broken_dagster_location_shows_dagsters_error(dagster_up: Up) -> None:
    entry = dagster_up.wait_state("dg_broken", "LOAD_ERROR", timeout=120)
    assert entry["runtime"] == "dagster"
    assert "the broken Dagster location fails on purpose" in entry["load_error"], entry
    assert entry["pid"] is not None, entry  # it serves its error, as --lazy-load-user-code does


def test_a_killed_dagster_server_comes_back_at_the_same_address(dagster_up: Up) -> None:
    before = dagster_up.wait_state("dg", "SERVING")
    os.kill(before["pid"], signal.SIGKILL)
    after = dagster_up.wait(
        "dg",
        lambda e: e["state"] == "SERVING" and e["pid"] not in (None, before["pid"]),
        120,
        "SERVING again with a new pid",
    )
    assert after["address"] == before["address"], (before, after)
    assert after["restarts"] == before["restarts"] + 1, after


def test_no_dagster_server_outlives_a_killed_up(tmp_path: Path, shared_envs_dir: Path) -> None:
    (tmp_path / "dg_defs.py").write_text(DEFS)
    workspace = tmp_path / "workspace.yaml"
    workspace.write_text(
        textwrap.dedent(f"""
        envs_dir: {shared_envs_dir}
        dagster: false  # Dagster's UI has tests of its own (test_dagster_ui.py)
        load_from:
          - python_file: {{relative_path: dg_defs.py, location_name: lone, python: "3.12",
                           requirements: ["{DAGSTER_REQUIREMENT}"]}}
        """)
    )
    up = Up(workspace)
    try:
        pid = up.wait_state("lone", "SERVING", timeout=BUILD_TIMEOUT)["pid"]
        os.kill(up.proc.pid, signal.SIGKILL)
        # The kernel's parent-death signal (SIGTERM) reaches it at once; Dagster then stops
        # gracefully, which on a loaded machine has taken more than 2 s.
        wait_for(
            lambda: pid_gone(pid), 10.0, "the Dagster server to end", lambda: process_states(pid)
        )
    finally:
        up.stop(signal.SIGKILL)


def test_check_passes_a_dagster_location_and_fails_one_changed_behind_its_back(
    tmp_path: Path,
) -> None:
    """`check` judges a Dagster location by the facts its interpreter gives and by
    Dagster's own answer; a requirement changed inside the built environment fails it."""
    (tmp_path / "dg_defs.py").write_text(DEFS)
    workspace = tmp_path / "workspace.yaml"
    workspace.write_text(
        textwrap.dedent(f"""
        envs_dir: envs  # its own: this test changes what is installed there
        dagster: false
        load_from:
          - python_file: {{relative_path: dg_defs.py, location_name: judged, python: "3.12",
                           requirements: ["{DAGSTER_REQUIREMENT}", "pyflakes==3.1.0"]}}
        """)
    )
    good = cli("check", "-w", str(workspace), "--json", "--settle", "0", timeout=BUILD_TIMEOUT)
    assert good.returncode == 0, good.stdout + good.stderr
    results = {r["check"]: r for r in json.loads(good.stdout)}
    assert all(r["ok"] for r in results.values()), results
    assert "2 assets" in results["definitions"]["detail"], results["definitions"]
    env = cli("env", "path", "judged", "-w", str(workspace)).stdout.strip()
    from supervisor.tools import uv_binary

    changed = subprocess.run(
        [
            uv_binary(),
            "pip",
            "install",
            "--quiet",
            "--python",
            f"{env}/bin/python",
            "pyflakes==3.0.1",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert changed.returncode == 0, changed.stderr
    bad = cli("check", "-w", str(workspace), "--json", "--settle", "0")
    assert bad.returncode == 1, bad.stdout + bad.stderr
    verdicts = {r["check"]: r for r in json.loads(bad.stdout)}
    assert not verdicts["requirements"]["ok"], verdicts
    assert "pyflakes" in verdicts["requirements"]["detail"], verdicts["requirements"]
    assert verdicts["definitions"]["ok"], verdicts


def test_materialize_runs_two_chained_dagster_assets_and_records_their_events(
    dagster_up: Up,
) -> None:
    workspace = str(dagster_up.workspace_file)
    done = cli("materialize", "dg.total", "--upstream", "-w", workspace)
    assert done.returncode == 0, done.stdout + done.stderr
    listed = cli("runs", "--json", "--location", "dg", "-w", workspace)
    assert listed.returncode == 0, listed.stderr
    run = json.loads(listed.stdout)[0]
    assert (run["status"], run["trigger"]) == ("SUCCESS", "manual"), run
    shown = cli("runs", "show", run["id"], "--json", "-w", workspace)
    events = json.loads(shown.stdout)["events"]
    materialized = [e["step"] for e in events if e["type"] == "ASSET_MATERIALIZATION"]
    assert materialized == ["numbers", "total"], events
    kinds = [e["type"] for e in events]
    assert kinds.index("RUN_START") < kinds.index("STEP_START") and kinds[-1] == "RUN_SUCCESS"
    # Only the downstream one: its input is read from what the first run stored.
    again = cli("materialize", "total", "-l", "dg", "-w", workspace)
    assert again.returncode == 0, again.stdout + again.stderr


def test_a_restart_keeps_the_address_and_fails_no_call(dagster_up: Up) -> None:
    """A client of the location's address (as a Dagster webserver is) calls ListRepositories
    in a loop through a restart: the new server takes over behind the same address."""
    before = dagster_up.wait_state("dg", "SERVING")
    outcome: dict[str, Any] = {"ok": 0, "errors": []}
    stop = threading.Event()

    def calls() -> None:
        options = [
            ("grpc.initial_reconnect_backoff_ms", 50),
            ("grpc.max_reconnect_backoff_ms", 200),
        ]
        with grpc.insecure_channel(before["address"], options=options) as channel:
            call = channel.unary_unary(
                "/api.DagsterApi/ListRepositories",
                request_serializer=lambda _: b"",
                response_deserializer=lambda data: data,
            )
            while not stop.is_set():
                try:
                    call(None, timeout=10)
                    outcome["ok"] += 1
                except grpc.RpcError as error:
                    outcome["errors"].append(f"{error.code()}: {error.details()}")

    caller = threading.Thread(target=calls, daemon=True)
    caller.start()
    try:
        wait_for(lambda: outcome["ok"] > 5, 30, "calls through the address", lambda: outcome)
        done = cli("restart", "dg", "-w", str(dagster_up.workspace_file))
        assert done.returncode == 0, done.stdout + done.stderr
        after = dagster_up.wait(
            "dg",
            lambda e: e["state"] == "SERVING" and e["pid"] not in (None, before["pid"]),
            120,
            "SERVING from a new server",
        )
        wait_for(lambda: pid_gone(before["pid"]), 60, "the old server to end", lambda: outcome)
        calls_after = outcome["ok"]
        wait_for(
            lambda: outcome["ok"] > calls_after + 5, 30, "calls after the switch", lambda: outcome
        )
    finally:
        stop.set()
        caller.join(30)
    assert after["address"] == before["address"], (before, after)
    assert outcome["errors"] == [], outcome


def test_the_stable_address_is_a_private_socket(dagster_up: Up) -> None:
    path = Path(dagster_up.wait_state("dg", "SERVING")["address"].removeprefix("unix:"))
    assert stat.S_ISSOCK(path.stat().st_mode)
    assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, oct(path.stat().st_mode)
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_our_server_given_a_dagster_location_names_the_runtime_key(dagster_up: Up) -> None:
    entry = dagster_up.wait_state("dg_ours", "LOAD_ERROR", timeout=120)
    assert entry["runtime"] == "supervisor", entry
    assert "holds a dagster.Definitions" in entry["load_error"], entry
    assert "runtime: dagster" in entry["load_error"], entry
