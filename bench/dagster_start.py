"""Benchmark: a supervised Dagster code server's start and idle RSS against bare `dagster api grpc`.

Builds one uv environment on Python 3.12 with dagster and the child runtime, writes a small
Dagster location (two chained assets), then, interleaving the two kinds of runs to share
machine noise, measures spawn -> the code loaded (a ListRepositories answered):
- supervised: the command and readiness the supervisor uses (DagsterServerProcess: the
  bootstrap, the "Started" log record, one ListRepositories);
- bare: `python -m dagster api grpc -f defs.py --socket S`, started by hand, asked
  ListRepositories on a channel that waits for it (fast reconnect: no back-off lag);
and the idle RSS of each after a short settle. --smoke: one run of each.

Usage: .venv/bin/python bench/dagster_start.py [--runs N] [--json] [--smoke]
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import asyncio  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

import grpc  # noqa: E402
import psutil  # noqa: E402

from bench import common  # noqa: E402
from bench.common import Sample  # noqa: E402
from supervisor.launch.command import child_environment  # noqa: E402
from supervisor.launch.dagster import dagster_command  # noqa: E402
from supervisor.launch.dagster_process import DagsterServerProcess  # noqa: E402
from supervisor.runtime import install_runtime  # noqa: E402
from supervisor.tools import uv_binary  # noqa: E402
from supervisor.workspace.specs import LocationSpec  # noqa: E402

DAGSTER = "dagster>=1.13,<1.14"
START_GOAL = 1.05  # supervised / bare, at most
RSS_GOAL = 1.02
STARTUP_TIMEOUT = 120.0
SETTLE_SECONDS = 1.0
MIB = 1024 * 1024
SMOKE = {"runs": 1}
DEFS = """
from dagster import Definitions, asset

@asset
def numbers():
    return [1, 2, 3]

@asset
def total(numbers):
    return sum(numbers)

