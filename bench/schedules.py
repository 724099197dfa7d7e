"""Benchmark: 50 schedules due in the same minute, and the idle cost of 200 RUNNING schedules.

One `supervisor up` (untimed build first) serves two locations on the host interpreter:
`burst`, with --burst schedules on `* * * * *` (each its own one-asset target, all RUNNING),
and `calm`, with --idle-schedules RUNNING schedules due once a year. Once both serve, it waits
for the next minute's cron time, then reads the run store: the time from that cron time to the
last of the burst's runs recorded (the supervisor started it) and to the last RUN_START (its
worker process began). It then stops the burst's schedules through the control service and
measures the supervisor's CPU while idle over --idle-seconds with the calm ones RUNNING.
Goals: the 50th run recorded within 2 s of its cron time; idle under 1% of a core.
--smoke: 3 burst schedules, 20 calm ones, a 1 s idle window; it still waits for a minute's
turn, so a smoke run takes up to about 70 s.

Usage: .venv/bin/python bench/schedules.py [--burst N] [--idle-schedules N]
    [--idle-seconds S] [--json] [--smoke]
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import shutil  # noqa: E402
import time  # noqa: E402
from contextlib import closing  # noqa: E402
from datetime import datetime  # noqa: E402
from typing import Any  # noqa: E402

import psutil  # noqa: E402

from bench import common  # noqa: E402
from supervisor._proto_host import control_pb2 as pb  # noqa: E402
from supervisor.runs.store import RunStore, runs_db_path  # noqa: E402
from supervisor.supervision import statefile  # noqa: E402

RECORDED_GOAL = 2.0  # seconds from the cron time to the last run recorded, under
CPU_GOAL = 1.0  # percent of one core while idle, under
STOP_TIMEOUT = 120.0
SMOKE = {"burst": 3, "idle_schedules": 20, "idle_seconds": 1.0}


def location_source(prefix: str, count: int, cron: str) -> str:
    """A location file with COUNT assets and one RUNNING schedule on CRON for each."""
    lines = ["from supervisor import Definitions, ScheduleDefinition, asset", ""]
    for index in range(count):
        lines += ["@asset", f"def {prefix}{index:03d}():", f"    return {index}", ""]
    assets = ", ".join(f"{prefix}{index:03d}" for index in range(count))
    schedules = ", ".join(
        f"ScheduleDefinition('{prefix}_s{index:03d}', '{cron}', target=[{prefix}{index:03d}],"
        " default_status='RUNNING')"
        for index in range(count)
    )
    lines.append(f"defs = Definitions(assets=[{assets}], schedules=[{schedules}])")
    return "\n".join(lines) + "\n"


def make_workspace(root: Path, burst: int, calm: int) -> Path:
    folder = root / "ws"
    folder.mkdir(mode=0o700)
    (folder / "burst.py").write_text(location_source("b", burst, "* * * * *"))
    (folder / "calm.py").write_text(location_source("c", calm, "0 0 1 1 *"))
    entries = [
        common.python_file(folder / "burst.py", "burst"),
        common.python_file(folder / "calm.py", "calm"),
    ]
    return common.write_workspace(folder, entries, envs=root / "envs")


def stamp(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def burst_figures(up: common.Up, store_path: Path, burst: int, after: float) -> dict[str, Any]:
    """Wait for the first cron time after AFTER to start BURST runs; their timings."""
    due = (int(after) // 60 + 1) * 60.0

    def started() -> list[dict[str, Any]] | None:
        if not store_path.exists():
            return None
        with closing(RunStore(store_path, readonly=True)) as store:
            runs = [r for r in store.list_runs(location="burst") if stamp(r["started_at"]) >= due]
            if len(runs) < burst:
                return None
            full = [store.get_run(r["id"]) for r in runs]
        begun = [e for run in full for e in run["events"] if e["type"] == "RUN_START"]
        return full if len(begun) == burst else None

    runs = common.poll(up, started, due - time.time() + 120, f"{burst} scheduled runs")
    recorded = max(stamp(r["started_at"]) for r in runs)
    begun = max(stamp(e["time"]) for r in runs for e in r["events"] if e["type"] == "RUN_START")
    return {
        "cron_time": due,
        "to_last_recorded_seconds": recorded - due,
        "to_last_run_start_seconds": begun - due,
        "triggers": sorted({r["trigger"] for r in runs})[:3],
    }


def idle_cpu(pid: int, seconds: float) -> float:
    """The supervisor's own CPU, percent of a core, over SECONDS."""
    proc = psutil.Process(pid)
    before = proc.cpu_times()
    started = time.monotonic()
    time.sleep(seconds)
    after = proc.cpu_times()
    busy = (after.user + after.system) - (before.user + before.system)
    return 100 * busy / (time.monotonic() - started)


