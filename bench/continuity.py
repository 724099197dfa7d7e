"""Benchmark: calls through the supervisor while its location restarts, and a remote's return.

Local part: a real `supervisor up` on a one-location workspace in a temp folder (a `python_file`
location on bench/three_assets.py, the host interpreter, its environment built untimed). A
client thread calls ListDefinitions for that location through the control socket in a tight
loop: first for --baseline-seconds with nothing happening, then during --restarts restarts of
the location (`Restart` through the control socket, one after another). A call fails when it
raises or when its reply's entry has `load_error` set (how the supervisor reports a location it
could not ask) or lacks the three assets. Goal: no failed call.

Remote part: `supervisor api grpc -f bench/three_assets.py -p PORT` runs by itself and a second
`up` watches it through two `grpc_server` entries on that port, one with `health: {interval:
0.5}` and one with the default health interval (2 s). After a random pause the server is
SIGKILLed, both entries are awaited in UNREACHABLE, and after another random pause (so that the
start falls anywhere between two health checks) the server is started again on the same port;
measured is the time from its "Started code server" log line to the supervisor's move to
SERVING (as its status history records it). Goal: within one health interval, for each entry.

--smoke: one restart after a half-second baseline, one remote round.

Usage: .venv/bin/python bench/continuity.py [--restarts N] [--baseline-seconds S]
    [--remote-rounds R] [--json] [--smoke]
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import contextlib  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from typing import Any  # noqa: E402

from bench import common  # noqa: E402
from supervisor._proto_host import control_pb2 as pb  # noqa: E402
from supervisor.control.client import ControlClient  # noqa: E402
from supervisor.errors import SupervisorError  # noqa: E402
from supervisor.supervision import statefile  # noqa: E402
from supervisor.workspace.specs import HealthSpec  # noqa: E402

ASSETS = 3
LOCAL = "steady"
FAST = "remote_fast"  # health interval FAST_INTERVAL
DEFAULT = "remote_default"  # the default health interval
FAST_INTERVAL = 0.5
DEFAULT_INTERVAL = HealthSpec().interval
STARTED_LINE = "Started code server"
HOST = "127.0.0.1"
UP_TIMEOUT = 120.0
RESTART_TIMEOUT = 90.0  # one Restart call answers once the location has settled
JOIN_TIMEOUT = 30.0
SERVER_START_TIMEOUT = 60.0
UNREACHABLE_TIMEOUT = 30.0
RETURN_TIMEOUT = 30.0
MS = 1000.0
SMOKE = {"restarts": 1, "baseline_seconds": 0.5, "remote_rounds": 1}


@dataclass
class Call:
    """One ListDefinitions call: when it started (monotonic), how long it took, what failed."""

    started: float
    seconds: float
    error: str  # "" when the call succeeded


class Caller:
    """Calls ListDefinitions for one location in a tight loop on a thread."""

    def __init__(self, workspace_file: Path, name: str) -> None:
        self.workspace_file = workspace_file
        self.name = name
        self.calls: list[Call] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        request = pb.LocationsRequest(locations=[self.name])
        with ControlClient(self.workspace_file, timeout=common.CALL_TIMEOUT) as client:
            while not self._stop.is_set():
                started = time.monotonic()
                error = ""
                try:
                    reply = client.call("ListDefinitions", request, timeout=common.CALL_TIMEOUT)
                    entries = list(reply.locations)
                    if len(entries) != 1:
                        error = f"{len(entries)} entries in the reply"
                    elif entries[0].HasField("load_error"):
                        error = "load_error: " + entries[0].load_error.message
                    elif len(entries[0].assets) != ASSETS:
                        error = f"{len(entries[0].assets)} assets, not {ASSETS}"
                except SupervisorError as exc:
                    error = str(exc)
                self.calls.append(Call(started, time.monotonic() - started, error))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(JOIN_TIMEOUT)
        if self._thread.is_alive():
            raise RuntimeError(f"the calling thread did not stop within {JOIN_TIMEOUT:g}s")


class RemoteServer:
    """`supervisor api grpc -f FILE -p PORT`, its output read on a thread with arrival times."""

    def __init__(self, port: int, log_path: Path) -> None:
        self.log_path = log_path
        self.started_at: float | None = None  # wall clock of the "Started code server" line
        self._started = threading.Event()
        self.proc = subprocess.Popen(
            [common.SUPERVISOR, "api", "grpc", "-f", str(common.THREE_ASSETS), "-p", str(port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        with open(self.log_path, "a", buffering=1) as log:  # by line: tail() reads it
            for raw in self.proc.stdout:
                arrived = time.time()
                line = raw.decode(errors="replace").rstrip()
                log.write(line + "\n")
                if STARTED_LINE in line and self.started_at is None:
                    self.started_at = logged_time(line) or arrived
                    self._started.set()

    def wait_started(self, timeout: float) -> float:
        """The wall-clock time of the start-up line; fail on exit or at the deadline."""
        deadline = time.monotonic() + timeout
        while not self._started.wait(0.05):
            if self.proc.poll() is not None:
                raise RuntimeError(f"the code server exited {self.proc.returncode}:\n{self.tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"no start-up line within {timeout:g}s:\n{self.tail()}")
        assert self.started_at is not None
        return self.started_at

    def tail(self) -> str:
        return common.tail(self.log_path)

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(JOIN_TIMEOUT)
        self._thread.join(JOIN_TIMEOUT)

    def stop(self) -> None:
        common.stop_process(self.proc)
        self._thread.join(JOIN_TIMEOUT)


def logged_time(line: str) -> float | None:
    """The wall-clock time a log line carries ("2024-05-01 12:00:00,123 - ..."), if any."""
    try:
        stamp, millis = line.split(" - ", 1)[0].rsplit(",", 1)
        return time.mktime(time.strptime(stamp, "%Y-%m-%d %H:%M:%S")) + int(millis) / MS
    except ValueError:
        return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def summary(calls: list[Call]) -> dict[str, Any]:
    ok = [c.seconds for c in calls if not c.error]
    return {
        "calls": len(calls),
        "failed": sum(1 for c in calls if c.error),
        "p50_ms": common.percentile(ok, 0.50) * MS if ok else None,
        "p99_ms": common.percentile(ok, 0.99) * MS if ok else None,
        "max_ms": max(ok) * MS if ok else None,
    }


def local_part(root: Path, restarts: int, baseline_seconds: float) -> dict[str, Any]:
    """Calls without, then during, RESTARTS restarts of the one local location."""
    folder = root / "local"
    folder.mkdir()
    workspace_file = common.write_workspace(
        folder, [common.python_file(common.THREE_ASSETS, LOCAL)], envs=root / "envs"
    )
    up: common.Up | None = None
    caller: Caller | None = None
    try:
        common.build_env(workspace_file)
        up = common.Up(workspace_file, cwd=folder)
        with common.connect(up, UP_TIMEOUT) as client:
            common.wait_location(up, client, LOCAL, common.is_serving, UP_TIMEOUT, "SERVING")
            caller = Caller(workspace_file, LOCAL)
            time.sleep(baseline_seconds)
            began = time.monotonic()
            durations, pids, problems = [], [], []
            for _ in range(restarts):
                before = common.location_status(client, LOCAL).pid
                asked = time.monotonic()
                reply = client.call(
                    "Restart", pb.LocationsRequest(locations=[LOCAL]), timeout=RESTART_TIMEOUT
                )
                durations.append(time.monotonic() - asked)
                result = reply.results[0]
                after = common.location_status(client, LOCAL)
                pids.append(after.pid)
                if not result.ok or after.state != "SERVING" or after.pid == before:
                    problems.append(f"{result.message}, {after.state}, pid {before}->{after.pid}")
            ended = time.monotonic()
            caller.stop()
            calls, caller = caller.calls, None
            restarts_reported = common.location_status(client, LOCAL).restarts
    finally:
        if caller is not None:
            with contextlib.suppress(RuntimeError):
                caller.stop()
        if up is not None:
            common.stop_up(up)
        shutil.rmtree(statefile.socket_dir(workspace_file), ignore_errors=True)
    baseline = [c for c in calls if c.started < began]
    during = [c for c in calls if began <= c.started <= ended]
    failures = [c.error for c in calls if c.error]
    return {
        "restarts": restarts,
        "restart_problems": problems,
        "restarts_reported": restarts_reported,
        "distinct_pids": len(set(pids)),
        "median_restart_seconds": common.median(durations),
        "restarts_seconds": ended - began,
        "baseline": summary(baseline),
        "during": summary(during),
        "failed_total": len(failures),
        "failures_sample": failures[:3],
    }


def remote_part(root: Path, rounds: int) -> dict[str, Any]:
    """ROUNDS times: SIGKILL the remote server, wait for UNREACHABLE, start it again, time the
    supervisor's return to SERVING against the new server's start-up line."""
    folder = root / "remote"
    folder.mkdir()
    port = free_port()
    health = f"{{interval: {FAST_INTERVAL:g}}}"
    entries = [
        common.entry("grpc_server", host=HOST, port=port, location_name=FAST, health=health),
        common.entry("grpc_server", host=HOST, port=port, location_name=DEFAULT),
    ]
    workspace_file = common.write_workspace(folder, entries)
    server_log = folder / "server.log"
    server: RemoteServer | None = None
    up: common.Up | None = None
    samples: dict[str, list[dict[str, float]]] = {FAST: [], DEFAULT: []}
    try:
        server = RemoteServer(port, server_log)
        server.wait_started(SERVER_START_TIMEOUT)
        up = common.Up(workspace_file, cwd=folder)
        with common.connect(up, UP_TIMEOUT) as client:
            for name in (FAST, DEFAULT):
                common.wait_location(up, client, name, common.is_serving, UP_TIMEOUT, "SERVING")
            for _ in range(rounds):
                # Random pauses, so that the kill and the new start fall anywhere between two
                # health checks (back to back, they would land at the same point every round).
                time.sleep(random.uniform(0, DEFAULT_INTERVAL))
                killed = time.time()
                server.kill()
                server = None
                unreachable = {}
                for name in (FAST, DEFAULT):
                    seen, _ = common.wait_location(
                        up,
                        client,
                        name,
                        lambda s: s.state == "UNREACHABLE",
                        UNREACHABLE_TIMEOUT,
                        "UNREACHABLE",
                    )
                    unreachable[name] = (
                        common.transition_after(seen, "UNREACHABLE", killed).at - killed
                    )
                time.sleep(random.uniform(0, DEFAULT_INTERVAL))
                server = RemoteServer(port, server_log)
                started = server.wait_started(SERVER_START_TIMEOUT)
                for name in (FAST, DEFAULT):
                    seen, seen_at = common.wait_location(
                        up,
                        client,
                        name,
                        common.is_serving,
                        RETURN_TIMEOUT,
                        "SERVING again",
                    )
                    samples[name].append(
                        {
                            "kill_to_unreachable": unreachable[name],
                            "serving": common.transition_after(seen, "SERVING", killed).at
                            - started,
                            "serving_seen": seen_at - started,
                        }
                    )
    finally:
        if server is not None:
            server.stop()
        if up is not None:
            common.stop_up(up)
        shutil.rmtree(statefile.socket_dir(workspace_file), ignore_errors=True)
    result: dict[str, Any] = {"rounds": rounds, "port": port}
    for name, interval in ((FAST, FAST_INTERVAL), (DEFAULT, DEFAULT_INTERVAL)):
        serving = [s["serving"] for s in samples[name]]
        result[name] = {
            "interval": interval,
            "median_serving_seconds": common.median(serving),
            "max_serving_seconds": max(serving),
            "median_unreachable_seconds": common.median(
                s["kill_to_unreachable"] for s in samples[name]
            ),
            "goal_met": max(serving) <= interval,
            "samples": samples[name],
        }
    return result


def run(restarts: int, baseline_seconds: float, rounds: int) -> dict[str, Any]:
    root = common.private_tempdir()
    try:
        local = local_part(root, restarts, baseline_seconds)
        remote = remote_part(root, rounds)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    goals = {
        "no_failed_call": local["failed_total"] == 0 and not local["restart_problems"],
        "remote_fast": remote[FAST]["goal_met"],
        "remote_default": remote[DEFAULT]["goal_met"],
    }
    return {"local": local, "remote": remote, "goals": goals, "goals_met": all(goals.values())}


def latency(s: dict[str, Any]) -> str:
    if s["p50_ms"] is None:
        return f"{s['calls']} calls, none succeeded"
    return (
        f"{s['calls']} calls, p50 {s['p50_ms']:.1f} ms, p99 {s['p99_ms']:.1f} ms,"
        f" max {s['max_ms']:.1f} ms, {s['failed']} failed"
    )


def report(r: dict[str, Any]) -> None:
    local, remote, goals = r["local"], r["remote"], r["goals"]
    print(f"ListDefinitions through the supervisor, one python_file location ({LOCAL}):")
    print(f"  without restarts: {latency(local['baseline'])}")
    print(f"  during {local['restarts']} restarts: {latency(local['during'])}")
    print(
        f"  restarts: median {local['median_restart_seconds'] * MS:.0f} ms per Restart call,"
        f" {local['distinct_pids']} distinct new pids (status's restart counter:"
        f" {local['restarts_reported']})"
    )
    for problem in local["restart_problems"]:
        print(f"  warning: a restart did not end SERVING on a new pid: {problem}")
    for failure in local["failures_sample"]:
        print(f"  failure: {failure}")
    print(
        f"  failed calls: {local['failed_total']} (goal 0):"
        f" {common.verdict(goals['no_failed_call'])}"
    )
    print(
        "Remote grpc_server, 'Started code server' line -> supervisor SERVING"
        f" ({remote['rounds']} rounds, ms):"
    )
    for name, label in ((FAST, "interval 0.5 s"), (DEFAULT, "default interval")):
        entry = remote[name]
        samples = ", ".join(f"{s['serving'] * MS:.0f}" for s in entry["samples"])
        median, top = entry["median_serving_seconds"] * MS, entry["max_serving_seconds"] * MS
        print(
            f"  {label} ({entry['interval']:g} s): median {median:.0f} ms, max {top:.0f} ms"
            f" ({samples});"
            f" kill -> UNREACHABLE {entry['median_unreachable_seconds'] * MS:.0f} ms"
            f"  goal <= {entry['interval'] * MS:.0f} ms: {common.verdict(entry['goal_met'])}"
        )
    print(f"Goals: {common.verdict(r['goals_met'])}")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; exit 0 when every goal is met, 1 otherwise."""
    parser = common.parser_for(__doc__)
    parser.add_argument("--restarts", type=int, default=10, help="restarts of the location (10)")
    parser.add_argument(
        "--baseline-seconds", type=float, default=5.0, help="calls without restarts first (5)"
    )
    parser.add_argument("--remote-rounds", type=int, default=10, help="remote kills (10)")
    args = common.parse(parser, argv, SMOKE)
    if args.restarts < 1 or args.remote_rounds < 1 or args.baseline_seconds <= 0:
        parser.error("--restarts and --remote-rounds must be at least 1, --baseline-seconds > 0")
    result = run(args.restarts, args.baseline_seconds, args.remote_rounds)
    return common.finish(result, args, report, result["goals_met"])


if __name__ == "__main__":
    sys.exit(main())
