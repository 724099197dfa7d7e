"""Benchmark: from SIGKILL of a supervised code server to SERVING again, against a cold start.

Runs a real `supervisor up` on a one-location workspace in a temp folder (a `python_file`
location on examples/empty_location.py, the host interpreter, restart back-off 0.5 s and
stable_after 1 s) and SIGKILLs its code server N times, each time after it has run past
stable_after, so that every restart is an immediate "first" one. A kill is timed to the moment
the new server answers Health.Check SERVING on its new socket; the supervisor's own transition
times (exit seen, STARTING, SERVING) split that up. The reference is the minimal gRPC server's
spawn -> SERVING time on the same interpreter, measured as bench/codeserver_start.py does and
interleaved with the kills. Goal: median restart <= median reference + 100 ms.
--smoke: one timed kill.

Usage: .venv/bin/python bench/restart.py [--kills N] [--json] [--smoke]
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import os  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import time  # noqa: E402
from dataclasses import asdict, dataclass  # noqa: E402
from typing import Any  # noqa: E402

import grpc  # noqa: E402

from bench import common  # noqa: E402
from bench.codeserver_start import run_reference  # noqa: E402
from supervisor._proto import health_pb2, health_pb2_grpc  # noqa: E402
from supervisor._proto_host import control_pb2 as pb  # noqa: E402
from supervisor.control.client import ControlClient  # noqa: E402
from supervisor.control.codeserver import CHANNEL_OPTIONS  # noqa: E402
from supervisor.supervision import statefile  # noqa: E402

NAME = "bench"
GOAL_MARGIN = 0.100  # seconds over the reference start, at most
STABLE_AFTER = 1.0
STABLE_MARGIN = 0.3  # run this much past stable_after before the next kill
UP_TIMEOUT = 120.0
RESTART_TIMEOUT = 30.0
STOP_TIMEOUT = 60.0
POLL_SECONDS = 0.002  # the new socket's appearance
DEFAULTS = f"defaults:\n  restart: {{backoff_initial: 0.5, stable_after: {STABLE_AFTER:g}}}\n"
SMOKE = {"kills": 1}


@dataclass
class Kill:
    """One kill; seconds from the SIGKILL to each event."""

    serving: float  # the new server answered Health.Check SERVING (our measure)
    socket: float  # the new server's socket appeared
    exit_seen: float  # the supervisor moved to BACKOFF
    starting: float  # ... to STARTING
    reported: float  # ... to SERVING
    immediate: bool  # the supervisor restarted at once (no back-off delay)


def wait_status(
    up: common.Up, client: ControlClient, condition: Any, timeout: float, what: str
) -> pb.LocationStatus:
    """Poll the location's status until CONDITION holds; fail with the supervisor's log."""
    return common.wait_location(up, client, NAME, condition, timeout, what)[0]


def wait_new_socket(folder: Path, known: set[str], deadline: float) -> Path:
    """The first socket file in FOLDER not in KNOWN (the new server binds it once loaded)."""
    while True:
        fresh = [n for n in os.listdir(folder) if n.endswith(".sock") and n not in known]
        if fresh:
            return folder / fresh[0]
        if time.monotonic() > deadline:
            raise RuntimeError(f"no new socket in {folder} by the deadline")
        time.sleep(POLL_SECONDS)


def wait_health(address: str, deadline: float) -> None:
    """Call Health.Check on ADDRESS until it answers SERVING (the status is set after start)."""
    with grpc.insecure_channel(address, options=CHANNEL_OPTIONS) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise RuntimeError(f"{address} did not answer SERVING by the deadline")
            try:
                reply = stub.Check(
                    health_pb2.HealthCheckRequest(), timeout=remaining, wait_for_ready=True
                )
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError as exc:
                if exc.code() != grpc.StatusCode.NOT_FOUND:  # NOT_FOUND: status not set yet
                    raise
            time.sleep(POLL_SECONDS)


def wait_stable(since_wall: float) -> None:
    """Sleep until the current process has run past stable_after (plus a margin)."""
    remaining = since_wall + STABLE_AFTER + STABLE_MARGIN - time.time()
    if remaining > 0:
        time.sleep(remaining)


def kill_once(up: common.Up, client: ControlClient) -> Kill:
    """SIGKILL the location's code server and time its return."""
    before = wait_status(up, client, common.is_serving, UP_TIMEOUT, "SERVING")
    wait_stable(max((t.at for t in before.history if t.to_state == "STARTING"), default=0.0))
    before = common.location_status(client, NAME)
    if before.state != "SERVING":
        raise RuntimeError(f"the location is {before.state} before the kill:\n{up.log()}")
    old_pid = before.pid
    folder = Path(before.address.removeprefix("unix:")).parent
    known = set(os.listdir(folder))
    killed_wall = time.time()
    killed = time.monotonic()
    os.kill(old_pid, signal.SIGKILL)
    deadline = killed + RESTART_TIMEOUT
    socket_path = wait_new_socket(folder, known, deadline)
    socket_at = time.monotonic()
    wait_health("unix:" + str(socket_path), deadline)
    serving_at = time.monotonic()
    after = wait_status(
        up,
        client,
        lambda s: common.is_serving(s) and s.pid != old_pid,
        RESTART_TIMEOUT,
        "SERVING again",
    )
    if after.address != "unix:" + str(socket_path):
        raise RuntimeError(f"the new server is on {after.address}, not {socket_path}")
    backoff = common.transition_after(after, "BACKOFF", killed_wall)
    return Kill(
        serving=serving_at - killed,
        socket=socket_at - killed,
        exit_seen=backoff.at - killed_wall,
        starting=common.transition_after(after, "STARTING", killed_wall).at - killed_wall,
        reported=common.transition_after(after, "SERVING", killed_wall).at - killed_wall,
        immediate="at once" in backoff.reason,
    )


