"""Benchmark: `supervisor up` against `dagster dev` on the same three Dagster locations.

`dagster dev` runs every location on one Python with one set of packages, so its three
locations share one uv environment (dagster and dagster-webserver); `supervisor up` builds
the locations' environment and its webserver's own (untimed, before the runs). Interleaving
the two kinds of runs to share machine noise, each run measures:
- start: from the command to all three locations LOADED in the webserver (its GraphQL
  `workspaceOrError`, polled), with warm environments;
- idle RSS: the whole process tree's resident memory, SETTLE_SECONDS after that.
--smoke: one run of each, no warm-up run, a short settle.

Usage: .venv/bin/python bench/dagster_dev.py [--runs N] [--json] [--smoke]
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import contextlib  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from typing import Any  # noqa: E402

import psutil  # noqa: E402

from bench import common  # noqa: E402
from bench.common import Sample  # noqa: E402
from bench.dagster_start import DEFS  # noqa: E402  (the same two chained assets)
from supervisor.dagsterui.graphql import UiLocation, Webserver, WebserverError  # noqa: E402
from supervisor.supervision.dagster_ui import free_port  # noqa: E402
from supervisor.tools import uv_binary  # noqa: E402

PYTHON = "3.11"
LOCATIONS = ("first", "second", "third")
TIME_GOAL = 0.8  # supervised / dagster dev, at most
RSS_GOAL = 0.8
START_TIMEOUT = 300.0
SETTLE_SECONDS = 10.0
POLL_SECONDS = 0.1
MIB = 1024 * 1024
SMOKE = {"runs": 1, "settle": 2.0, "warmup": 0}


def dev_env(root: Path) -> tuple[str, str]:
    """The one environment `dagster dev` gets: its `dagster` script and dagster's version."""
    uv = uv_binary()
    subprocess.run(
        [uv, "venv", "--quiet", "--python", common.pyenv_python(PYTHON), str(root)],
        check=True,
        timeout=600,
    )
    python = root / "bin" / "python"
    subprocess.run(
        [uv, "pip", "install", "--quiet", "--python", str(python), "dagster-webserver"],
        check=True,
        timeout=900,
    )
    version = common.run_python(
        str(python), "import importlib.metadata as m; print(m.version('dagster'))"
    )
    return str(root / "bin" / "dagster"), version


def workspaces(root: Path, envs: Path, version: str) -> tuple[Path, Path]:
    """The same three locations: for `dagster dev`, and for `up` (with their Python and
    requirements, the webserver pinned to the same dagster)."""
    for name in LOCATIONS:
        (root / f"{name}.py").write_text(DEFS)
    dev = root / "dev"
    dev.mkdir()
    (dev / "workspace.yaml").write_text(
        "load_from:\n"
        + "".join(
            common.python_file(root / f"{name}.py", name, working_directory=root)
            for name in LOCATIONS
        )
    )
    ours = root / "ours"
    ours.mkdir()
    head = f'dagster: {{version: "{version}"}}\n'
    entries = [
        common.python_file(
            root / f"{name}.py",
            name,
            python=f'"{PYTHON}"',
            requirements=f'["dagster=={version}"]',
        )
        for name in LOCATIONS
    ]
    return dev / "workspace.yaml", common.write_workspace(ours, entries, envs, head)


