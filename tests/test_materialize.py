"""Runs through a real `up` with locations on CPython 3.8 and 3.13: events, values, failures,
cancellation, concurrency, and the run records that outlive the supervisor."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import signal
import subprocess
import textwrap
import threading
from pathlib import Path

import pytest

from supervisor._proto import codeserver_pb2 as cs
from supervisor._proto_host import control_pb2 as pb
from supervisor.control.client import ControlClient
from tests.helpers import FIXTURES, pid_gone, process_states, wait_for
from tests.uphelp import SUPERVISOR, Up, cli

# Above the longest chain of inner waits (two starts of up to 120 s each in the shared
# fixture, then a test's own calls), so that the wait that ran out is what a slow run reports.
pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory, shared_envs_dir: Path):
    root = tmp_path_factory.mktemp("runs")
    workspace = root / "workspace.yaml"
    workspace.write_text(
        textwrap.dedent(f"""
        envs_dir: {shared_envs_dir}
        defaults:
          health: {{interval: 0.3, timeout: 1}}
          drain_timeout: 3
        load_from:
          - python_file:
              relative_path: {FIXTURES / "runs_location.py"}
              location_name: old
              python: "3.8"
              env: {{SLOW_MARKER: "{root / "old-slow"}"}}
          - python_file:
              relative_path: {FIXTURES / "runs_location.py"}
              location_name: new
              python: "3.13"
              env: {{SLOW_MARKER: "{root / "new-slow"}"}}
    """)
    )
    up = Up(workspace)
    try:
        for name in ("old", "new"):
            up.wait_state(name, "SERVING", timeout=120)
        yield up, root
    finally:
        up.stop()


def materialize(up: Up, *args: str) -> subprocess.CompletedProcess[str]:
    return cli("materialize", "-w", str(up.workspace_file), *args)


def events_of(up: Up, run_id: str) -> list[dict]:
    out = cli("runs", "show", run_id, "--json", "-w", str(up.workspace_file))
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)["events"]


def run_id_of(output: str) -> str:
    return output.strip().splitlines()[-1].split()[1].rstrip(":")


@pytest.mark.parametrize("location", ["old", "new"])
def test_a_chain_runs_in_order_and_later_runs_reuse_values(running, location: str) -> None:
    up, _ = running
    values = up.workspace_file.parent / ".supervisor" / "values" / location
    # Other tests on this shared `up` store values too: start from none stored.
    shutil.rmtree(values, ignore_errors=True)
    out = materialize(up, "total", "-l", location)
    assert out.returncode == 0, out.stdout + out.stderr
    run_id = run_id_of(out.stdout)
    kinds = [(e["type"], e["step"]) for e in events_of(up, run_id)]
    assert kinds[0] == ("RUN_START", "") and kinds[-1] == ("RUN_SUCCESS", "")
    starts = [step for kind, step in kinds if kind == "STEP_START"]
    assert starts == ["numbers", "doubled", "total"]
    logs = [e for e in events_of(up, run_id) if e["type"] == "LOG"]
    assert logs and logs[0]["message"] == "adding 3 numbers" and logs[0]["step"] == "total"
    assert pickle.loads((values / "total.pickle").read_bytes()) == 60  # the resource was used
    materialization = next(
        e
        for e in events_of(up, run_id)
        if e["type"] == "ASSET_MATERIALIZATION" and e["step"] == "doubled"
    )
    assert materialization["metadata"]["length"] == "3"

    again = materialize(up, "total", "-l", location)
    assert again.returncode == 0
    steps = [e["step"] for e in events_of(up, run_id_of(again.stdout)) if e["type"] == "STEP_START"]
    assert steps == ["total"], "stored upstream values are loaded, not recomputed"
    everything = materialize(up, "total", "-l", location, "--upstream")
    steps = [
        e["step"] for e in events_of(up, run_id_of(everything.stdout)) if e["type"] == "STEP_START"
    ]
    assert steps == ["numbers", "doubled", "total"]


def test_an_asset_that_raises_fails_the_run_not_the_server(running) -> None:
    up, _ = running
    pid = up.status()["old"]["pid"]
    out = materialize(up, "explodes", "-l", "old")
    assert out.returncode == 1
    assert "ValueError: this asset fails on purpose" in out.stdout
    events = events_of(up, run_id_of(out.stdout))
    failure = next(e for e in events if e["type"] == "STEP_FAILURE")
    assert failure["step"] == "explodes"
    assert "Traceback (most recent call last)" in failure["traceback"]
    assert events[-1]["type"] == "RUN_FAILURE"
    assert up.status()["old"] == {**up.status()["old"], "state": "SERVING", "pid": pid}


def test_a_segfaulting_asset_fails_the_run_and_the_server_stays(running) -> None:
    up, _ = running
    before = up.status()["new"]
    out = materialize(up, "segfaults", "-l", "new")
    assert out.returncode == 1
    events = events_of(up, run_id_of(out.stdout))
    assert events[-1]["type"] == "RUN_FAILURE"
    assert "killed by SIGSEGV" in events[-1]["error"]
    assert any(e["type"] == "STEP_FAILURE" and e["step"] == "segfaults" for e in events)
    after = up.status()["new"]
    assert (after["state"], after["pid"], after["restarts"]) == (
        "SERVING",
        before["pid"],
        before["restarts"],
    )


def test_an_unknown_asset_lists_the_known_ones(running) -> None:
    up, _ = running
    out = materialize(up, "nope")
    assert out.returncode == 2, "a name that is not there is a usage error"
    assert "unknown asset 'nope'; known: old.numbers" in out.stderr
    several = materialize(up, "numbers")
    assert several.returncode == 2
    assert "asset 'numbers' is in several locations (old, new); pick one with -l" in several.stderr
    qualified = materialize(up, "new.numbers")
    assert qualified.returncode == 0, qualified.stderr
    assert "Started execution of step numbers" in qualified.stdout


def test_two_runs_in_two_locations_at_once(running) -> None:
    up, _ = running
    results: dict[str, subprocess.CompletedProcess[str]] = {}
    threads = [
        threading.Thread(
            target=lambda n=n: results.__setitem__(
                n, materialize(up, "total", "-l", n, "--upstream")
            )
        )
        for n in ("old", "new")
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(150)  # each materialize call has its own 120 s deadline
        assert not thread.is_alive(), f"{thread.name} did not finish"
    assert {n: r.returncode for n, r in results.items()} == {"old": 0, "new": 0}


def test_cancel_stops_the_worker(running) -> None:
    up, root = running
    marker = root / "new-slow"
    marker.unlink(missing_ok=True)
    proc = subprocess.Popen(
        [SUPERVISOR, "materialize", "slow", "-l", "new", "-w", str(up.workspace_file)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(marker.exists, 60, "the slow asset to start", up.log)
        worker = int(marker.read_text())
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 130
        wait_for(
            lambda: pid_gone(worker), 10, f"worker {worker} to stop", lambda: process_states(worker)
        )
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    runs = json.loads(
        cli("runs", "--json", "--status", "canceled", "-w", str(up.workspace_file)).stdout
    )
    assert runs and runs[0]["selection"] == ["slow"] and runs[0]["location"] == "new"
    assert up.status()["new"]["state"] == "SERVING"


def test_server_killed_during_a_slow_asset_fails_the_run(running) -> None:
    up, root = running
    marker = root / "old-slow"
    marker.unlink(missing_ok=True)
    server = up.status()["old"]["pid"]
    proc = subprocess.Popen(
        [SUPERVISOR, "materialize", "slow", "-l", "old", "-w", str(up.workspace_file)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(marker.exists, 60, "the slow asset to start", up.log)
        worker = int(marker.read_text())
        os.kill(server, signal.SIGKILL)
        out, _ = proc.communicate(timeout=30)
        assert proc.returncode == 1
        assert "went away during the run" in out
        wait_for(
            lambda: pid_gone(worker),
            10,
            f"orphaned worker {worker} to stop",
            lambda: process_states(worker),
        )
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    after = up.wait(
        "old", lambda e: e["state"] == "SERVING" and e["pid"] not in (None, server), 60, "a restart"
    )
    assert after["restarts"] >= 1
    (latest, *_) = json.loads(
        cli("runs", "--json", "--location", "old", "-w", str(up.workspace_file)).stdout
    )
    assert latest["status"] == "FAILURE" and "went away during the run" in latest["reason"]


def test_runs_outlive_the_supervisor(running, tmp_path: Path) -> None:
    up, _ = running
    with ControlClient(up.workspace_file) as client:
        events = list(
            client.events(
                client.stream(
                    "Materialize", pb.MaterializeRequest(assets=["numbers"], location="new")
                )
            )
        )
    assert events[-1].type == cs.RUN_SUCCESS
    run_id = events[-1].run_id
    listed = json.loads(cli("runs", "--json", "-w", str(up.workspace_file)).stdout)
    assert listed[0]["id"] == run_id and listed[0]["status"] == "SUCCESS"
    assert listed[0]["started_at"].endswith("Z") and listed[0]["ended_at"].endswith("Z")
    shown = cli("runs", "show", run_id[:8], "-w", str(up.workspace_file))
    assert shown.returncode == 0 and "RUN_SUCCESS" in shown.stdout


def test_runs_are_listed_after_a_restart_and_none_stays_started(
    tmp_path: Path, shared_envs_dir: Path
) -> None:
    marker = tmp_path / "slow"
    workspace = tmp_path / "workspace.yaml"
    workspace.write_text(
        textwrap.dedent(f"""
        envs_dir: {shared_envs_dir}
        load_from:
          - python_file:
              relative_path: {FIXTURES / "runs_location.py"}
              location_name: solo
              env: {{SLOW_MARKER: "{marker}"}}
    """)
    )
    up = Up(workspace)
    try:
        up.wait_state("solo", "SERVING", timeout=120)
        assert materialize(up, "numbers").returncode == 0
        slow = subprocess.Popen(
            [SUPERVISOR, "materialize", "slow", "-w", str(workspace)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(marker.exists, 60, "the slow asset to start", up.log)
        os.kill(up.proc.pid, signal.SIGKILL)  # the supervisor dies mid-run
        up.proc.wait(10)
        slow.wait(30)
    finally:
        up.stop()
    again = Up(workspace)
    try:
        again.wait_state("solo", "SERVING", timeout=60)
        listed = json.loads(cli("runs", "--json", "-w", str(workspace)).stdout)
        assert [(r["selection"], r["status"]) for r in listed] == [
            (["slow"], "FAILURE"),
            (["numbers"], "SUCCESS"),
        ]
        assert "supervisor stopped while the run was in progress" in listed[0]["reason"]
        shown = cli("runs", "show", listed[1]["id"], "-w", str(workspace))
        assert shown.returncode == 0 and "STEP_SUCCESS" in shown.stdout
    finally:
        again.stop()
