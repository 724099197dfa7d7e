"""Benchmark: SIGKILL -> the location answering ListDefinitions again, with a warm standby and
without one, side by side; and what the standby costs in memory.

Runs a real `supervisor up` on two locations in a temp folder, both a `python_file` location
on examples/empty_location.py on the host interpreter (one environment, built untimed):
`cold` restarts by starting a new server, `warm` has `standby: true`. Both restart at once
after a stable run (back-off 0.5 s, stable_after 1 s; each kill waits past it). --kills times
each, interleaved: SIGKILL the active server, then call ListDefinitions for the location
through the control socket in a tight loop until it answers with its definitions (no
load_error), timed from the kill. Before each kill of `warm` its next standby is awaited
ready. The memory figure is the standby's own RSS, beside the active server's.
Goal: `warm` median <= 50 ms. --smoke: one kill of each.

Usage: .venv/bin/python bench/standby.py [--kills N] [--json] [--smoke]
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import os  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

import psutil  # noqa: E402

from bench import common  # noqa: E402
from supervisor._proto_host import control_pb2 as pb  # noqa: E402
from supervisor.control.client import ControlClient  # noqa: E402
from supervisor.errors import SupervisorError  # noqa: E402
from supervisor.supervision import statefile  # noqa: E402

GOAL = 0.050  # seconds, the standby's median
STABLE_AFTER = 1.0
STABLE_MARGIN = 0.3
UP_TIMEOUT = 120.0
RETURN_TIMEOUT = 30.0
HEAD = f"defaults:\n  restart: {{backoff_initial: 0.5, stable_after: {STABLE_AFTER:g}}}\n"
SMOKE = {"kills": 1}
POLL_SECONDS = 0.002
READY = re.compile(r"^(\w+)\s+\| standby ready \(pid (\d+)\)", re.MULTILINE)


def answers(client: ControlClient, name: str) -> bool:
    try:
        reply = client.call(
            "ListDefinitions", pb.LocationsRequest(locations=[name]), timeout=common.CALL_TIMEOUT
        )
    except SupervisorError:
        return False
    entry = reply.locations[0]
    return not entry.HasField("load_error")


def ready_standby(up: common.Up, name: str, active: int) -> int:
    """Wait for a ready standby of NAME that runs and is not ACTIVE; its pid."""

    def check() -> int | None:
        pids = [int(p) for n, p in READY.findall(up.log_path.read_text()) if n == name]
        alive = [p for p in pids if p != active and psutil.pid_exists(p)]
        return alive[-1] if alive else None

    return common.poll(up, check, UP_TIMEOUT, f"{name}: a standby ready")


def kill_once(up: common.Up, client: ControlClient, name: str) -> float:
    """SIGKILL NAME's server once it has run past stable_after; seconds until it answers."""
    status, _ = common.wait_location(up, client, name, common.is_serving, UP_TIMEOUT, "SERVING")
    started = max((t.at for t in status.history if t.to_state == "SERVING"), default=0.0)
    remaining = started + STABLE_AFTER + STABLE_MARGIN - time.time()
    if remaining > 0:
        time.sleep(remaining)
    pid = common.location_status(client, name).pid
    if name == "warm":
        ready_standby(up, name, pid)
    killed = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    deadline = killed + RETURN_TIMEOUT
    # The first answers may still come from the dead server's last moment: wait for the
    # supervisor to have seen the death (a new pid) before trusting an answer.
    while True:
        current = common.location_status(client, name)
        if current.pid != pid and current.state == "SERVING" and answers(client, name):
            return time.monotonic() - killed
        if time.monotonic() > deadline:
            raise RuntimeError(f"{name} did not answer again:\n{up.log()}")
        time.sleep(POLL_SECONDS)  # a tight loop would slow the very start it waits for


def run(kills: int) -> dict[str, Any]:
    root = common.private_tempdir()
    entries = [
        common.python_file(common.EMPTY_LOCATION, "cold"),
        common.python_file(common.EMPTY_LOCATION, "warm", standby="true"),
    ]
    workspace = common.write_workspace(root, entries, envs=root / "envs", head=HEAD)
    common.build_env(workspace)
    up = common.Up(workspace, "--no-ui", cwd=root)
    samples: dict[str, list[float]] = {"cold": [], "warm": []}
    try:
        client = common.connect(up, 60)
        for name in samples:
            common.wait_location(up, client, name, common.is_serving, UP_TIMEOUT, "SERVING")
        active = common.location_status(client, "warm").pid
        standby = ready_standby(up, "warm", active)
        memory = {
            "active_rss": psutil.Process(active).memory_info().rss,
            "standby_rss": psutil.Process(standby).memory_info().rss,
        }
        for _ in range(kills):
            for name in samples:
                samples[name].append(kill_once(up, client, name))
        client.__exit__()
    finally:
        common.stop_up(up)
        shutil.rmtree(statefile.socket_dir(workspace), ignore_errors=True)
        shutil.rmtree(root, ignore_errors=True)
    return {
        "kills": kills,
        "cold": common.median(samples["cold"]),
        "warm": common.median(samples["warm"]),
        "warm_max": max(samples["warm"]),
        **memory,
        "samples": samples,
    }


def report(result: dict[str, Any]) -> None:
    ms, mib = 1000, 2**20
    print(
        f"SIGKILL -> ListDefinitions answers again (median of {result['kills']}):"
        f" standby {result['warm'] * ms:.0f} ms, cold start {result['cold'] * ms:.0f} ms,"
        f" ratio {result['warm'] / result['cold']:.2f}"
    )
    print(f"standby worst: {result['warm_max'] * ms:.0f} ms")
    print(
        f"memory: the standby {result['standby_rss'] / mib:.1f} MiB RSS beside the active"
        f" server's {result['active_rss'] / mib:.1f} MiB"
    )
    print(f"Goal (standby median <= {GOAL * ms:.0f} ms): {common.verdict(met(result))}")


def met(result: dict[str, Any]) -> bool:
    return bool(result["warm"] <= GOAL)


def main(argv: list[str] | None = None) -> int:
    parser = common.parser_for(__doc__)
    parser.add_argument("--kills", type=int, default=10)
    args = common.parse(parser, argv, SMOKE)
    result = run(args.kills)
    return common.finish(result, args, report, met(result))


if __name__ == "__main__":
    sys.exit(main())
