"""Locations behave as in their own activated venv, and nothing is lost across restarts,
reloads and remote outages; a busy server is not taken for an orphan."""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import textwrap
import threading
from pathlib import Path

import psutil
import pytest

from supervisor._proto import codeserver_pb2 as cs
from supervisor._proto_host import control_pb2 as pb
from supervisor.control.client import ControlClient
from supervisor.errors import SupervisorError
from supervisor.tools import uv_binary
from tests.helpers import FIXTURES, pid_gone, process_states, pyenv_python, wait_for
from tests.uphelp import SUPERVISOR, Up, cli

# Above the longest chain of inner waits (a start of up to 180 s, restarts, a reload of up to
# 300 s), so that the wait that ran out is what a slow run reports.
pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def user_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv made by a user (for executable_path), with its own pyflakes version."""
    root = tmp_path_factory.mktemp("user-venv") / "venv"
    uv = uv_binary()
    subprocess.run([uv, "venv", "--quiet", "--python", pyenv_python("3.12"), str(root)], check=True)
    subprocess.run(
        [
            uv,
            "pip",
            "install",
            "--quiet",
            "--python",
            str(root / "bin" / "python"),
            "grpcio",
            "protobuf",
            "pyflakes==3.0.1",
        ],
        check=True,
    )
    return root


def test_locations_see_their_own_activated_venv(
    tmp_path: Path, shared_envs_dir: Path, user_venv: Path
) -> None:
    workspace = tmp_path / "workspace.yaml"
    workspace.write_text(
        textwrap.dedent(f"""
        envs_dir: {shared_envs_dir}
        load_from:
          - python_file:
              relative_path: {FIXTURES / "fidelity_location.py"}
              location_name: built
              python: "3.8"
              requirements: ["pyflakes==3.1.0"]
              env: {{GREETING: hello}}
          - python_file:
              relative_path: {FIXTURES / "fidelity_location.py"}
              location_name: users
              executable_path: {user_venv / "bin" / "python"}
    """)
    )
    # The supervisor's own environment carries what must not leak into locations.
    # (Not PYTHONHOME: the supervisor itself would not start with a bogus one.)
    leaky = {
        **os.environ,
        "PYTHONPATH": "/nowhere/site-packages",
        "VIRTUAL_ENV": "/the/supervisors/venv",
    }
    log = open(tmp_path / "up.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [SUPERVISOR, "up", "-w", str(workspace)],
        env=leaky,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    up = Up.__new__(Up)
    up.workspace_file, up.log_path, up._log, up.proc = workspace, tmp_path / "up.log", log, proc
    try:
        envs = {}
        for name in ("built", "users"):
            entry = up.wait_state(name, "SERVING", timeout=180)
            envs[name] = entry
            out = cli(
                "materialize", "what_the_worker_sees", "-l", name, "-w", str(workspace), timeout=120
            )
            assert out.returncode == 0, out.stdout + out.stderr
        built_env = Path(cli("env", "path", "built", "-w", str(workspace)).stdout.strip())
        expected = {"built": (built_env, "3.1.0"), "users": (user_venv, "3.0.1")}
        for name, (venv, version) in expected.items():
            values = workspace.parent / ".supervisor" / "values" / name
            seen = pickle.loads((values / "what_the_worker_sees.pickle").read_bytes())
            assert seen["which"] == str(venv / "bin" / "pyflakes"), seen
            assert seen["version"].startswith(version), seen
            assert seen["virtual_env"] == str(venv)
            assert seen["path0"] == str(venv / "bin")
            assert seen["pythonpath"] is None and seen["pythonhome"] is None
            assert Path(seen["prefix"]) == venv
            # The server process itself, not only its run worker.
            server = psutil.Process(envs[name]["pid"]).environ()
            assert server["VIRTUAL_ENV"] == str(venv)
            assert server["PATH"].split(os.pathsep)[0] == str(venv / "bin")
            assert "PYTHONPATH" not in server and "PYTHONHOME" not in server
        assert seen["greeting"] is None
        built_values = workspace.parent / ".supervisor" / "values" / "built"
        built_seen = pickle.loads((built_values / "what_the_worker_sees.pickle").read_bytes())
        assert built_seen["greeting"] == "hello", "the location's env: applies on top"
    finally:
        up.stop()


def test_no_call_fails_during_restarts_and_a_reload(tmp_path: Path, shared_envs_dir: Path) -> None:
    started, release = tmp_path / "held-started", tmp_path / "held-release"
    workspace = tmp_path / "workspace.yaml"
    # The draining server must not end the held run: its drain deadline is past the test's.
    spec = textwrap.dedent(f"""
        envs_dir: {shared_envs_dir}
        load_from:
          - python_file:
              relative_path: {FIXTURES / "continuity_location.py"}
              location_name: steady
              python: "3.13"
              requirements: [REQUIREMENT]
              drain_timeout: 600
              env: {{HOLD_STARTED: "{started}", HOLD_RELEASE: "{release}"}}
    """)
    workspace.write_text(spec.replace("REQUIREMENT", '"six==1.16.0"'))
    up = Up(workspace)
    errors: list[str] = []
    calls = 0
    stop = threading.Event()
    collected: list = []

    def keep_calling() -> None:
        nonlocal calls
        with ControlClient(workspace) as client:
            while not stop.is_set():
                try:
                    reply = client.call("ListDefinitions", pb.LocationsRequest())
                    (entry,) = reply.locations
                    if entry.HasField("load_error") or len(entry.assets) != 2:
                        errors.append(entry.load_error.message or "wrong assets")
                except SupervisorError as exc:
                    errors.append(str(exc))
                calls += 1

    def follow(client: ControlClient, run) -> None:
        for event in client.events(run):
            collected.append(event)

    caller = threading.Thread(target=keep_calling)
    reload = None
    try:
        first_env = up.wait_state("steady", "SERVING", timeout=180)["env"]
        caller.start()
        with ControlClient(workspace) as client:
            run = client.stream("Materialize", pb.MaterializeRequest(assets=["held_open"]))
            spanning = threading.Thread(target=follow, args=(client, run))
            spanning.start()
            wait_for(
                started.exists, 60, "the held run to start", lambda: [e.type for e in collected]
            )
            for _ in range(3):
                out = cli("restart", "steady", "-w", str(workspace), timeout=60)
                assert out.returncode == 0, out.stderr
            workspace.write_text(spec.replace("REQUIREMENT", '"six==1.17.0"'))
            # A reload returns once the old version has drained, so the run is released
            # when the new version serves, with the reload still under way.
            reload = subprocess.Popen(
                [SUPERVISOR, "reload", "-w", str(workspace)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            up.wait(
                "steady",
                lambda e: e["state"] == "SERVING" and e["env"] not in (None, first_env),
                300,
                "the reloaded version to serve",
            )
            held = [cs.EventType.Name(e.type) for e in collected]
            release.write_text("")
            out, err = reload.communicate(timeout=120)
            assert "steady: changed" in out, out + err
            spanning.join(60)
            assert not spanning.is_alive(), f"the run did not end once released; saw {held}"
        stop.set()
        caller.join(30)
        assert not caller.is_alive(), "the caller did not stop"
    finally:
        release.write_text("")  # a held run ends whatever happened
        stop.set()
        if reload is not None and reload.poll() is None:
            reload.kill()
            reload.wait(10)
        up.stop()
    ended = {"RUN_SUCCESS", "RUN_FAILURE", "RUN_CANCELED"} & set(held)
    assert not ended, f"the run ended before the restarts were over: {held}"
    assert calls > 20, f"only {calls} calls were made"
    assert errors == [], f"{len(errors)} of {calls} calls failed: {errors[:3]}"
    assert collected and collected[-1].type == cs.RUN_SUCCESS, collected[-2:]


def test_a_busy_import_is_not_taken_for_an_orphan(tmp_path: Path, shared_envs_dir: Path) -> None:
    workspace = tmp_path / "workspace.yaml"
    workspace.write_text(
        textwrap.dedent(f"""
        envs_dir: {shared_envs_dir}
        load_from:
          - python_file:
              relative_path: {FIXTURES / "busy_import.py"}
              location_name: busy
              heartbeat_timeout: 1
              startup_timeout: 30
              env: {{BUSY_SECONDS: "2"}}
    """)
    )
    up = Up(workspace)
    try:
        pid = up.wait_state("busy", "SERVING", timeout=120)["pid"]
        with pytest.raises(psutil.TimeoutExpired):
            psutil.Process(pid).wait(timeout=3)  # three heartbeat timeouts: it stays up
        assert up.status()["busy"]["restarts"] == 0
        os.kill(up.proc.pid, signal.SIGKILL)
        up.proc.wait(10)
        wait_for(
            lambda: pid_gone(pid),
            5,
            f"code server {pid} to exit after its supervisor",
            lambda: process_states(pid),
        )
    finally:
        up.stop()


def test_a_run_past_the_drain_deadline_is_ended_as_failed(
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
              location_name: draining
              drain_timeout: 1
              env: {{SLOW_MARKER: "{marker}"}}
    """)
    )
    up = Up(workspace)
    try:
        old = up.wait_state("draining", "SERVING", timeout=120)["pid"]
        run = subprocess.Popen(
            [SUPERVISOR, "materialize", "slow", "-w", str(workspace)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        wait_for(marker.exists, 60, "the slow asset to start", up.log)
        worker = int(marker.read_text())
        out = cli("restart", "draining", "-w", str(workspace))
        assert out.stdout.strip() == "draining: SERVING", out.stdout + out.stderr
        output, _ = run.communicate(timeout=60)
        assert run.returncode == 1
        assert "drain deadline of 1s passed" in output
        wait_for(
            lambda: pid_gone(worker) and pid_gone(old),
            15,
            "the old server and its worker to end",
            lambda: process_states(worker, old),
        )
        assert up.status()["draining"]["pid"] not in (None, old)
    finally:
        up.stop()
