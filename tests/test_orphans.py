"""Nothing started on behalf of a workspace outlives `up` being SIGKILLed: code servers, run
workers, daemons that escaped their server's tree, uv and the builds it runs. What still
carries the workspace's token from a dead supervisor is ended by the next `up`."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from supervisor.supervision.statefile import WORKSPACE_TOKEN, workspace_digest
from tests.helpers import FIXTURES, pid_gone, process_states, wait_for
from tests.uphelp import SUPERVISOR, Up

# Above the longest inner wait (the first build of the environments, up to 300 s).
pytestmark = pytest.mark.timeout(600)
GONE_WITHIN = 2.0

BLOCKING_ASSET = """
import os, time
from supervisor import Definitions, asset

@asset
def held():
    marker = os.environ["RUN_STARTED_MARKER"]
    with open(marker + ".tmp", "w") as handle:
        handle.write(str(os.getpid()))
    os.rename(marker + ".tmp", marker)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        time.sleep(0.05)
    return 1

defs = Definitions(assets=[held])
"""


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text))
    return path


def test_nothing_outlives_a_killed_up(
    tmp_path: Path, shared_envs_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    escapee = tmp_path / "escapee.pid"
    run_started = tmp_path / "run.pid"
    build_started, build_release = tmp_path / "build.pid", tmp_path / "build.release"
    package = tmp_path / "waits_for_release"
    shutil.copytree(FIXTURES / "packages" / "waits_for_release", package)
    write(tmp_path / "runs.py", BLOCKING_ASSET)
    # Inherited by `up` and so by what it starts: the build backend and the asset read them.
    monkeypatch.setenv("BUILD_STARTED_MARKER", str(build_started))
    monkeypatch.setenv("BUILD_RELEASE_MARKER", str(build_release))
    monkeypatch.setenv("RUN_STARTED_MARKER", str(run_started))
    workspace = write(
        tmp_path / "workspace.yaml",
        f"""
        envs_dir: {shared_envs_dir}
        load_from:
          - python_file: {{relative_path: {FIXTURES}/faults/escaping_children.py,
                           location_name: escaper, env: {{ESCAPEE_PID_FILE: "{escapee}"}}}}
          - python_file: {{relative_path: runs.py, location_name: runner}}
          - python_file: {{relative_path: runs.py, location_name: building,
                           requirements: ["waits_for_release @ {package.as_uri()}"]}}
        """,
    )
    up = Up(workspace)
    materialize = None
    try:
        up.wait_state("escaper", "SERVING", timeout=300)
        up.wait_state("runner", "SERVING", timeout=300)
        wait_for(escapee.exists, 30, "the escaped daemon", up.log)
        materialize = subprocess.Popen(
            [SUPERVISOR, "materialize", "held", "-l", "runner", "-w", str(workspace)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(run_started.exists, 60, "the run worker to be running the asset", up.log)
        wait_for(build_started.exists, 120, "the build to be installing", up.log)
        tree = [p.pid for p in psutil.Process(up.proc.pid).children(recursive=True)]
        pids = {
            *tree,
            int(escapee.read_text()),
            int(run_started.read_text()),
            int(build_started.read_text()),
        }
        assert len(tree) >= 4, f"servers, a worker, uv and its build: {tree}"
        up.proc.kill()
        up.proc.wait(10)
        killed_at = time.monotonic()
        wait_for(
            lambda: all(pid_gone(pid) for pid in pids),
            GONE_WITHIN,
            "every process started for the workspace to end",
            lambda: process_states(*sorted(p for p in pids if not pid_gone(p))),
        )
        assert time.monotonic() - killed_at < GONE_WITHIN + 0.5
    finally:
        build_release.write_text("")
        if materialize is not None:
            materialize.kill()
            materialize.wait(10)
        up.stop()


def test_the_next_up_ends_strays_of_a_dead_supervisor(
    tmp_path: Path, shared_envs_dir: Path
) -> None:
    workspace = write(
        tmp_path / "workspace.yaml",
        f"""
        envs_dir: {shared_envs_dir}
        load_from:
          - python_file: {FIXTURES}/faults/healthy.py
        """,
    )
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    token = f"{workspace_digest(workspace)}:{dead.pid}:{time.time() - 100:.2f}"
    stray = subprocess.Popen(
        [sys.executable, "-c", "import time\nwhile True: time.sleep(0.1)"],
        env={**os.environ, WORKSPACE_TOKEN: token},
        start_new_session=True,
    )
    # A process of a live supervisor (here: this test) is never taken for a stray.
    me = psutil.Process()
    alive = subprocess.Popen(
        [sys.executable, "-c", "import time\nwhile True: time.sleep(0.1)"],
        env={
            **os.environ,
            WORKSPACE_TOKEN: f"{workspace_digest(workspace)}:{me.pid}:{me.create_time()}",
        },
        start_new_session=True,
    )
    up = Up(workspace)
    try:
        up.wait_state("healthy.py", "SERVING", timeout=300)
        wait_for(lambda: pid_gone(stray.pid), 10, "the stray to be ended", up.log)
        assert f"pids {stray.pid}" in up.log(200)
        assert not pid_gone(alive.pid)
    finally:
        up.stop()
        for proc in (stray, alive):
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)
