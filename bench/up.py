"""Benchmark: a warm `supervisor up` of 3 and of 50 locations, and the idle supervisor's cost.

Builds one environment (untimed; every location is a `python_file` location on
examples/empty_location.py on the host interpreter, so all share it) and runs one untimed `up`
to warm the caches. Then times spawning `supervisor up -w FILE` until every location is
SERVING (status polled through the control socket every 20 ms): 3 locations (median of
--runs), then --locations. With those running it measures the `up` process's own RSS and its
CPU use while idle, and finally how long it takes to stop on SIGTERM.
Goals: 3 locations up in under 1.5 s; with 50, the supervisor under 100 MB RSS and under 2%
of a core while idle. --smoke: 3 locations, one run, a 1 s idle window.

Usage: .venv/bin/python bench/up.py [--locations N] [--idle-seconds S] [--runs R]
    [--settle-seconds S] [--json] [--smoke]
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import contextlib  # noqa: E402
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

SMALL = 3
SMALL_GOAL = 1.5  # seconds to all SERVING, under
RSS_GOAL = 100e6  # bytes (100 MB), under
CPU_GOAL = 2.0  # percent of one core while idle, under
SETTLE_SECONDS = 2.0  # after all SERVING, before the idle window
STOP_TIMEOUT = 120.0
FAILED = {"BUILD_FAILED", "FATAL", "LOAD_ERROR", "STOPPED"}
MB = 1e6
SMOKE = {"locations": SMALL, "idle_seconds": 1.0, "runs": 1, "settle_seconds": 0.5}


def make_workspace(folder: Path, envs: Path, count: int) -> Path:
    """A workspace file in FOLDER with COUNT locations on examples/empty_location.py."""
    folder.mkdir(mode=0o700)
    entries = (
        common.python_file(common.EMPTY_LOCATION, f"loc{index:03d}") for index in range(count)
    )
    return common.write_workspace(folder, entries, envs=envs)


def states(up: common.Up, client: ControlClient | None) -> tuple[ControlClient | None, list[str]]:
    """Every location's state ([] while nothing answers), and the client to ask next time."""
    if client is None:
        try:
            client = ControlClient(up.workspace_file, timeout=5)
        except SupervisorError:
            return None, []
    try:
        reply = client.call("Status", pb.StatusRequest(), timeout=5)
    except SupervisorError:
        # A channel that failed to connect backs off; a fresh one does not.
        client.__exit__()
        return None, []
    return client, [s.state for s in reply.locations]


def wait_all_serving(up: common.Up, count: int, timeout: float) -> None:
    """Poll status until COUNT locations are SERVING; fail when one fails, or at the deadline."""
    client: ControlClient | None = None
    seen: list[str] = []

    def check() -> bool | None:
        nonlocal client, seen
        client, seen = states(up, client)
        if FAILED & set(seen):
            raise RuntimeError(f"a location failed ({sorted(set(seen))}):\n{up.log()}")
        return True if len(seen) == count and all(s == "SERVING" for s in seen) else None

    try:
        common.poll(up, check, timeout, f"{count} locations SERVING", lambda: seen)
    finally:
        if client is not None:
            client.__exit__()


def start_up(workspace_file: Path, count: int) -> tuple[common.Up, float]:
    """Spawn `up` and wait until all COUNT locations are SERVING; the Up and the seconds."""
    started = time.monotonic()
    up = common.Up(workspace_file, cwd=workspace_file.parent)
    try:
        wait_all_serving(up, count, 60 + 2 * count)
    except BaseException:
        common.stop_up(up, STOP_TIMEOUT)
        raise
    return up, time.monotonic() - started


def busy_seconds(times: Any) -> float:
    return float(times.user + times.system)


def idle_cost(pid: int, seconds: float) -> dict[str, Any]:
    """The supervisor's CPU over SECONDS of idling (and its code servers', for context)."""
    proc = psutil.Process(pid)
    children = proc.children(recursive=True)
    before = {c.pid: busy_seconds(c.cpu_times()) for c in children}
    own_before = busy_seconds(proc.cpu_times())
    started = time.monotonic()
    time.sleep(seconds)
    own_after = busy_seconds(proc.cpu_times())
    wall = time.monotonic() - started
    children_busy = 0.0
    for child in children:
        with contextlib.suppress(psutil.Error):
            children_busy += busy_seconds(child.cpu_times()) - before[child.pid]
    return {
        "idle_seconds": wall,
        "cpu_percent": 100 * (own_after - own_before) / wall,
        "children_cpu_percent": 100 * children_busy / wall,
        "rss_bytes": proc.memory_info().rss,
        "threads": proc.num_threads(),
        "fds": proc.num_fds(),
    }


