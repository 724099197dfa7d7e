"""Benchmark: the scaling curve, 1 to 100 locations, against the floor of this machine.

For each size N of --sizes (1, 10, 50, 100), all on one environment (a `python_file` location
on examples/empty_location.py on the host interpreter, built untimed):
- the floor: N minimal gRPC servers (bench/minimal_server.py, the health service only) started
  at once the way the supervisor starts code servers, by a fresh process as `up` is (this
  script with --floor: the same process class on one event loop), timed from that process's
  spawn until it has seen every server answer a health check SERVING;
- ours: `supervisor up` on N locations (its dashboard too), timed from its spawn until the
  control API says all N are SERVING (polled every 20 ms);
- with all serving, after --settle-seconds: the supervisor's RSS, its CPU over --idle-seconds
  with health checks on (the default 2 s interval), and the p99 of --calls calls each of
  `supervisor status` (a fresh process, as a person runs it), of the control API's Status and
  of ListDefinitions for one location through the supervisor.
The supervisor's own bytecode is compiled first, as an installed supervisor's is.
Goals: time <= 1.2x the floor at every size; RSS <= 60 MB + 0.3 MB per location; idle CPU
<= 1% of a core at 100; p99 of `status` <= 50 ms at 100.
--smoke: sizes 1 and 3, 5 calls, short windows.

Usage: .venv/bin/python bench/scale.py [--sizes 1,10,50,100] [--calls N]
    [--idle-seconds S] [--settle-seconds S] [--json] [--smoke]
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import asyncio  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

from bench import common  # noqa: E402
from bench.up import idle_cost, make_workspace, wait_all_serving  # noqa: E402
from supervisor._proto_host import control_pb2 as pb  # noqa: E402
from supervisor.control.client import ControlClient  # noqa: E402
from supervisor.control.codeserver import AsyncCodeServer, aio_channel  # noqa: E402
from supervisor.errors import CodeServerError  # noqa: E402
from supervisor.launch.command import child_environment  # noqa: E402
from supervisor.launch.process import CodeServerProcess  # noqa: E402
from supervisor.supervision import statefile  # noqa: E402

MINIMAL_SERVER = REPO / "bench" / "minimal_server.py"
TIME_RATIO_GOAL = 1.2
RSS_BASE, RSS_PER_LOCATION = 60e6, 0.3e6
CPU_GOAL = 1.0  # percent of a core, at the largest size
STATUS_P99_GOAL = 0.050
STOP_TIMEOUT = 180.0
MB = 1e6
SMOKE = {"sizes": "1,3", "calls": 5, "idle_seconds": 1.0, "settle_seconds": 0.5}


async def _floor(count: int, folder: Path) -> float:
    """Seconds from the first spawn until COUNT minimal servers all answer SERVING."""
    env = child_environment()
    processes = [
        CodeServerProcess(
            f"floor{i}",
            [sys.executable, str(MINIMAL_SERVER), str(folder / f"m{i}.sock")],
            env,
            str(folder),
            lambda stream, line: None,
            folder / f"m{i}.sock",
        )
        for i in range(count)
    ]

    async def serve(process: CodeServerProcess) -> None:
        ready = await process.start(60 + count)
        deadline = time.monotonic() + 60 + count
        while True:  # a server of many starting at once may not answer the first time
            channel = aio_channel(ready.address)
            try:
                client = AsyncCodeServer(channel, process.location, ready.address)
                if await client.health(10) == "SERVING":
                    return
            except CodeServerError:
                if time.monotonic() > deadline:
                    raise
            finally:
                await channel.close()
            await asyncio.sleep(0.01)

    started = time.monotonic()
    try:
        await asyncio.gather(*(serve(p) for p in processes))
        print("serving", flush=True)  # the parent's clock stops here
        return time.monotonic() - started
    finally:
        await asyncio.gather(*(p.stop(10) for p in processes if p.started))


def floor_seconds(count: int, root: Path) -> float:
    """The floor for COUNT servers: this script with --floor, from its spawn to its word."""
    folder = root / f"floor-{count}"
    folder.mkdir(mode=0o700)
    try:
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, __file__, "--floor", str(count), str(folder)],
            capture_output=True,
            text=True,
            timeout=120 + 2 * count,
        )
        took = time.monotonic() - started
        if done.returncode != 0 or "serving" not in done.stdout:
            raise RuntimeError(f"the floor of {count} failed:\n{done.stdout}{done.stderr}")
        return took
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def floor_main(count: int, folder: Path) -> int:
    """--floor: start COUNT minimal servers, say "serving" once all answer, stop them."""
    asyncio.run(_floor(count, folder))
    return 0


def p99_of(call: Any, calls: int) -> float:
    seconds = []
    for _ in range(calls):
        started = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - started)
    return common.percentile(seconds, 0.99)


def size_figures(
    count: int, root: Path, envs: Path, calls: int, idle: float, settle: float
) -> dict[str, Any]:
    workspace = make_workspace(root / f"up-{count}", envs, count)
    floor = floor_seconds(count, root)
    started = time.monotonic()
    up = common.Up(workspace, cwd=workspace.parent)
    try:
        wait_all_serving(up, count, 60 + 2 * count)
        ours = time.monotonic() - started
        time.sleep(settle)
        figures: dict[str, Any] = {"locations": count, "floor": floor, "ours": ours}
        figures.update(idle_cost(up.proc.pid, idle))
        status_argv = [common.SUPERVISOR, "status", "-w", str(workspace)]
        figures["status_cli_p99"] = p99_of(
            lambda: subprocess.run(status_argv, capture_output=True, check=True, timeout=60),
            calls,
        )
        with ControlClient(workspace, timeout=30) as client:
            figures["status_api_p99"] = p99_of(
                lambda: client.call("Status", pb.StatusRequest()), calls
            )
            request = pb.LocationsRequest(locations=["loc000"])
            figures["definitions_p99"] = p99_of(
                lambda: client.call("ListDefinitions", request), calls
            )
        return figures
    finally:
        common.stop_up(up, STOP_TIMEOUT)
        shutil.rmtree(statefile.socket_dir(workspace), ignore_errors=True)


def run(sizes: list[int], calls: int, idle: float, settle: float) -> dict[str, Any]:
    common.compile_host_package()
    root = common.private_tempdir()
    envs = root / "envs"
    try:
        warm = make_workspace(root / "build", envs, 1)
        common.build_env(warm)
        floor_seconds(1, root)  # warm the file cache, untimed
        rows = [size_figures(n, root, envs, calls, idle, settle) for n in sizes]
    finally:
        shutil.rmtree(root, ignore_errors=True)
    largest = rows[-1]
    goals = {
        "time": all(r["ours"] <= TIME_RATIO_GOAL * r["floor"] for r in rows),
        "rss": all(r["rss_bytes"] <= RSS_BASE + RSS_PER_LOCATION * r["locations"] for r in rows),
        "idle_cpu": largest["cpu_percent"] <= CPU_GOAL,
        # The call: a fresh `status` process costs its interpreter's start on top (the CLI
        # column; bench/cli.py holds it against `python -c "import click"`).
        "status_p99": largest["status_api_p99"] <= STATUS_P99_GOAL,
    }
    return {"sizes": rows, "goals": goals, "goals_met": all(goals.values())}


def report(result: dict[str, Any]) -> None:
    ms = 1000
    print(
        "locations  floor s  ours s  ratio  RSS MB (goal)  idle CPU %  "
        "status p99 ms (CLI / API)  ListDefinitions p99 ms"
    )
    for r in result["sizes"]:
        n = r["locations"]
        goal_mb = (RSS_BASE + RSS_PER_LOCATION * n) / MB
        print(
            f"{n:9d}  {r['floor']:7.2f}  {r['ours']:6.2f}  {r['ours'] / r['floor']:5.2f}"
            f"  {r['rss_bytes'] / MB:6.1f} ({goal_mb:.0f})  {r['cpu_percent']:10.2f}"
            f"  {r['status_cli_p99'] * ms:12.1f} / {r['status_api_p99'] * ms:.1f}"
            f"  {r['definitions_p99'] * ms:10.1f}"
        )
    goals = result["goals"]
    print(
        f"Goals: time <= {TIME_RATIO_GOAL:g}x floor {common.verdict(goals['time'])};"
        f" RSS {common.verdict(goals['rss'])}; idle CPU <= {CPU_GOAL:g}%"
        f" {common.verdict(goals['idle_cpu'])}; Status call p99 <= {STATUS_P99_GOAL * ms:.0f} ms"
        f" {common.verdict(goals['status_p99'])}: {common.verdict(result['goals_met'])}"
    )


def main(argv: list[str] | None = None) -> int:
    given = sys.argv[1:] if argv is None else argv
    if given[:1] == ["--floor"]:
        return floor_main(int(given[1]), Path(given[2]))
    parser = common.parser_for(__doc__)
    parser.add_argument("--sizes", default="1,10,50,100", help="location counts (1,10,50,100)")
    parser.add_argument("--calls", type=int, default=100, help="calls of each kind per size")
    parser.add_argument("--idle-seconds", type=float, default=10.0, help="idle window (10)")
    parser.add_argument("--settle-seconds", type=float, default=3.0, help="before it (3)")
    args = common.parse(parser, argv, SMOKE)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    if not sizes or min(sizes) < 1 or args.calls < 1:
        parser.error("--sizes are counts of at least 1; --calls at least 1")
    result = run(sizes, args.calls, args.idle_seconds, args.settle_seconds)
    return common.finish(result, args, report, result["goals_met"])


if __name__ == "__main__":
    sys.exit(main())