def tree_rss(pid: int) -> int:
    """Resident memory of PID and every process below it."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0
    total = 0
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            total += proc.memory_info().rss
    return total


def all_loaded(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    client = Webserver(url)
    deadline = time.monotonic() + START_TIMEOUT
    seen: dict[str, UiLocation] = {}
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"exited {proc.returncode}:\n{common.tail(log)}")
        with contextlib.suppress(WebserverError):
            seen = client.locations(5)
            if all(n in seen and seen[n].loaded for n in LOCATIONS):
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"not all LOADED within {START_TIMEOUT:g}s ({seen}):\n")
        time.sleep(POLL_SECONDS)


def measure(argv: list[str], cwd: Path, env: dict[str, str], port: int, settle: float) -> Sample:
    log = cwd / f"run-{time.monotonic_ns()}.log"
    with open(log, "wb") as out:
        started = time.monotonic()
        proc = subprocess.Popen(
            argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            all_loaded(f"http://127.0.0.1:{port}", proc, log)
            seconds = time.monotonic() - started
            time.sleep(settle)  # a benchmark's settle, not a test's wait
            rss = tree_rss(proc.pid)
        finally:
            common.stop_process(proc, 60.0)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
    return Sample({"seconds": seconds, "rss": rss})


def run(runs: int, settle: float, warmup: int) -> dict[str, Any]:
    root = common.private_tempdir()
    try:
        dagster, version = dev_env(root / "dev-env")
        dev_ws, our_ws = workspaces(root, root / "envs", version)
        common.build_env(our_ws)
        env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
        kinds: dict[str, Callable[[int], Sample]] = {
            "dagster dev": lambda port: measure(
                [dagster, "dev", "-w", str(dev_ws), "-p", str(port)],
                dev_ws.parent,
                {**env, "DAGSTER_HOME": str(_fresh(root / "dev-home"))},
                port,
                settle,
            ),
            "supervisor up": lambda port: measure(
                [common.SUPERVISOR, "up", "-w", str(our_ws), "--dagster-port", str(port)],
                our_ws.parent,
                env,
                port,
                settle,
            ),
        }
        # One untimed run of each first: the webserver's environment, caches, bytecode.
        for _ in range(warmup):
            for kind in kinds.values():
                kind(free_port("127.0.0.1"))
        samples: dict[str, list[Sample]] = {name: [] for name in kinds}
        for _ in range(runs):
            for name, kind in kinds.items():
                samples[name].append(kind(free_port("127.0.0.1")))
        found = {name: common.medians(s) for name, s in samples.items()}
        ours, theirs = found["supervisor up"], found["dagster dev"]
        return {
            "dagster": version,
            "python": PYTHON,
            "runs": runs,
            "dagster_dev": theirs,
            "supervisor_up": ours,
            "time_ratio": ours["seconds"] / theirs["seconds"],
            "rss_ratio": ours["rss"] / theirs["rss"],
        }
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _fresh(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def report(result: dict[str, Any]) -> None:
    ours, theirs = result["supervisor_up"], result["dagster_dev"]
    print(
        f"three Dagster locations (dagster {result['dagster']}, Python {result['python']}),"
        f" median of {result['runs']}:"
    )
    print(
        f"command -> all LOADED in the webserver: supervisor up {ours['seconds']:.2f} s,"
        f" dagster dev {theirs['seconds']:.2f} s, ratio {result['time_ratio']:.3f}"
        f" (goal <= {TIME_GOAL}: {common.verdict(result['time_ratio'] <= TIME_GOAL)})"
    )
    print(
        f"idle RSS of the process tree: supervisor up {ours['rss'] / MIB:.0f} MiB,"
        f" dagster dev {theirs['rss'] / MIB:.0f} MiB, ratio {result['rss_ratio']:.3f}"
        f" (goal <= {RSS_GOAL}: {common.verdict(result['rss_ratio'] <= RSS_GOAL)})"
    )


def main(argv: list[str] | None = None) -> int:
    parser = common.parser_for(__doc__)
    parser.add_argument("--runs", type=int, default=3, help="timed runs of each")
    parser.add_argument(
        "--settle", type=float, default=SETTLE_SECONDS, help="seconds idle before the RSS"
    )
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs of each first")
    args = common.parse(parser, argv, SMOKE)
    result = run(args.runs, args.settle, args.warmup)
    met = result["time_ratio"] <= TIME_GOAL and result["rss_ratio"] <= RSS_GOAL
    return common.finish(result, args, report, met)


if __name__ == "__main__":
    sys.exit(main())
