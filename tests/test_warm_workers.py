"""Warm run workers: each code server keeps one worker started, its code imported, for the
next run; a run takes it and another starts; a worker is never reused; one that imported
code since changed is not used. On 3.8, 3.13 and the host's Python."""

from __future__ import annotations

import os
import signal
import textwrap
from pathlib import Path

import psutil

from supervisor._proto import codeserver_pb2 as cs
from supervisor.control.codeserver import CodeServerClient
from supervisor.launch.blocking import BlockingServer, start_blocking
from supervisor.launch.command import code_server_command
from tests.helpers import pid_gone, wait_for

LOCATION = """
import os

from supervisor import Definitions, asset


@asset
def first():
    return {value}


@asset
def second(first):
    return first + 1


@asset
def suicide():
    os._exit(7)


defs = Definitions(assets=[first, second, suicide])
"""


def write_location(path: Path, value: int) -> None:
    path.write_text(textwrap.dedent(LOCATION.format(value=value)))
    # A new modification time even within the file system's clock resolution.
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + value * 1_000_000_000))


def start(python: str, sock_dir: Path, tmp_path: Path, *extra: str) -> BlockingServer:
    code = tmp_path / "warm_location.py"
    if not code.exists():
        write_location(code, 1)
    argv = code_server_command(
        python, python_file=str(code), location_name="warm", socket=str(sock_dir / "cs.sock")
    )
    argv += ["--values-dir", str(tmp_path / "values"), *extra]
    return start_blocking(argv, location="warm", output=tmp_path / "server.log", startup_timeout=60)


def address(server: BlockingServer) -> str:
    assert server.ready is not None
    return server.ready.address


def waiting_workers(server: BlockingServer) -> list[int]:
    """The pids of the server's workers waiting for a run (started with a job pipe)."""
    found = []
    assert server.pid is not None
    for child in psutil.Process(server.pid).children(recursive=True):
        try:
            if any(arg.startswith("--job-fd=") for arg in child.cmdline()):
                found.append(child.pid)
        except psutil.Error:
            continue
    return found


def one_waiting(server: BlockingServer, not_pid: int | None = None) -> int:
    """Wait for exactly one waiting worker (other than NOT_PID); its pid."""

    def check() -> int | None:
        pids = [p for p in waiting_workers(server) if p != not_pid]
        return pids[0] if len(pids) == 1 else None

    # Within FIRST_DELAY_SECONDS plus the wait for a quiet machine (at most a minute).
    return int(wait_for(check, 90, "one waiting run worker", lambda: waiting_workers(server)))


def event_type(event: cs.RunEvent) -> str:
    return cs.EventType.Name(event.type)


def run(client: CodeServerClient, *selection: str) -> tuple[str, set[int]]:
    """The run's last event type and the pids its worker's events came from (the server
    writes RUN_START itself)."""
    events = list(client.materialize(list(selection), timeout=60))
    worker_pids = {e.pid for e in events if event_type(e) != "RUN_START"}
    return event_type(events[-1]), worker_pids


def test_a_run_takes_the_waiting_worker_and_it_is_never_reused(
    env_python: str, sock_dir: Path, tmp_path: Path
) -> None:
    server = start(env_python, sock_dir, tmp_path)
    client = CodeServerClient(address(server), "warm")
    try:
        waiting = one_waiting(server)
        outcome, pids = run(client, "first", "second")
        assert outcome == "RUN_SUCCESS"
        assert waiting in pids, f"the run's worker {pids} was not the waiting one {waiting}"
        wait_for(lambda: pid_gone(waiting), 30, "the used worker to exit")
        # Another took its place, and the next run is its, not the first one's.
        following = one_waiting(server, not_pid=waiting)
        outcome, pids = run(client, "second")
        assert outcome == "RUN_SUCCESS" and following in pids and waiting not in pids
    finally:
        client.close()
        server.stop(10)
        server.close()


def test_a_worker_that_dies_takes_only_its_run(
    env_python: str, sock_dir: Path, tmp_path: Path
) -> None:
    server = start(env_python, sock_dir, tmp_path)
    client = CodeServerClient(address(server), "warm")
    try:
        waiting = one_waiting(server)
        outcome, _ = run(client, "suicide")
        assert outcome == "RUN_FAILURE"
        one_waiting(server, not_pid=waiting)
        outcome, _ = run(client, "first")
        assert outcome == "RUN_SUCCESS"
    finally:
        client.close()
        server.stop(10)
        server.close()


def test_a_worker_that_imported_old_code_is_not_used(
    sock_dir: Path, tmp_path: Path, child_envs: dict[str, str]
) -> None:
    server = start(child_envs["host"], sock_dir, tmp_path)
    client = CodeServerClient(address(server), "warm")
    try:
        waiting = one_waiting(server)
        write_location(tmp_path / "warm_location.py", 41)
        events = list(client.materialize(["first"], timeout=60))
        assert event_type(events[-1]) == "RUN_SUCCESS"
        assert waiting not in {e.pid for e in events}, "the stale worker did the run"
        materialized = next(e for e in events if event_type(e) == "ASSET_MATERIALIZATION")
        preview = {m.key: m.text for m in materialized.metadata}["preview"]
        assert preview == "41", "the run did not see the code as it is now"
        wait_for(lambda: pid_gone(waiting), 30, "the stale worker to exit")
    finally:
        client.close()
        server.stop(10)
        server.close()


def test_no_worker_waits_with_warm_workers_0_nor_outlives_its_server(
    sock_dir: Path, tmp_path: Path, child_envs: dict[str, str]
) -> None:
    cold = start(child_envs["host"], sock_dir, tmp_path, "--warm-workers", "0")
    try:
        client = CodeServerClient(address(cold), "warm")
        outcome, _ = run(client, "first")
        client.close()
        assert outcome == "RUN_SUCCESS" and waiting_workers(cold) == []
    finally:
        cold.stop(10)
        cold.close()
    warm = start(child_envs["host"], sock_dir, tmp_path)
    waiting = one_waiting(warm)
    try:
        assert warm.pid is not None
        os.kill(warm.pid, signal.SIGTERM)
        warm.wait(30)
    finally:
        warm.close()
    wait_for(lambda: pid_gone(waiting), 30, "the waiting worker to end with its server")