defs = Definitions(assets=[numbers, total])
"""
FAST_RECONNECT = [
    ("grpc.initial_reconnect_backoff_ms", 10),
    ("grpc.min_reconnect_backoff_ms", 10),
    ("grpc.max_reconnect_backoff_ms", 50),
]


def dagster_env(root: Path) -> str:
    """A uv environment on 3.12 holding dagster and the child runtime: its python."""
    uv = uv_binary()
    python = root / "bin" / "python"
    subprocess.run(
        [uv, "venv", "--quiet", "--python", common.pyenv_python("3.12"), str(root)],
        check=True,
        timeout=600,
    )
    subprocess.run(
        [uv, "pip", "install", "--quiet", "--python", str(python), DAGSTER],
        check=True,
        timeout=900,
    )
    site = common.run_python(
        str(python), "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    )
    install_runtime(Path(site))
    return str(python)


def idle_rss(pid: int) -> int:
    time.sleep(SETTLE_SECONDS)
    return psutil.Process(pid).memory_info().rss


async def _supervised(python: str, workdir: Path) -> Sample:
    spec = LocationSpec(
        "bench", "python_file", 0, python_file=workdir / "defs.py", working_directory=workdir
    )
    argv = [*dagster_command(python, spec), "--socket", str(workdir / "s.sock")]
    log = open(workdir / "supervised.log", "ab")  # noqa: SIM115 - closed below

    def output(stream: str, line: bytes) -> None:
        log.write(line)

    process = DagsterServerProcess(
        "bench", argv, child_environment(), str(workdir), output, workdir / "s.sock"
    )
    try:
        started = time.monotonic()
        ready = await process.start(STARTUP_TIMEOUT)
        loaded = time.monotonic() - started
        if ready.load_error:
            raise RuntimeError(f"the location failed to load: {ready.load_error}")
        rss = await asyncio.to_thread(idle_rss, ready.pid)
    finally:
        await process.stop(10.0)
        log.close()
    return Sample({"loaded": loaded, "rss_bytes": rss})


def run_supervised(python: str, workdir: Path) -> Sample:
    return asyncio.run(_supervised(python, workdir))


def run_bare(python: str, workdir: Path) -> Sample:
    """`dagster api grpc` as a person starts it, and a client that waits for its answer."""
    socket = workdir / "s.sock"
    argv = [python, "-m", "dagster", "api", "grpc", "-f", "defs.py", "--socket", str(socket)]
    with open(workdir / "bare.log", "wb") as log:
        started = time.monotonic()
        proc = subprocess.Popen(
            argv, cwd=workdir, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            with grpc.insecure_channel(f"unix:{socket}", options=FAST_RECONNECT) as channel:
                call = channel.unary_unary(
                    "/api.DagsterApi/ListRepositories",
                    request_serializer=lambda _: b"",
                    response_deserializer=lambda data: data,
                )
                call(None, timeout=STARTUP_TIMEOUT, wait_for_ready=True)
            loaded = time.monotonic() - started
            rss = idle_rss(proc.pid)
        finally:
            common.stop_process(proc)
    return Sample({"loaded": loaded, "rss_bytes": rss})


def run(runs: int) -> dict[str, Any]:
    scratch = Path(tempfile.mkdtemp(prefix="bench-dagster-"))
    try:
        built = time.monotonic()
        python = dagster_env(scratch / "env")
        build_seconds = time.monotonic() - built
        version = common.run_python(
            python, "import importlib.metadata as m; print(m.version('dagster'))"
        )
        kinds = {"supervised": (run_supervised, []), "bare": (run_bare, [])}
        samples: dict[str, list[Sample]] = {name: [] for name in kinds}
        for round_ in range(runs + 1):  # the first round, untimed, writes the .pyc files
            for name, (measure, _) in kinds.items():
                workdir = common.fresh_workdir(scratch, f"{name}-{round_}")
                (workdir / "defs.py").write_text(DEFS)
                sample = measure(python, workdir)
                if round_:
                    samples[name].append(sample)
        ours, bare = common.medians(samples["supervised"]), common.medians(samples["bare"])
        result: dict[str, Any] = {
            "dagster": version,
            "env_build_seconds": round(build_seconds, 2),
            "runs": runs,
            "supervised": {"loaded_seconds": ours["loaded"], "rss_bytes": int(ours["rss_bytes"])},
            "bare": {"loaded_seconds": bare["loaded"], "rss_bytes": int(bare["rss_bytes"])},
            "start_ratio": ours["loaded"] / bare["loaded"],
            "rss_ratio": ours["rss_bytes"] / bare["rss_bytes"],
        }
        result["goals_met"] = (
            result["start_ratio"] <= START_GOAL and result["rss_ratio"] <= RSS_GOAL
        )
        return result
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def report(r: dict[str, Any]) -> None:
    ours, bare = r["supervised"], r["bare"]
    print(f"dagster {r['dagster']} on Python 3.12, median of {r['runs']}")
    print(
        f"start to loaded: supervised {ours['loaded_seconds']:.3f} s, bare"
        f" {bare['loaded_seconds']:.3f} s, ratio {r['start_ratio']:.3f}"
    )
    print(
        f"idle RSS: supervised {ours['rss_bytes'] / MIB:.1f} MiB, bare"
        f" {bare['rss_bytes'] / MIB:.1f} MiB, ratio {r['rss_ratio']:.3f}"
    )
    print(f"Goals (start <= {START_GOAL}x, RSS <= {RSS_GOAL}x): {common.verdict(r['goals_met'])}")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; exit 0 when every goal is met, 1 otherwise."""
    parser = common.parser_for(__doc__)
    parser.add_argument("--runs", type=int, default=10, help="runs of each (10)")
    args = common.parse(parser, argv, SMOKE)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    result = run(args.runs)
    return common.finish(result, args, report, result["goals_met"])


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
