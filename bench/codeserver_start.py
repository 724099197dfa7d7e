"""Benchmark: our code server's start time and idle RSS against a minimal gRPC server.

For each interpreter, builds one uv environment (grpcio, protobuf, the child runtime) and then,
interleaving the two kinds of runs to share machine noise, measures spawn -> ready line on a
pipe -> one Health.Check answered SERVING, and the idle RSS after a short settle.

Usage: .venv/bin/python bench/codeserver_start.py [--runs N] [--pythons 3.8,3.13] [--json]
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import os  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import asdict, dataclass, field  # noqa: E402
from typing import Any  # noqa: E402

import psutil  # noqa: E402

from bench import common  # noqa: E402
from supervisor.client import CodeServerClient  # noqa: E402
from supervisor.launch import (  # noqa: E402
    child_environment,
    code_server_command,
    read_ready_line,
    start_code_server,
)
from tests.helpers import make_child_env, pyenv_python  # noqa: E402

MINIMAL_SERVER = Path(__file__).resolve().parent / "minimal_server.py"
START_GOAL = 1.3  # ours / reference, at most
RSS_GOAL = 1.25
STARTUP_TIMEOUT = 30.0
CALL_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0
SETTLE_SECONDS = 0.5
MIB = 1024 * 1024


@dataclass
class Sample:
    """One run: seconds from spawn to the ready line and to SERVING, and idle RSS in bytes."""

    ready: float
    serving: float
    rss: int


@dataclass
class Series:
    """All runs of one kind of server on one interpreter."""

    samples: list[Sample] = field(default_factory=list)

    def median(self, name: str) -> float:
        return statistics.median(getattr(s, name) for s in self.samples)


def tail(path: Path, size: int = 2000) -> str:
    """The last SIZE characters of a log file, for error messages."""
    try:
        return path.read_text(errors="replace")[-size:]
    except OSError:
        return ""


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


def run_ours(python: str, workdir: Path) -> Sample:
    """Start our code server with the project's launcher and measure one run."""
    socket_path = workdir / "s.sock"
    log = workdir / "ours.log"
    argv = code_server_command(
        python, python_file=str(common.EMPTY_LOCATION), socket=str(socket_path)
    )
    proc = None
    with open(log, "wb") as err:
        started = time.monotonic()
        try:
            proc, ready = start_code_server(
                argv,
                location="bench",
                cwd=str(workdir),  # not the repo: `-m` must not find the host's package
                stdout=subprocess.DEVNULL,
                stderr=err,
                startup_timeout=STARTUP_TIMEOUT,
                stderr_tail=lambda: tail(log),
            )
            ready_at = time.monotonic()
            check_serving(ready.address)
            serving_at = time.monotonic()
            if ready.load_error:
                raise RuntimeError(f"the location failed to load: {ready.load_error}")
            rss = idle_rss(proc.pid)
        finally:
            if proc is not None:
                common.stop_process(proc, STOP_TIMEOUT)
    return Sample(ready_at - started, serving_at - started, rss)


def run_reference(python: str, workdir: Path) -> Sample:
    """Start the minimal server the same way (ready line on a pipe) and measure one run."""
    socket_path = workdir / "r.sock"
    log = workdir / "reference.log"
    proc = None
    with open(log, "wb") as err:
        started = time.monotonic()
        read_fd, write_fd = os.pipe()
        try:
            try:
                proc = subprocess.Popen(
                    [python, str(MINIMAL_SERVER), str(socket_path), str(write_fd)],
                    env=child_environment(),
                    cwd=str(workdir),
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=err,
                    pass_fds=(write_fd,),
                    start_new_session=True,
                )
            finally:
                os.close(write_fd)
            ready = read_ready_line(read_fd, started + STARTUP_TIMEOUT)
            if ready is None:
                raise RuntimeError(f"reference server not ready:\n{tail(log)}")
            ready_at = time.monotonic()
            check_serving(ready["address"])
            serving_at = time.monotonic()
            rss = idle_rss(proc.pid)
        finally:
            os.close(read_fd)
            if proc is not None:
                common.stop_process(proc, STOP_TIMEOUT)
    return Sample(ready_at - started, serving_at - started, rss)


def bench_python(minor: str, runs: int, scratch: Path, envs: Path) -> dict[str, Any]:
    """Build the environment for MINOR and run both servers RUNS times, interleaved."""
    interpreter = pyenv_python(minor)
    built = time.monotonic()
    python = str(make_child_env(envs / f"py{minor}", interpreter))
    build_seconds = time.monotonic() - built
    version = subprocess.run(
        [
            python,
            "-c",
            "import sys, grpc, google.protobuf as p; "
            "print(sys.version.split()[0], grpc.__version__, p.__version__)",
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout.split()
    kinds: dict[str, tuple[Callable[[str, Path], Sample], Series]] = {
        "ours": (run_ours, Series()),
        "reference": (run_reference, Series()),
    }
    # One untimed round first: it writes the .pyc files and warms the page cache.
    for name, (run, _) in kinds.items():
        run(python, common.fresh_workdir(scratch, name))
    for _ in range(runs):
        for name, (run, series) in kinds.items():
            series.samples.append(run(python, common.fresh_workdir(scratch, name)))
    ours, ref = kinds["ours"][1], kinds["reference"][1]
    result: dict[str, Any] = {
        "python": version[0],
        "grpcio": version[1],
        "protobuf": version[2],
        "env_build_seconds": round(build_seconds, 2),
        "runs": runs,
    }
    for name, series in (("ours", ours), ("reference", ref)):
        result[name] = {
            "start_seconds": series.median("serving"),
            "ready_line_seconds": series.median("ready"),
            "rss_bytes": int(series.median("rss")),
            "samples": [asdict(s) for s in series.samples],
        }
    result["start_ratio"] = ours.median("serving") / ref.median("serving")
    result["rss_ratio"] = ours.median("rss") / ref.median("rss")
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
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
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
    return common.finish(whole, args.json, lambda w: report(w["results"]), met)


if __name__ == "__main__":
    sys.exit(main())
