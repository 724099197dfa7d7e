"""`supervisor api grpc` and `supervisor ls --address`, through the real console script."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from tests.helpers import EXAMPLES, read_until

SUPERVISOR = str(Path(sys.executable).parent / "supervisor")
STARTED = re.compile(
    r"Started code server for (file|module) (\S+) on (port|socket) (\S+) in process (\d+)"
)


@pytest.fixture
def served():
    proc = subprocess.Popen(
        [
            SUPERVISOR,
            "api",
            "grpc",
            "-f",
            str(EXAMPLES / "empty_location.py"),
            "--port",
            "0",
            "--location-name",
            "empty",
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        match = read_until(proc, STARTED, 30)
        yield proc, match
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


def test_api_grpc_logs_start_and_serves_ls(served) -> None:
    proc, match = served
    kind, target, where, port, pid = match.groups()
    assert (kind, where, int(pid)) == ("file", "port", proc.pid)
    assert target.endswith("empty_location.py")
    listening = [
        c.laddr
        for c in psutil.Process(proc.pid).net_connections("tcp")
        if c.status == psutil.CONN_LISTEN
    ]
    assert listening and all(addr.ip in ("127.0.0.1", "::ffff:127.0.0.1") for addr in listening), (
        listening
    )

    out = subprocess.run(
        [SUPERVISOR, "ls", "--address", f"127.0.0.1:{port}", "--json"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 0, out.stderr
    (entry,) = json.loads(out.stdout)
    assert entry["location"] == "empty"
    assert [a["key"] for a in entry["assets"]] == ["empty_data"]
    assert entry["load_error"] is None

    text = subprocess.run(
        [SUPERVISOR, "ls", "--address", f"127.0.0.1:{port}"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert "empty_data" in text.stdout and "An empty table." in text.stdout


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 0), (signal.SIGINT, 130)])
def test_api_grpc_stops_cleanly_on_signal(served, signum: int, code: int) -> None:
    proc, _ = served
    proc.send_signal(signum)
    assert proc.wait(5) == code
    assert "Stopping code server (received" in proc.stderr.read()


def test_ls_of_an_address_nobody_serves_is_one_clear_line() -> None:
    out = subprocess.run(
        [SUPERVISOR, "ls", "--address", "127.0.0.1:1", "--timeout", "5"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 1
    assert out.stderr.startswith("error: code server (127.0.0.1:1): ListDefinitions failed:")
    assert "Traceback" not in out.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--port", "0"], "give exactly one of --module-name/-m and --python-file/-f"),
        (["-m", "x", "-f", "y.py", "--port", "0"], "give exactly one of --module-name"),
        (["-m", "x"], "give exactly one of --port/-p and --socket/-s"),
        (["-m", "x", "--port", "70000"], "70000 is not in the range"),
    ],
)
def test_api_grpc_usage_errors(args: list[str], message: str) -> None:
    out = subprocess.run(
        [SUPERVISOR, "api", "grpc", *args], capture_output=True, text=True, timeout=30
    )
    assert out.returncode == 2
    assert message in out.stderr


def test_api_grpc_refuses_a_port_in_use(served) -> None:
    _, match = served
    port = match.group(4)
    out = subprocess.run(
        [SUPERVISOR, "api", "grpc", "-f", str(EXAMPLES / "empty_location.py"), "-p", port],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in out.stderr
