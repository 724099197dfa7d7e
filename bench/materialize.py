"""Benchmark: the round trip of materializing three trivial chained assets (a -> b -> c).

Runs a real `supervisor up` on a one-location workspace in a temp folder (a `python_file`
location on bench/three_assets.py, the host interpreter, its environment built untimed) and,
after one untimed warm-up of each, interleaves --runs times:
  (a) the CLI: `supervisor materialize c --upstream -w FILE`, the subprocess's wall time;
  (b) the control API: Materialize(c, upstream) through one ControlClient, from the call until
      the final event arrives;
  (c) in-process: the three functions of the module file called directly, c(b(a())).
Every run materializes all three assets (`--upstream`). The events' own timestamps split (b):
the call -> RUN_START (the supervisor resolves the assets and calls the code server), RUN_START
-> first STEP_START (the waiting run worker given its run, or a fresh one started), the
steps, and RUN_SUCCESS -> its arrival (relayed by the code server and the supervisor). For scale,
the location's interpreter is also timed starting bare and importing the worker module.
Each run starts --gap seconds after the one before ended: the code server's waiting run
worker (taken by the run before, replaced at once) has then imported its code, as between
runs a person or a schedule starts; with --gap 0 a run may wait for it.
Goal: the control-API round trip (median) under 30 ms. --smoke: one run of each kind.

Usage: .venv/bin/python bench/materialize.py [--runs N] [--gap S] [--json] [--smoke]
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import importlib.util  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from types import ModuleType  # noqa: E402
from typing import Any  # noqa: E402

from bench import common  # noqa: E402
from supervisor._proto import codeserver_pb2 as cs  # noqa: E402
from supervisor._proto_host import control_pb2 as pb  # noqa: E402
from supervisor.control.client import ControlClient  # noqa: E402
from supervisor.supervision import statefile  # noqa: E402

NAME = "chain"
STEPS = ["a", "b", "c"]
API_GOAL = 0.030  # seconds, under
UP_TIMEOUT = 120.0
RUN_TIMEOUT = 60.0
FINAL = (cs.RUN_SUCCESS, cs.RUN_FAILURE, cs.RUN_CANCELED)
PHASES = ("resolve", "worker_start", "steps", "relay")
MS = 1000.0
SMOKE = {"runs": 1}


def via_cli(workspace_file: Path) -> float:
    """`supervisor materialize c --upstream`: the subprocess's wall time."""
    started = time.perf_counter()
    done = subprocess.run(
        [common.SUPERVISOR, "materialize", STEPS[-1], "--upstream", "-w", str(workspace_file)],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0 or "RUN_SUCCESS" not in done.stdout:
        raise RuntimeError(f"the CLI run failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return seconds


def via_api(client: ControlClient) -> dict[str, float]:
    """Materialize through the control API until the final event: the round trip and its
    phases, from the events' timestamps (all on this machine's wall clock)."""
    request = pb.MaterializeRequest(assets=[STEPS[-1]], upstream=True)
    sent_wall = time.time()
    started = time.perf_counter()
    call = client.stream("Materialize", request)
    timer = threading.Timer(RUN_TIMEOUT, call.cancel)  # the deadline: cancel the stream
    timer.start()
    events: list[cs.RunEvent] = []
    seconds = arrived_wall = 0.0
    try:
        # Read to the stream's end (as the CLI does): cancelling it right after the final
        # event would have the code server stop a worker that has not exited yet.
        for event in client.events(call):
            events.append(event)
            if event.type in FINAL:
                seconds = time.perf_counter() - started
                arrived_wall = time.time()
        ended = time.perf_counter() - started
    finally:
        timer.cancel()
    if not events or events[-1].type != cs.RUN_SUCCESS:
        last = events[-1] if events else None
        raise RuntimeError(f"the API run did not succeed within {RUN_TIMEOUT:g}s: {last}")
    steps = [e.step for e in events if e.type == cs.STEP_START]
    if steps != STEPS:
        raise RuntimeError(f"the run's steps were {steps}, not {STEPS}")
    run_start = next(e.time for e in events if e.type == cs.RUN_START)
    first_step = next(e.time for e in events if e.type == cs.STEP_START)
    success = events[-1].time
    return {
        "seconds": seconds,
        "resolve": run_start - sent_wall,
        "worker_start": first_step - run_start,
        "steps": success - first_step,
        "relay": arrived_wall - success,
        "stream_end": ended,
    }


def load_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_three_assets", common.THREE_ASSETS)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def in_process(module: ModuleType) -> float:
    """The three asset functions called directly, in order."""
    started = time.perf_counter()
    value = module.c(module.b(module.a()))
    seconds = time.perf_counter() - started
    if value != 4:
        raise RuntimeError(f"c(b(a())) returned {value!r}")
    return seconds


def interpreter_starts(python: str, runs: int) -> dict[str, float]:
    """The location's interpreter: bare start, and start plus the run worker's imports."""
    importing = (
        f"import sys; sys.path.insert(0, {str(REPO)!r}); import supervisor.codeserver.worker"
    )
    result = {}
    for label, code in (("bare", "pass"), ("worker_import", importing)):
        samples = []
        for _ in range(runs + 1):  # the first is a warm-up
            started = time.perf_counter()
            subprocess.run([python, "-c", code], check=True, timeout=RUN_TIMEOUT)
            samples.append(time.perf_counter() - started)
        result[label] = common.median(samples[1:])
    return result


def run(runs: int, gap: float) -> dict[str, Any]:
    """Bring the workspace up, warm up, then interleave RUNS runs of each kind."""
    root = common.private_tempdir()
    workspace_file = common.write_workspace(
        root, [common.python_file(common.THREE_ASSETS, NAME)], envs=root / "envs"
    )
    module = load_module()
    up: common.Up | None = None
    cli, api, local = [], [], []
    try:
        common.build_env(workspace_file)
        up = common.Up(workspace_file, cwd=root)
        with common.connect(up, UP_TIMEOUT) as client:
            first, _ = common.wait_location(
                up, client, NAME, common.is_serving, UP_TIMEOUT, "SERVING"
            )
            python, version = common.interpreter_of(first.pid)
            via_cli(workspace_file)  # warm-up, untimed
            via_api(client)
            in_process(module)
            for _ in range(runs):
                time.sleep(gap)
                cli.append(via_cli(workspace_file))
                time.sleep(gap)
                api.append(via_api(client))
                local.append(in_process(module))
            starts = interpreter_starts(python, min(runs, 10))
    finally:
        if up is not None:
            common.stop_up(up)
        shutil.rmtree(statefile.socket_dir(workspace_file), ignore_errors=True)
        shutil.rmtree(root, ignore_errors=True)
    cli_median = common.median(cli)
    api_median = common.median(a["seconds"] for a in api)
    local_median = common.median(local)
    return {
        "python": version,
        "interpreter": python,
        "runs": runs,
        "gap_seconds": gap,
        "cli_seconds": cli_median,
        "api_seconds": api_median,
        "in_process_seconds": local_median,
        "cli_over_api": cli_median / api_median,
        "api_over_in_process": api_median / local_median,
        "api_phases_seconds": {p: common.median(a[p] for a in api) for p in PHASES},
        "api_stream_end_seconds": common.median(a["stream_end"] for a in api),
        "interpreter_start_seconds": starts,
        "goal_seconds": API_GOAL,
        "goal_met": api_median < API_GOAL,
        "cli_samples": cli,
        "api_samples": [a["seconds"] for a in api],
        "in_process_samples": local,
    }


def report(r: dict[str, Any]) -> None:
    """Print the figures and the goal line."""
    phases, starts = r["api_phases_seconds"], r["interpreter_start_seconds"]
    print(f"Python {r['python']} ({r['interpreter']}), a -> b -> c, median of {r['runs']} runs")
    print(f"  (a) CLI `materialize c --upstream`:  {r['cli_seconds'] * MS:8.1f} ms")
    print(f"  (b) control API, call -> final event: {r['api_seconds'] * MS:8.1f} ms")
    print(f"  (c) in-process c(b(a())):            {r['in_process_seconds'] * 1e6:8.1f} us")
    print(
        f"  ratios: CLI / API {r['cli_over_api']:.2f}x;"
        f" API / in-process {r['api_over_in_process']:,.0f}x"
    )
    print(
        "  API phases (medians): call -> RUN_START"
        f" {phases['resolve'] * MS:.1f} ms, RUN_START -> first STEP_START"
        f" {phases['worker_start'] * MS:.1f} ms (the worker given its run),"
    )
    print(
        f"    steps {phases['steps'] * MS:.1f} ms, RUN_SUCCESS -> arrival"
        f" {phases['relay'] * MS:.1f} ms; the stream ends at"
        f" {r['api_stream_end_seconds'] * MS:.1f} ms"
    )
    print(
        f"  the location's interpreter: bare start {starts['bare'] * MS:.1f} ms, start +"
        f" `import supervisor.codeserver.worker` {starts['worker_import'] * MS:.1f} ms"
    )
    print(f"Goal (control API < {r['goal_seconds'] * MS:.0f} ms): {common.verdict(r['goal_met'])}")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; exit 0 when the goal is met, 1 otherwise."""
    parser = common.parser_for(__doc__)
    parser.add_argument("--runs", type=int, default=20, help="timed runs of each kind (20)")
    parser.add_argument("--gap", type=float, default=0.25, help="seconds between runs (0.25)")
    args = common.parse(parser, argv, SMOKE)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    result = run(args.runs, args.gap)
    return common.finish(result, args, report, result["goal_met"])


if __name__ == "__main__":
    sys.exit(main())
