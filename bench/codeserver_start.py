"""Benchmark: our code server's start time and idle RSS against a minimal gRPC server.

For each interpreter, builds one uv environment (grpcio, protobuf, the child runtime) and then,
interleaving the two kinds of runs to share machine noise, starts each server the way the
supervisor does (CodeServerProcess, here through launch.blocking) and measures spawn -> ready
line on the inherited pipe -> one Health.Check answered SERVING, and the idle RSS after a short
settle. --smoke: one run of each on Python 3.8.

Usage: .venv/bin/python bench/codeserver_start.py [--runs N] [--pythons 3.8,3.13] [--json]
    [--smoke]
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import shutil  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from typing import Any  # noqa: E402

import psutil  # noqa: E402

from bench import common  # noqa: E402
from bench.common import Sample  # noqa: E402
from supervisor.control.codeserver import CodeServerClient  # noqa: E402
from supervisor.launch.blocking import BlockingServer  # noqa: E402
from supervisor.launch.command import child_environment, code_server_command  # noqa: E402

MINIMAL_SERVER = Path(__file__).resolve().parent / "minimal_server.py"
START_GOAL = 1.3  # ours / reference, at most
RSS_GOAL = 1.25
STARTUP_TIMEOUT = 30.0
CALL_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0
SETTLE_SECONDS = 0.5
MIB = 1024 * 1024
SMOKE = {"runs": 1, "pythons": "3.8"}


def check_serving(address: str) -> None:
    """Make one Health.Check call; fail unless it answers SERVING."""
    with CodeServerClient(address, "bench", timeout=CALL_TIMEOUT) as client:
        status = client.health()
    if status != "SERVING":
        raise RuntimeError(f"{address} answered {status}")


def idle_rss(pid: int) -> int:
    """Resident set size of PID after a short settle."""
    time.sleep(SETTLE_SECONDS)
    return psutil.Process(pid).memory_info().rss


def measure_start(argv: list[str], workdir: Path, name: str) -> Sample:
    """Start ARGV as the supervisor starts a code server and measure one run: seconds from
    spawn to the ready line ("ready") and to SERVING ("serving"), and the idle RSS."""
    server = BlockingServer(
        argv,
        location=f"bench-{name}",
        env=child_environment(),
        cwd=str(workdir),  # not the repo: `-m` must not find the host's package
        output=workdir / f"{name}.log",
        socket_path=workdir / f"{name}.sock",
    )
    with server:
        started = time.monotonic()
        ready = server.start(STARTUP_TIMEOUT)
        ready_at = time.monotonic()
        check_serving(ready.address)
        serving_at = time.monotonic()
        if ready.load_error:
            raise RuntimeError(f"{name}: the location failed to load: {ready.load_error}")
        rss = idle_rss(ready.pid)
        server.stop(STOP_TIMEOUT)
    return Sample({"ready": ready_at - started, "serving": serving_at - started, "rss_bytes": rss})


def run_ours(python: str, workdir: Path) -> Sample:
    """Our code server on examples/empty_location.py."""
    socket = workdir / "ours.sock"
    argv = code_server_command(python, python_file=str(common.EMPTY_LOCATION), socket=str(socket))
    return measure_start(argv, workdir, "ours")


def run_reference(python: str, workdir: Path) -> Sample:
    """The minimal gRPC server (bench/minimal_server.py), started the same way."""
    argv = [python, str(MINIMAL_SERVER), str(workdir / "reference.sock")]
    return measure_start(argv, workdir, "reference")


def bench_python(minor: str, runs: int, scratch: Path, envs: Path) -> dict[str, Any]:
    """Build the environment for MINOR and run both servers RUNS times, interleaved."""
    interpreter = common.pyenv_python(minor)
    built = time.monotonic()
    python = str(common.child_env(envs / f"py{minor}", interpreter))
    build_seconds = time.monotonic() - built
    version = common.run_python(
        python,
        "import sys, grpc, google.protobuf as p; "
        "print(sys.version.split()[0], grpc.__version__, p.__version__)",
    ).split()
    kinds: dict[str, tuple[Callable[[str, Path], Sample], list[Sample]]] = {
        "ours": (run_ours, []),
        "reference": (run_reference, []),
    }
    # One untimed round first: it writes the .pyc files and warms the page cache.
    for name, (run, _) in kinds.items():
        run(python, common.fresh_workdir(scratch, name))
    for _ in range(runs):
        for name, (run, samples) in kinds.items():
            samples.append(run(python, common.fresh_workdir(scratch, name)))
    ours, ref = common.medians(kinds["ours"][1]), common.medians(kinds["reference"][1])
    result: dict[str, Any] = {
        "python": version[0],
        "grpcio": version[1],
        "protobuf": version[2],
        "env_build_seconds": round(build_seconds, 2),
        "runs": runs,
    }
    for name, medians in (("ours", ours), ("reference", ref)):
        result[name] = {
            "start_seconds": medians["serving"],
            "ready_line_seconds": medians["ready"],
            "rss_bytes": int(medians["rss_bytes"]),
            "samples": [s.figures for s in kinds[name][1]],
        }
    result["start_ratio"] = ours["serving"] / ref["serving"]
    result["rss_ratio"] = ours["rss_bytes"] / ref["rss_bytes"]
    result["goals_met"] = result["start_ratio"] <= START_GOAL and result["rss_ratio"] <= RSS_GOAL
    return result


def report(results: list[dict[str, Any]]) -> None:
    """Print one block per interpreter and the goals line."""
    for r in results:
        ours, ref = r["ours"], r["reference"]
        print(
            f"Python {r['python']} (grpcio {r['grpcio']}, protobuf {r['protobuf']}),"
            f" median of {r['runs']} runs"
        )
        print(
            f"  start to SERVING: ours {ours['start_seconds']:.3f} s,"
            f" reference {ref['start_seconds']:.3f} s, ratio {r['start_ratio']:.2f}"
            f"  (ready line: {ours['ready_line_seconds']:.3f} s"
            f" / {ref['ready_line_seconds']:.3f} s)"
        )
        print(
            f"  idle RSS: ours {ours['rss_bytes'] / MIB:.1f} MiB,"
            f" reference {ref['rss_bytes'] / MIB:.1f} MiB, ratio {r['rss_ratio']:.2f}"
        )
    verdicts = ", ".join(
        f"{r['python']}: start {r['start_ratio']:.2f} "
        f"{'ok' if r['start_ratio'] <= START_GOAL else 'MISSED'}, "
        f"RSS {r['rss_ratio']:.2f} {'ok' if r['rss_ratio'] <= RSS_GOAL else 'MISSED'}"
        for r in results
    )
    met = all(r["goals_met"] for r in results)
    print(f"Goals (start <= {START_GOAL}x, RSS <= {RSS_GOAL}x): {common.verdict(met)} ({verdicts})")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; exit 0 when every goal is met, 1 otherwise."""
    parser = common.parser_for(__doc__)
    parser.add_argument("--runs", type=int, default=15, help="timed runs per server (15)")
    parser.add_argument("--pythons", default="3.8,3.13", help="minor versions (3.8,3.13)")
    args = common.parse(parser, argv, SMOKE)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    scratch = common.private_tempdir()
    envs = Path(tempfile.mkdtemp(prefix="sv-bench-envs-"))
    try:
        results = [
            bench_python(minor.strip(), args.runs, scratch, envs)
            for minor in args.pythons.split(",")
            if minor.strip()
        ]
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        shutil.rmtree(envs, ignore_errors=True)
    goals = {"start_ratio_max": START_GOAL, "rss_ratio_max": RSS_GOAL}
    met = all(r["goals_met"] for r in results)
    whole = {"goals": goals, "goals_met": met, "results": results}
    return common.finish(whole, args, lambda w: report(w["results"]), met)


if __name__ == "__main__":
    sys.exit(main())