def run(locations: int, idle_seconds: float, runs: int, settle_seconds: float) -> dict[str, Any]:
    """Build, warm up, time the small and the large `up`; return the figures."""
    root = common.private_tempdir()
    envs = root / "envs"
    small = make_workspace(root / "small", envs, SMALL)
    large = make_workspace(root / "large", envs, locations)
    result: dict[str, Any] = {"locations": locations, "runs": runs}
    up: common.Up | None = None
    try:
        common.build_env(large)
        common.stop_up(start_up(small, SMALL)[0], STOP_TIMEOUT)  # warm-up, untimed
        small_samples = []
        for _ in range(runs):
            up, seconds = start_up(small, SMALL)
            common.stop_up(up, STOP_TIMEOUT)
            up = None
            small_samples.append(seconds)
        result["small_up_seconds"] = common.median(small_samples)
        result["small_up_samples"] = small_samples
        up, result["large_up_seconds"] = start_up(large, locations)
        result["rss_serving_bytes"] = psutil.Process(up.proc.pid).memory_info().rss
        time.sleep(settle_seconds)
        result.update(idle_cost(up.proc.pid, idle_seconds))
        stopping = time.monotonic()
        up.proc.send_signal(signal.SIGTERM)
        result["exit_code"] = up.proc.wait(STOP_TIMEOUT)
        result["stop_seconds"] = time.monotonic() - stopping
    finally:
        if up is not None:
            common.stop_up(up, STOP_TIMEOUT)
        for workspace_file in (small, large):
            shutil.rmtree(statefile.socket_dir(workspace_file), ignore_errors=True)
        shutil.rmtree(root, ignore_errors=True)
    result["goals"] = {
        "small_up": result["small_up_seconds"] < SMALL_GOAL,
        "rss": result["rss_bytes"] < RSS_GOAL,
        "idle_cpu": result["cpu_percent"] < CPU_GOAL,
    }
    result["goals_met"] = all(result["goals"].values())
    return result


def report(r: dict[str, Any]) -> None:
    """Print the figures and met / not met per goal."""
    goals, n = r["goals"], r["locations"]
    samples = ", ".join(f"{s:.2f}" for s in r["small_up_samples"])
    print(
        f"up, {SMALL} locations, spawn -> all SERVING: {r['small_up_seconds']:.2f} s"
        f" (median of {r['runs']}: {samples})"
        f"  goal < {SMALL_GOAL:g} s: {common.verdict(goals['small_up'])}"
    )
    print(f"up, {n} locations, spawn -> all SERVING: {r['large_up_seconds']:.2f} s")
    print(
        f"supervisor RSS with {n} serving: {r['rss_bytes'] / MB:.1f} MB after"
        f" {r['idle_seconds']:.0f} s idle ({r['rss_serving_bytes'] / MB:.1f} MB at all SERVING;"
        f" {r['threads']} threads, {r['fds']} fds)"
        f"  goal < {RSS_GOAL / MB:.0f} MB: {common.verdict(goals['rss'])}"
    )
    print(
        f"supervisor CPU idle over {r['idle_seconds']:.0f} s: {r['cpu_percent']:.2f}% of a core"
        f" (its {n} code servers together: {r['children_cpu_percent']:.2f}%)"
        f"  goal < {CPU_GOAL:g}%: {common.verdict(goals['idle_cpu'])}"
    )
    print(f"stop with {n} locations, SIGTERM -> exit {r['exit_code']}: {r['stop_seconds']:.2f} s")
    print(f"Goals: {common.verdict(r['goals_met'])}")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; exit 0 when every goal is met, 1 otherwise."""
    parser = common.parser_for(__doc__)
    parser.add_argument("--locations", type=int, default=50, help="locations of the large up")
    parser.add_argument("--idle-seconds", type=float, default=30.0, help="idle window (30)")
    parser.add_argument("--runs", type=int, default=3, help="timed runs of the 3-location up")
    parser.add_argument(
        "--settle-seconds", type=float, default=SETTLE_SECONDS, help="before the idle window (2)"
    )
    args = common.parse(parser, argv, SMOKE)
    if args.locations < 1 or args.runs < 1 or args.idle_seconds <= 0 or args.settle_seconds < 0:
        parser.error("--locations and --runs must be at least 1, --idle-seconds above 0")
    result = run(args.locations, args.idle_seconds, args.runs, args.settle_seconds)
    return common.finish(result, args, report, result["goals_met"])


if __name__ == "__main__":
    sys.exit(main())
