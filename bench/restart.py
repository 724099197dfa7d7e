"""Benchmark: from SIGKILL of a supervised code server to SERVING again, against a cold start.

Runs a real `supervisor up` on a one-location workspace in a temp folder (a `python_file`
location on examples/empty_location.py, the host interpreter, restart back-off 0.5 s and
stable_after 1 s) and SIGKILLs its code server N times, each time after it has run past
stable_after, so that every restart is an immediate "first" one. A kill is timed to the moment
the new server answers Health.Check SERVING on its new socket; the supervisor's own transition
times (exit seen, STARTING, SERVING) split that up. The reference is the minimal gRPC server's
spawn -> SERVING time on the same interpreter, measured as bench/codeserver_start.py does and
interleaved with the kills. Goal: median restart <= median reference + 100 ms.

Usage: .venv/bin/python bench/restart.py [--kills N] [--json]
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import argparse  # noqa: E402
import contextlib  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
from dataclasses import asdict, dataclass  # noqa: E402
from typing import Any  # noqa: E402

import grpc  # noqa: E402
import psutil  # noqa: E402

from bench.codeserver_start import fresh_workdir, private_tempdir, run_reference  # noqa: E402
from supervisor import statefile  # noqa: E402
from supervisor._proto import health_pb2, health_pb2_grpc  # noqa: E402
from supervisor._proto_host import control_pb2 as pb  # noqa: E402
from supervisor.client import CHANNEL_OPTIONS  # noqa: E402
from supervisor.control import ControlClient  # noqa: E402
from supervisor.errors import SupervisorError  # noqa: E402
from tests.uphelp import SUPERVISOR, Up  # noqa: E402

EMPTY_LOCATION = REPO / "examples" / "empty_location.py"
NAME = "bench"
GOAL_MARGIN = 0.100  # seconds over the reference start, at most
STABLE_AFTER = 1.0
STABLE_MARGIN = 0.3  # run this much past stable_after before the next kill
BUILD_TIMEOUT = 900.0
UP_TIMEOUT = 120.0
RESTART_TIMEOUT = 30.0
STOP_TIMEOUT = 60.0
POLL_SECONDS = 0.002  # the new socket's appearance
STATUS_POLL_SECONDS = 0.02

WORKSPACE = """\
envs_dir: {envs}
defaults:
  restart: {{backoff_initial: 0.5, stable_after: {stable_after:g}}}
load_from:
  - python_file:
      relative_path: {file}
      location_name: {name}
"""


@dataclass
class Kill:
    """One kill; seconds from the SIGKILL to each event."""

    serving: float  # the new server answered Health.Check SERVING (our measure)
    socket: float  # the new server's socket appeared
    exit_seen: float  # the supervisor moved to BACKOFF
    starting: float  # ... to STARTING
    reported: float  # ... to SERVING
    immediate: bool  # the supervisor restarted at once (no back-off delay)


def write_workspace(root: Path, envs: Path) -> Path:
    """The one-location workspace file under ROOT."""
    path = root / "workspace.yaml"
    path.write_text(
        WORKSPACE.format(envs=envs, stable_after=STABLE_AFTER, file=EMPTY_LOCATION, name=NAME)
    )
    return path


def build_env(workspace_file: Path) -> None:
    """Build the location's environment (untimed), failing with uv's output."""
    done = subprocess.run(
        [SUPERVISOR, "env", "build", "-w", str(workspace_file)],
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT,
    )
    if done.returncode != 0:
        raise RuntimeError(f"env build failed:\n{done.stdout}\n{done.stderr}")


def status(client: ControlClient) -> pb.LocationStatus:
    """The location's status as the supervisor reports it."""
    reply = client.call("Status", pb.StatusRequest(locations=[NAME]), timeout=10)
    return reply.locations[0]


def wait_status(
    up: Up, client: ControlClient, condition: Any, timeout: float, what: str
) -> pb.LocationStatus:
    """Poll status until CONDITION holds; fail with the supervisor's log on the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        if up.proc.poll() is not None:
            raise RuntimeError(f"supervisor exited {up.proc.returncode}:\n{up.log()}")
        with contextlib.suppress(SupervisorError):
            current = status(client)
            if condition(current):
                return current
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:g}s waiting for {what}:\n{up.log()}")
        time.sleep(STATUS_POLL_SECONDS)


def connect(up: Up, timeout: float) -> ControlClient:
    """A control client, once the supervisor's control socket exists."""
    deadline = time.monotonic() + timeout
    while True:
        if up.proc.poll() is not None:
            raise RuntimeError(f"supervisor exited {up.proc.returncode}:\n{up.log()}")
        with contextlib.suppress(SupervisorError):
            return ControlClient(up.workspace_file, timeout=10)
        if time.monotonic() > deadline:
            raise RuntimeError(f"no control socket within {timeout:g}s:\n{up.log()}")
        time.sleep(STATUS_POLL_SECONDS)


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


