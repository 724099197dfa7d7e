"""The code server for real: spawned in uv-made environments on 3.8, 3.13 and the host Python."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
from pathlib import Path

import pytest

from supervisor.client import CodeServerClient, definitions_to_dict
from supervisor.errors import CodeServerError
from supervisor.launch import child_environment, code_server_command, start_code_server
from tests.helpers import EXAMPLES, FIXTURES, HOST_PYTHON, pid_gone, wait_for

LOCATIONS = FIXTURES / "locations"


def start(python: str, sock_dir: Path, tmp_path: Path, **target: object):
    """Start a code server and return (process, ready, client, log path)."""
    log = tmp_path / "server.log"
    socket = str(sock_dir / "cs.sock")
    argv = code_server_command(python, socket=socket, **target)
    with open(log, "wb") as out:
        proc, ready = start_code_server(
            argv,
            location=str(target.get("location_name", "test")),
            stdout=out,
            stderr=subprocess.STDOUT,
            startup_timeout=60,
            stderr_tail=log.read_text,
        )
    return proc, ready, CodeServerClient(ready.address, "test"), log


def stop(proc: subprocess.Popen, client: CodeServerClient) -> int:
    client.close()
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    return proc.wait(10)


def test_every_rpc_on_each_python(env_python: str, sock_dir: Path, tmp_path: Path) -> None:
    proc, ready, client, log = start(
        env_python,
        sock_dir,
        tmp_path,
        module_name="hello_location",
        working_directory=str(EXAMPLES),
        location_name="hello",
    )
    try:
        assert ready.pid == proc.pid
        assert ready.load_error is None
        assert stat.S_IMODE(os.stat(sock_dir / "cs.sock").st_mode) == 0o600

        assert client.ping("marco").echo == "marco"
        assert client.health() == "SERVING"
        assert client.health("supervisor.codeserver.v1.CodeServer") == "SERVING"
        with pytest.raises(CodeServerError, match="NOT_FOUND"):
            client.health("no.such.Service")

        info = client.server_info()
        assert info.location_name == "hello"
        assert info.pid == proc.pid
        assert info.python_executable == env_python
        assert info.python_implementation == "CPython"
        expected = subprocess.run(
            [env_python, "-c", "import platform; print(platform.python_version())"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        assert info.python_version == expected
        names = {d.name.lower() for d in info.distributions}
        assert {"grpcio", "protobuf"} <= names
        assert info.runtime_version
        # Started from the repository, it must still run the environment's runtime copy.
        if env_python != HOST_PYTHON:
            assert Path(info.runtime_path).is_relative_to(info.sys_prefix), info.runtime_path
        assert not info.HasField("load_error")

        entry = definitions_to_dict(client.list_definitions())
        assert entry["location"] == "hello"
        assert entry["load_error"] is None
        assets = {a["key"]: a for a in entry["assets"]}
        assert list(assets) == ["names", "greetings", "greeting_count"]
        assert assets["greetings"]["deps"] == ["names"]
        assert assets["greetings"]["resources"] == ["greeting"]
        assert assets["names"]["group"] == "people"
        assert assets["greeting_count"]["group"] == "default"
        assert assets["names"]["description"] == "Who to greet."
        assert entry["resources"] == ["greeting"]
        assert entry["schedules"] == [
            {
                "name": "daily_greetings",
                "cron": "0 6 * * *",
                "targets": ["names", "greetings", "greeting_count"],
                "description": "",
            }
        ]
        client.heartbeat()
        client.shutdown("test is done")
        assert proc.wait(10) == 0
        assert not (sock_dir / "cs.sock").exists(), "the socket file should be removed"
        assert "Shutdown called: test is done" in log.read_text()
    finally:
        stop(proc, client)


@pytest.mark.parametrize(
    ("fixture", "expected"),
    [
        ("raise_on_import.py", "RuntimeError: this location is broken on purpose"),
        ("syntax_error.py", "SyntaxError"),
        ("missing_package.py", "No module named 'package_that_is_not_installed'"),
        ("cycle.py", "dependency cycle: chicken -> egg -> chicken"),
    ],
)
def test_load_error_is_served_with_traceback(
    child_envs: dict[str, str], sock_dir: Path, tmp_path: Path, fixture: str, expected: str
) -> None:
    proc, ready, client, _ = start(
        child_envs["3.8"], sock_dir, tmp_path, python_file=str(LOCATIONS / fixture)
    )
    try:
        assert expected in (ready.load_error or "")
        assert client.health() == "SERVING"
        reply = client.list_definitions()
        assert reply.HasField("load_error")
        assert expected in reply.load_error.message + reply.load_error.traceback
        assert "Traceback (most recent call last)" in reply.load_error.traceback
        assert fixture in reply.load_error.traceback
        assert len(reply.assets) == 0
        info = client.server_info()
        assert expected in info.load_error.message + info.load_error.traceback
    finally:
        assert stop(proc, client) == 0


def test_heartbeat_timeout_stops_a_standalone_server(
    child_envs: dict[str, str], sock_dir: Path, tmp_path: Path
) -> None:
    log = tmp_path / "server.log"
    socket = sock_dir / "hb.sock"
    argv = code_server_command(
        child_envs["3.13"],
        python_file=str(EXAMPLES / "empty_location.py"),
        socket=str(socket),
        heartbeat_timeout=1.0,
    )
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=child_environment())
    try:
        wait_for(socket.exists, 30, "the server to listen", log.read_text)
        with CodeServerClient(str(socket), "hb") as client:
            # Heartbeats keep it up past its timeout...
            for _ in range(8):
                client.heartbeat()
                # Paced by waiting on the event under test: the server's exit.
                with pytest.raises(subprocess.TimeoutExpired):
                    proc.wait(0.3)
            assert proc.poll() is None, "heartbeats should keep the server up: " + log.read_text()
        # ...and without them it stops by itself.
        assert proc.wait(10) == 0
        assert "no heartbeat for" in log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


PARENT_SCRIPT = """
import sys, subprocess
from supervisor.launch import code_server_command, start_code_server
argv = code_server_command(sys.argv[1], python_file=sys.argv[2], socket=sys.argv[3],
                           heartbeat_timeout=float(sys.argv[4]))