def run(kills: int) -> dict[str, Any]:
    """Bring the workspace up, kill its server KILLS times (plus one warm-up), interleaved with
    reference starts; return the samples and medians."""
    root = common.private_tempdir()
    location = common.python_file(common.EMPTY_LOCATION, NAME)
    workspace_file = common.write_workspace(root, [location], envs=root / "envs", head=DEFAULTS)
    scratch = root / "ref"
    scratch.mkdir()
    up: common.Up | None = None
    try:
        common.build_env(workspace_file)
        up = common.Up(workspace_file, cwd=root)
        with common.connect(up, UP_TIMEOUT) as client:
            first = wait_status(up, client, common.is_serving, UP_TIMEOUT, "SERVING")
            python, version = common.interpreter_of(first.pid)
            # Warm-up, untimed: one reference start and one restart.
            run_reference(python, common.fresh_workdir(scratch, "reference"))
            kill_once(up, client)
            samples, references = [], []
            for _ in range(kills):
                references.append(run_reference(python, common.fresh_workdir(scratch, "reference")))
                samples.append(kill_once(up, client))
            restarts = common.location_status(client, NAME).restarts
    finally:
        if up is not None:
            common.stop_up(up, STOP_TIMEOUT)
        shutil.rmtree(statefile.socket_dir(workspace_file), ignore_errors=True)
        shutil.rmtree(root, ignore_errors=True)
    ours = common.median(k.serving for k in samples)
    reference = common.median(r["serving"] for r in references)
    return {
        "python": version,
        "interpreter": python,
        "kills": kills,
        "restarts_reported": restarts,
        "ours_seconds": ours,
        "reference_seconds": reference,
        "difference_seconds": ours - reference,
        "goal_seconds": reference + GOAL_MARGIN,
        "goal_met": ours <= reference + GOAL_MARGIN,
        "median_socket_seconds": common.median(k.socket for k in samples),
        "median_exit_seen_seconds": common.median(k.exit_seen for k in samples),
        "median_starting_seconds": common.median(k.starting for k in samples),
        "median_reported_seconds": common.median(k.reported for k in samples),
        "delayed_restarts": sum(not k.immediate for k in samples),
        "samples": [asdict(k) for k in samples],
        "reference_samples": [r["serving"] for r in references],
    }


def report(r: dict[str, Any]) -> None:
    """Print the figures and the goal line."""
    ms = 1000.0
    print(f"Python {r['python']} ({r['interpreter']}), median of {r['kills']} kills")
    print(f"  SIGKILL -> new server answers SERVING: ours {r['ours_seconds'] * ms:.0f} ms")
    print(
        f"    supervisor's view: exit seen +{r['median_exit_seen_seconds'] * ms:.0f} ms,"
        f" STARTING +{r['median_starting_seconds'] * ms:.0f} ms,"
        f" SERVING +{r['median_reported_seconds'] * ms:.0f} ms;"
        f" new socket +{r['median_socket_seconds'] * ms:.0f} ms"
    )
    print(
        f"  reference start (minimal gRPC server, spawn -> SERVING):"
        f" {r['reference_seconds'] * ms:.0f} ms"
    )
    print(f"  difference: {r['difference_seconds'] * ms:+.0f} ms")
    if r["delayed_restarts"]:
        print(f"  warning: {r['delayed_restarts']} restarts waited for a back-off delay")
    print(
        f"Goal (ours <= reference + {GOAL_MARGIN * ms:.0f} ms ="
        f" {r['goal_seconds'] * ms:.0f} ms): {common.verdict(r['goal_met'])}"
    )


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; exit 0 when the goal is met, 1 otherwise."""
    parser = common.parser_for(__doc__)
    parser.add_argument("--kills", type=int, default=10, help="timed kills (10)")
    args = common.parse(parser, argv, SMOKE)
    if args.kills < 1:
        parser.error("--kills must be at least 1")
    result = run(args.kills)
    return common.finish(result, args, report, result["goal_met"])


if __name__ == "__main__":
    sys.exit(main())