def transition_after(current: pb.LocationStatus, to_state: str, after: float) -> Any:
    """The first recorded move to TO_STATE at or after wall-clock AFTER."""
    for transition in current.history:
        if transition.to_state == to_state and transition.at >= after:
            return transition
    raise RuntimeError(f"no move to {to_state} after the kill in {list(current.history)}")


def wait_stable(since_wall: float) -> None:
    """Sleep until the current process has run past stable_after (plus a margin)."""
    remaining = since_wall + STABLE_AFTER + STABLE_MARGIN - time.time()
    if remaining > 0:
        time.sleep(remaining)


def kill_once(up: Up, client: ControlClient) -> Kill:
    """SIGKILL the location's code server and time its return."""
    before = wait_status(up, client, lambda s: s.state == "SERVING", UP_TIMEOUT, "SERVING")
    wait_stable(max((t.at for t in before.history if t.to_state == "STARTING"), default=0.0))
    before = status(client)
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
        lambda s: s.state == "SERVING" and s.pid != old_pid,
        RESTART_TIMEOUT,
        "SERVING again",
    )
    if after.address != "unix:" + str(socket_path):
        raise RuntimeError(f"the new server is on {after.address}, not {socket_path}")
    backoff = transition_after(after, "BACKOFF", killed_wall)
    return Kill(
        serving=serving_at - killed,
        socket=socket_at - killed,
        exit_seen=backoff.at - killed_wall,
        starting=transition_after(after, "STARTING", killed_wall).at - killed_wall,
        reported=transition_after(after, "SERVING", killed_wall).at - killed_wall,
        immediate="at once" in backoff.reason,
    )


def stop_up(up: Up) -> None:
    """SIGTERM the supervisor (SIGKILL at the deadline), then end any code server it left."""
    children: list[psutil.Process] = []
    with contextlib.suppress(psutil.Error):
        children = psutil.Process(up.proc.pid).children(recursive=True)
    try:
        up.stop(signal.SIGTERM, STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        print(f"warning: supervisor ignored SIGTERM for {STOP_TIMEOUT:g}s", file=sys.stderr)
    alive = [p for p in children if p.is_running()]
    for proc in alive:
        with contextlib.suppress(psutil.Error):
            proc.terminate()
    _, alive = psutil.wait_procs(alive, timeout=5)
    for proc in alive:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(alive, timeout=5)


def interpreter_of(pid: int) -> tuple[str, str]:
    """The code server's interpreter path and its Python version."""
    python = psutil.Process(pid).cmdline()[0]
    version = subprocess.run(
        [python, "-c", "import sys; print(sys.version.split()[0])"],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout.strip()
    return python, version


def run(kills: int) -> dict[str, Any]:
    """Bring the workspace up, kill its server KILLS times (plus one warm-up), interleaved with
    reference starts; return the samples and medians."""
    root = private_tempdir()
    workspace_file = write_workspace(root, root / "envs")
    scratch = root / "ref"
    scratch.mkdir()
    up: Up | None = None
    try:
        build_env(workspace_file)
        up = Up(workspace_file, cwd=root)
        with connect(up, UP_TIMEOUT) as client:
            first = wait_status(up, client, lambda s: s.state == "SERVING", UP_TIMEOUT, "SERVING")
            python, version = interpreter_of(first.pid)
            # Warm-up, untimed: one reference start and one restart.
            run_reference(python, fresh_workdir(scratch, "reference"))
            kill_once(up, client)
            samples, references = [], []
            for _ in range(kills):
                references.append(run_reference(python, fresh_workdir(scratch, "reference")))
                samples.append(kill_once(up, client))
            restarts = status(client).restarts
    finally:
        if up is not None:
            stop_up(up)
        shutil.rmtree(statefile.socket_dir(workspace_file), ignore_errors=True)
        shutil.rmtree(root, ignore_errors=True)
    ours = statistics.median(k.serving for k in samples)
    reference = statistics.median(r.serving for r in references)
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
        "median_socket_seconds": statistics.median(k.socket for k in samples),
        "median_exit_seen_seconds": statistics.median(k.exit_seen for k in samples),
        "median_starting_seconds": statistics.median(k.starting for k in samples),
        "median_reported_seconds": statistics.median(k.reported for k in samples),
        "delayed_restarts": sum(not k.immediate for k in samples),
        "samples": [asdict(k) for k in samples],
        "reference_samples": [r.serving for r in references],
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
        f" {r['goal_seconds'] * ms:.0f} ms): {'met' if r['goal_met'] else 'NOT met'}"
    )


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; exit 0 when the goal is met, 1 otherwise."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--kills", type=int, default=10, help="timed kills (10)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    if args.kills < 1:
        parser.error("--kills must be at least 1")
    result = run(args.kills)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        report(result)
    return 0 if result["goal_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
