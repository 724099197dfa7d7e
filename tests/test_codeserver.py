"""The code server for real: spawned in uv-made environments on 3.8, 3.13 and the host Python."""

from __future__ import annotations

import contextlib
import os
import signal
import stat
import subprocess
import time
from pathlib import Path

import grpc
import pytest

from supervisor._proto import codeserver_pb2 as pb
from supervisor._proto.codeserver_pb2_grpc import CodeServerStub
from supervisor.control.codeserver import CodeServerClient, definitions_to_dict
from supervisor.errors import CodeServerError
from supervisor.launch.blocking import BlockingServer, start_blocking
from supervisor.launch.command import child_environment, code_server_command
from tests.helpers import EXAMPLES, FIXTURES, HOST_PYTHON, pid_gone, process_states, wait_for

LOCATIONS = FIXTURES / "locations"
# What tests/fixtures/faults/ignores_sigterm.py says once SIGTERM no longer reaches it.
IGNORING_SIGTERM = "ignores_sigterm: SIGTERM is ignored from now on"
STOP_DEADLINE = 2.0
# SIGKILL, the reaping, the sweep of escaped descendants: well under this on a loaded machine.
STOP_MARGIN = 4.0


def start(python: str, sock_dir: Path, tmp_path: Path, **target: object):
    """Start a code server and return (server, ready, client, log path)."""
    log = tmp_path / "server.log"
    socket = str(sock_dir / "cs.sock")
    argv = code_server_command(python, socket=socket, **target)
    server = start_blocking(
        argv, location=str(target.get("location_name", "test")), output=log, startup_timeout=60
    )
    assert server.ready is not None
    return server, server.ready, CodeServerClient(server.ready.address, "test"), log


def stop(server: BlockingServer, client: CodeServerClient) -> int | None:
    """Close the client, stop the server (SIGTERM, SIGKILL at the deadline), end its thread."""
    client.close()
    try:
        return server.stop(10)
    finally:
        server.close()