def run(burst: int, calm: int, idle_seconds: float) -> dict[str, Any]:
    root = common.private_tempdir()
    workspace = make_workspace(root, burst, calm)
    result: dict[str, Any] = {"burst": burst, "idle_schedules": calm}
    up: common.Up | None = None
    try:
        common.build_env(workspace)
        up = common.Up(workspace, cwd=workspace.parent)
        client = common.connect(up, common.QUICK_TIMEOUT)
        with client:
            for name in ("burst", "calm"):
                common.wait_location(
                    up, client, name, common.is_serving, common.QUICK_TIMEOUT, "SERVING"
                )

            def listed() -> int | None:
                reply = client.call("ListSchedules", pb.ListSchedulesRequest())
                return len(reply.schedules) if len(reply.schedules) == burst + calm else None

            common.poll(up, listed, common.QUICK_TIMEOUT, "every schedule known")
            store_path = runs_db_path(statefile.state_dir_of(workspace))
            result.update(burst_figures(up, store_path, burst, time.time()))
            for index in range(burst):
                request = pb.SetScheduleStatusRequest(schedule=f"burst.b_s{index:03d}")
                client.call("SetScheduleStatus", request)
            reply = client.call("ListSchedules", pb.ListSchedulesRequest())
            result["running_while_idle"] = sum(s.status == "RUNNING" for s in reply.schedules)
        time.sleep(1.0)  # the last runs' events and the stops settle before the window
        result["idle_seconds"] = idle_seconds
        result["idle_cpu_percent"] = idle_cpu(up.proc.pid, idle_seconds)
    finally:
        if up is not None:
            common.stop_up(up, STOP_TIMEOUT)
        shutil.rmtree(statefile.socket_dir(workspace), ignore_errors=True)
        shutil.rmtree(root, ignore_errors=True)
    result["goals"] = {
        "burst": result["to_last_recorded_seconds"] < RECORDED_GOAL,
        "idle_cpu": result["idle_cpu_percent"] < CPU_GOAL,
    }
    result["goals_met"] = all(result["goals"].values())
    return result


def report(r: dict[str, Any]) -> None:
    goals = r["goals"]
    print(
        f"{r['burst']} schedules due at the same minute: cron time -> last run recorded"
        f" {r['to_last_recorded_seconds']:.3f} s, -> last RUN_START"
        f" {r['to_last_run_start_seconds']:.3f} s (triggers {', '.join(r['triggers'])}, ...)"
        f"  goal recorded < {RECORDED_GOAL:g} s: {common.verdict(goals['burst'])}"
    )
    print(
        f"supervisor CPU idle with {r['running_while_idle']} RUNNING schedules over"
        f" {r['idle_seconds']:.0f} s: {r['idle_cpu_percent']:.2f}% of a core"
        f"  goal < {CPU_GOAL:g}%: {common.verdict(goals['idle_cpu'])}"
    )
    print(f"Goals: {common.verdict(r['goals_met'])}")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; exit 0 when every goal is met, 1 otherwise."""
    parser = common.parser_for(__doc__)
    parser.add_argument("--burst", type=int, default=50, help="schedules due together (50)")
    parser.add_argument(
        "--idle-schedules", type=int, default=200, help="RUNNING schedules while idle (200)"
    )
    parser.add_argument("--idle-seconds", type=float, default=30.0, help="idle window (30)")
    args = common.parse(parser, argv, SMOKE)
    if args.burst < 1 or args.idle_schedules < 1 or args.idle_seconds <= 0:
        parser.error("--burst and --idle-schedules must be at least 1, --idle-seconds above 0")
    result = run(args.burst, args.idle_schedules, args.idle_seconds)
    return common.finish(result, args, report, result["goals_met"])


if __name__ == "__main__":
    sys.exit(main())
