"""Warm standbys (`standby: true`) under a real `supervisor up`: a second server, loaded and
waiting, takes over when the active one is killed and when a restart finds the code
unchanged; a standby that fails to load is reported and never used."""

from __future__ import annotations

import json
import os
import re
import signal
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from supervisor.supervision import statefile
from tests.helpers import EXAMPLES, pid_gone, wait_for
from tests.uphelp import Up, cli

pytestmark = pytest.mark.timeout(600)

READY = re.compile(r"standby ready \(pid (\d+)\)")
# Loads in the first process that imports it, fails in every later one.
FIRST_ONLY = """
import os
from pathlib import Path

from supervisor import Definitions, asset

counter = Path(os.environ["IMPORT_COUNTER"])
imported = int(counter.read_text()) if counter.exists() else 0
counter.write_text(str(imported + 1))
if imported:
    raise RuntimeError("only the first server of this location loads, on purpose")


@asset
def only():
    return 1


defs = Definitions(assets=[only])
"""


def standbys(up: Up) -> list[int]:
    """The pids of every standby the log says became ready, in order."""
    return [int(pid) for pid in READY.findall(up.log_path.read_text(errors="replace"))]


def ready_standby(up: Up, not_pid: int) -> int:
    """Wait for a ready standby that still runs and is not NOT_PID (the active server)."""
    found = wait_for(
        lambda: [p for p in standbys(up) if p != not_pid and not pid_gone(p)],
        120,
        "a standby to be ready",
        lambda: up.log(),
    )
    return int(found[-1])  # type: ignore[index]


@pytest.fixture(scope="module")
def standby_up(tmp_path_factory: pytest.TempPathFactory, shared_envs_dir: Path) -> Iterator[Up]:
    root = tmp_path_factory.mktemp("standby")
    (root / "first_only.py").write_text(FIRST_ONLY)
    workspace = root / "workspace.yaml"
    workspace.write_text(
        textwrap.dedent(
            f"""
            envs_dir: {shared_envs_dir}
            defaults:
              standby: true
              health: {{interval: 0.5, timeout: 1}}
            load_from:
              - python_module:
                  module_name: hello_location
                  working_directory: {EXAMPLES}
                  location_name: hello
                  python: "3.8"
              - python_file:
                  relative_path: first_only.py
                  location_name: first_only
                  env: {{IMPORT_COUNTER: {root / "imports"}}}
            """
        )
    )
    up = Up(workspace, "--no-ui")
    try:
        up.wait_state("hello", "SERVING", timeout=300)
        up.wait_state("first_only", "SERVING", timeout=300)
        yield up
    finally:
        up.stop()


def test_a_killed_server_is_replaced_by_its_standby(standby_up: Up) -> None:
    up = standby_up
    active = up.status()["hello"]["pid"]
    standby = ready_standby(up, active)
    # Both are the location's: in the state file, for the clean-up after a killed `up`.
    state = statefile.read_owner(up.workspace_file.parent / ".supervisor") or {}
    assert {c["pid"] for c in state["children"] if c["location"] == "hello"} == {active, standby}
    os.kill(active, signal.SIGKILL)
    entry = up.wait(
        "hello", lambda e: e["state"] == "SERVING" and e["pid"] == standby, 60, "the standby"
    )
    assert f"the standby (pid {standby}) takes over" in entry["last_error"]
    listed = cli("ls", "hello", "--json", "-w", str(up.workspace_file))
    assert listed.returncode == 0, listed.stderr
    assert [a["key"] for a in json.loads(listed.stdout)[0]["assets"]] == [
        "names",
        "greetings",
        "greeting_count",
    ]
    # Another standby is started for the next time.
    following = ready_standby(up, standby)
    assert following != active


def test_a_restart_of_unchanged_code_switches_to_the_standby(standby_up: Up) -> None:
    up = standby_up
    active = up.status()["hello"]["pid"]
    standby = ready_standby(up, active)
    done = cli("restart", "hello", "-w", str(up.workspace_file))
    assert done.returncode == 0, done.stderr
    entry = up.wait_state("hello", "SERVING")
    assert entry["pid"] == standby, up.log()
    wait_for(lambda: pid_gone(active), 60, "the old server to drain and end")


def test_a_standby_that_cannot_load_is_reported_and_not_used(standby_up: Up) -> None:
    up = standby_up
    wait_for(
        lambda: "first_only" in up.log(400) and "the standby is not used" in up.log(400),
        60,
        "the failed standby to be reported",
        lambda: up.log(),
    )
    assert "only the first server of this location loads" in up.log(400)
    active = up.status()["first_only"]["pid"]
    os.kill(active, signal.SIGKILL)
    # No standby to take over: a fresh start, whose import fails as the standby's did.
    entry = up.wait_state("first_only", "LOAD_ERROR", timeout=60)
    assert "takes over" not in (entry["last_error"] or "")
    assert entry["pid"] != active