proc, ready = start_code_server(argv, location="orphan", stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
print(ready.pid, flush=True)
sys.stdin.read()
"""


@pytest.mark.parametrize("heartbeat_timeout", [60.0, 0.5], ids=["death-signal", "heartbeat"])
def test_server_exits_when_its_parent_is_killed(
    child_envs: dict[str, str], sock_dir: Path, heartbeat_timeout: float
) -> None:
    parent = subprocess.Popen(
        [
            child_envs["host"],
            "-c",
            PARENT_SCRIPT,
            child_envs["3.8"],
            str(EXAMPLES / "empty_location.py"),
            str(sock_dir / "o.sock"),
            str(heartbeat_timeout),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = parent.stdout.readline()
        assert line.strip().isdigit(), f"parent printed {line!r}"
        child = int(line)
        assert not pid_gone(child)
        parent.kill()
        parent.wait(10)
        wait_for(lambda: pid_gone(child), 3, f"code server {child} to exit after its parent died")
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()


def test_supervised_server_outlives_silence_while_parent_lives(
    child_envs: dict[str, str], sock_dir: Path, tmp_path: Path
) -> None:
    """A missed heartbeat with a live parent is a busy parent, not a dead one."""
    proc, _ready, client, _log = start(
        child_envs["3.13"],
        sock_dir,
        tmp_path,
        python_file=str(EXAMPLES / "empty_location.py"),
        heartbeat_timeout=0.3,
    )
    try:
        with pytest.raises(subprocess.TimeoutExpired):
            proc.wait(1.5)
        assert client.ping().pid == proc.pid
    finally:
        assert stop(proc, client) == 0


def test_a_failed_start_names_the_location_and_reason(
    child_envs: dict[str, str], sock_dir: Path, tmp_path: Path
) -> None:
    blocker = sock_dir / "taken.sock"
    blocker.write_text("not a socket")
    argv = code_server_command(
        child_envs["3.8"], python_file=str(EXAMPLES / "empty_location.py"), socket=str(blocker)
    )
    with pytest.raises(CodeServerError) as info:
        start_code_server(
            argv, location="blocked", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
    assert "location 'blocked'" in str(info.value)
    assert "exists and is not a socket" in str(info.value)


def test_startup_deadline_kills_a_hanging_import(
    child_envs: dict[str, str], sock_dir: Path, tmp_path: Path
) -> None:
    hang = tmp_path / "hang_on_import.py"
    hang.write_text("import time\nwhile True:\n    time.sleep(0.05)\n")
    argv = code_server_command(
        child_envs["3.8"], python_file=str(hang), socket=str(sock_dir / "h.sock")
    )
    with pytest.raises(CodeServerError, match="not ready within the startup timeout of 1s"):
        start_code_server(
            argv,
            location="hang",
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            startup_timeout=1,
        )
