"""Fault tests with real processes: one `up` runs every kind of faulty location beside a healthy
one. Each test checks that the supervisor lives on, that the faulty location ends in the right
state with the right reason, and that the healthy sibling kept answering health checks."""

from __future__ import annotations

import os
import signal
import textwrap
from pathlib import Path

import pytest

from tests.helpers import FIXTURES, pid_gone, process_states, wait_for
from tests.uphelp import HealthMonitor, Up

FAULTS = FIXTURES / "faults"
# Above the longest chain of inner waits (a start of up to 120 s in the shared fixture,
# then up to 90 s for a restart), so that the wait that ran out is what a slow run reports.
pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def faulty(tmp_path_factory: pytest.TempPathFactory, shared_envs_dir: Path):
    root = tmp_path_factory.mktemp("faulty")
    escapee = root / "escapee.pid"
    workspace = root / "workspace.yaml"
    workspace.write_text(
        textwrap.dedent(
            f"""
            envs_dir: {shared_envs_dir}
            defaults:
              heartbeat_timeout: 10
              drain_timeout: 3
              health: {{interval: 0.3, timeout: 1.0, failures: 3}}
              restart: {{backoff_initial: 0.5, backoff_max: 2}}
            load_from:
              - python_file: {{relative_path: {FAULTS}/healthy.py, location_name: healthy}}
              - python_file: {{relative_path: {FAULTS}/healthy.py, location_name: victim}}
              - python_file: {{relative_path: {FAULTS}/segfault_after_start.py,
                               location_name: segfault}}
              - python_file: {{relative_path: {FAULTS}/exit_3_after_start.py, location_name: exit3}}
              - python_file: {{relative_path: {FAULTS}/raise_on_import.py,
                               location_name: import_error}}
              - python_file: {{relative_path: {FAULTS}/hang_on_import.py,
                               location_name: import_hang, startup_timeout: 1.5}}
              - python_file: {{relative_path: {FAULTS}/hang_after_start.py, location_name: hang}}
              - python_file: {{relative_path: {FAULTS}/memory_blowup.py, location_name: memory,
                               memory_limit: 200MiB}}
              - python_file: {{relative_path: {FAULTS}/exit_3_on_import.py,
                               location_name: crash_loop,
                               restart: {{max_restarts: 3, window: 600}}}}
              - python_file: {{relative_path: {FAULTS}/escaping_children.py,
                               location_name: escaper, env: {{ESCAPEE_PID_FILE: "{escapee}"}}}}
            """
        )
    )
    up = Up(workspace)
    try:
        healthy = up.wait_state("healthy", "SERVING", timeout=120)
        monitor = HealthMonitor(healthy["address"])
        yield up, monitor, escapee
        monitor.stop()
    finally:
        up.stop()


def check_alive(up: Up, monitor: HealthMonitor) -> None:
    assert up.proc.poll() is None, "the supervisor must live on"
    assert up.status()["healthy"]["state"] == "SERVING"
    assert monitor.calls > 0
    assert monitor.failures == [], "the healthy sibling must keep answering"


def restarted_after(up: Up, name: str, reason: str) -> dict:
    return up.wait(
        name,
        lambda e: e["restarts"] >= 1 and reason in (e["last_error"] or ""),
        90,
        f"a restart after {reason!r}",
    )


def test_sigkill_restarts_the_location(faulty) -> None:
    up, monitor, _ = faulty
    entry = up.wait_state("victim", "SERVING")
    victim = entry["pid"]
    os.kill(victim, signal.SIGKILL)
    after = up.wait(
        "victim",
        lambda e: e["state"] == "SERVING" and e["pid"] not in (None, victim),
        60,
        "a new process",
    )
    assert after["restarts"] == entry["restarts"] + 1
    assert "killed by SIGKILL" in after["last_error"]
    check_alive(up, monitor)


def test_segfault(faulty) -> None:
    up, monitor, _ = faulty
    restarted_after(up, "segfault", "killed by SIGSEGV")
    check_alive(up, monitor)


def test_os_exit_3(faulty) -> None:
    up, monitor, _ = faulty
    restarted_after(up, "exit3", "exit code 3")
    check_alive(up, monitor)


def test_import_error_is_load_error_not_a_loop(faulty) -> None:
    up, monitor, _ = faulty
    entry = up.wait_state("import_error", "LOAD_ERROR")
    assert "this location is broken on purpose" in entry["load_error"]
    # Meanwhile crash-looping siblings restart several times; this one must not.
    up.wait("exit3", lambda e: e["restarts"] >= 2, 90, "two restarts of a crashing sibling")
    entry = up.status()["import_error"]
    assert (entry["state"], entry["restarts"]) == ("LOAD_ERROR", 0)
    check_alive(up, monitor)


def test_hang_during_import_hits_the_startup_deadline(faulty) -> None:
    up, monitor, _ = faulty
    restarted_after(up, "import_hang", "not ready within the startup timeout of 1.5s")
    check_alive(up, monitor)


def test_hang_after_start_is_detected_and_killed(faulty) -> None:
    up, monitor, _ = faulty
    restarted_after(up, "hang", "health check failed 3 times")
    check_alive(up, monitor)


def test_memory_blowup_past_the_limit(faulty) -> None:
    up, monitor, _ = faulty
    entry = restarted_after(up, "memory", "memory limit exceeded")
    assert "limit 200 MiB" in entry["last_error"]
    check_alive(up, monitor)


def test_crash_loop_backs_off_then_reaches_fatal(faulty) -> None:
    up, monitor, _ = faulty
    entry = up.wait_state("crash_loop", "FATAL", timeout=90)
    assert "exit code 3" in entry["last_error"]
    assert "max_restarts 3" in entry["last_error"]
    assert entry["restarts"] == 3
    assert entry["pid"] is None
    check_alive(up, monitor)


def test_children_that_escape_the_group_are_swept(faulty, tmp_path: Path) -> None:
    up, monitor, escapee = faulty
    up.wait_state("escaper", "SERVING")
    wait_for(escapee.exists, 30, "the escaping grandchild to write its pid", up.log)
    grandchild = int(escapee.read_text())
    assert not pid_gone(grandchild)
    from supervisor._proto_host import control_pb2 as pb
    from supervisor.control.client import ControlClient

    with ControlClient(up.workspace_file, timeout=60) as client:
        reply = client.call("Stop", pb.LocationsRequest(locations=["escaper"]))
    assert [(r.location, r.ok) for r in reply.results] == [("escaper", True)]
    wait_for(
        lambda: pid_gone(grandchild),
        10,
        f"escaped grandchild {grandchild} to be swept",
        lambda: process_states(grandchild),
    )
    check_alive(up, monitor)