def test_every_rpc_on_each_python(env_python: str, sock_dir: Path, tmp_path: Path) -> None:
    server, ready, client, log = start(
        env_python,
        sock_dir,
        tmp_path,
        module_name="hello_location",
        working_directory=str(EXAMPLES),
        location_name="hello",
    )
    try:
        assert ready.pid == server.pid
        assert ready.load_error is None
        assert stat.S_IMODE(os.stat(sock_dir / "cs.sock").st_mode) == 0o600

        assert client.ping("marco").echo == "marco"
        assert client.health() == "SERVING"
        assert client.health("supervisor.codeserver.v1.CodeServer") == "SERVING"
        with pytest.raises(CodeServerError, match="NOT_FOUND"):
            client.health("no.such.Service")

        info = client.server_info()
        assert info.location_name == "hello"
        assert info.pid == server.pid
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

        # Beats: one at once, then at each whole multiple of the interval; a stop ends the
        # stream cleanly, without waiting for the stop's grace.
        channel = grpc.insecure_channel(ready.address)
        beats = CodeServerStub(channel).Beats(pb.BeatsRequest(interval=0.1), timeout=30)
        assert next(beats).status == "SERVING"
        assert next(beats).status == "SERVING"
        asked = time.monotonic()
        client.shutdown("test is done")
        assert [b.status for b in beats] in ([], ["NOT_SERVING"])  # ended, not cut off
        assert time.monotonic() - asked < 5, "the stream held the stop"
        channel.close()
        assert server.wait(10) == 0
        assert not (sock_dir / "cs.sock").exists(), "the socket file should be removed"
        assert "Shutdown called: test is done" in log.read_text()
    finally:
        stop(server, client)


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
    server, ready, client, _ = start(
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
        code = stop(server, client)
    assert code == 0


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
import sys
from supervisor.launch.blocking import start_blocking
from supervisor.launch.command import code_server_command
python, location_file, socket, heartbeat, death_signal = sys.argv[1:]
flags = {"heartbeat_timeout": float(heartbeat)} if heartbeat != "none" else {}
argv = code_server_command(python, python_file=location_file, socket=socket, **flags)
if death_signal == "off":
    argv.append("--no-parent-death-signal")
server = start_blocking(argv, location="orphan")
print(server.pid, flush=True)
sys.stdin.read()
"""


# Each mechanism alone, the other one off: the watchdog also ends the server once it sees
# its parent gone, so with both on, a broken death signal would pass unnoticed.
@pytest.mark.parametrize(
    ("heartbeat", "death_signal", "gone_within"),
    [("none", "on", 3.0), ("0.5", "off", 3.0), ("none", "off", None)],
    ids=["death-signal", "heartbeat", "neither"],
)
def test_server_exits_when_its_parent_is_killed(
    child_envs: dict[str, str],
    sock_dir: Path,
    heartbeat: str,
    death_signal: str,
    gone_within: float | None,
) -> None:
    parent = subprocess.Popen(
        [
            child_envs["host"],
            "-c",
            PARENT_SCRIPT,
            child_envs["3.8"],
            str(EXAMPLES / "empty_location.py"),
            str(sock_dir / "o.sock"),
            heartbeat,
            death_signal,
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    child = None
    try:
        line = parent.stdout.readline()
        assert line.strip().isdigit(), f"parent printed {line!r}"
        child = int(line)
        assert not pid_gone(child)
        parent.kill()
        parent.wait(10)
        what = f"code server {child} to exit after its parent died"
        if gone_within is not None:
            wait_for(lambda: pid_gone(child), gone_within, what, lambda: process_states(child))
        else:
            # The control: with both mechanisms off nothing ends it, so each case above
            # measures its own mechanism.
            with pytest.raises(AssertionError, match="timed out"):
                wait_for(lambda: pid_gone(child), 2.0, what)
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        if child is not None and not pid_gone(child):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child, signal.SIGKILL)


def test_supervised_server_outlives_silence_while_parent_lives(
    child_envs: dict[str, str], sock_dir: Path, tmp_path: Path
) -> None:
    """A missed heartbeat with a live parent is a busy parent, not a dead one."""
    server, _ready, client, _log = start(
        child_envs["3.13"],
        sock_dir,
        tmp_path,
        python_file=str(EXAMPLES / "empty_location.py"),
        heartbeat_timeout=0.3,
    )
    try:
        with pytest.raises(TimeoutError):
            server.wait(1.5)
        pong = client.ping()
    finally:
        code = stop(server, client)
    assert pong.pid == server.pid
    assert code == 0


def test_a_failed_start_names_the_location_and_reason(
    child_envs: dict[str, str], sock_dir: Path, tmp_path: Path
) -> None:
    blocker = sock_dir / "taken.sock"
    blocker.write_text("not a socket")
    argv = code_server_command(
        child_envs["3.8"], python_file=str(EXAMPLES / "empty_location.py"), socket=str(blocker)
    )
    server = BlockingServer(argv, location="blocked")
    with pytest.raises(CodeServerError) as info:
        server.start()
    assert "location 'blocked'" in str(info.value)
    assert "exists and is not a socket" in str(info.value)
    assert server.poll() is not None, "a failed start leaves nothing running"
    server.close()


def test_startup_deadline_kills_a_hanging_import(
    child_envs: dict[str, str], sock_dir: Path, tmp_path: Path
) -> None:
    argv = code_server_command(
        child_envs["3.8"],
        python_file=str(FIXTURES / "faults" / "hang_on_import.py"),
        socket=str(sock_dir / "h.sock"),
    )
    server = BlockingServer(argv, location="hang")
    with pytest.raises(CodeServerError, match="not ready within the startup timeout of 1s"):
        server.start(startup_timeout=1)
    pid = server.pid
    assert pid is not None
    assert server.poll() is not None, "the startup deadline should kill the server"
    assert pid_gone(pid)
    server.close()


def test_stop_kills_a_server_that_ignores_sigterm_at_the_deadline(
    child_envs: dict[str, str], sock_dir: Path, tmp_path: Path
) -> None:
    log = tmp_path / "server.log"
    argv = code_server_command(
        child_envs["3.8"],
        python_file=str(FIXTURES / "faults" / "ignores_sigterm.py"),
        socket=str(sock_dir / "i.sock"),
    )
    server = start_blocking(argv, location="ignores_sigterm", output=log)
    pid = server.pid
    try:
        wait_for(
            lambda: IGNORING_SIGTERM in log.read_text(),
            30,
            "the location to ignore SIGTERM",
            log.read_text,
        )
        began = time.monotonic()
        code = server.stop(timeout=STOP_DEADLINE)
        took = time.monotonic() - began
    finally:
        if pid is not None and not pid_gone(pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        server.close()
    assert code == -signal.SIGKILL, f"ended with {code}; log:\n{log.read_text()}"
    # It waited out the deadline for the SIGTERM it ignored, then killed at once.
    assert STOP_DEADLINE <= took < STOP_DEADLINE + STOP_MARGIN, f"stop took {took:.2f}s"
