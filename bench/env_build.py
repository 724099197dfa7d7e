"""Benchmark: our environment build against raw uv on the same interpreter and requirements.

Three measurements, the two builds interleaved (the first to go alternates per round) so both
see the same machine and network noise:

- cold: each build gets its own empty UV_CACHE_DIR, so everything is downloaded;
- warm: a fresh environment from one shared cache filled by an untimed build of each kind;
- hit: `ensure_env` on an environment that exists, and `plan()` of a 3-location workspace.

Raw uv runs the same two commands our build runs, with the same flags: `uv venv --quiet
--relocatable --no-project --python PY DIR`, then `uv pip install --quiet
--compile-bytecode --python DIR/bin/python REQS` with REQS = EnvRequest.install_requirements().

--smoke: one location needing only six, one build of each kind per measurement, and every
build on the shared uv cache (its "cold" builds download nothing).

Usage: .venv/bin/python bench/env_build.py [--runs N] [--warm-runs N] [--python 3.12] [--json]
    [--smoke]
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
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from typing import Any  # noqa: E402

import psutil  # noqa: E402

from bench import common  # noqa: E402
from bench.common import Sample, median  # noqa: E402
from supervisor import pythons  # noqa: E402
from supervisor.envs import EnvRequest, ensure_env, plan  # noqa: E402
from supervisor.envs.build import installed_packages, site_packages_of, uv_environment  # noqa: E402
from supervisor.runtime import runtime_hash  # noqa: E402
from supervisor.tools import uv_binary  # noqa: E402
from supervisor.workspace import load_workspace  # noqa: E402

# The three locations of the bench workspace; the first one is the one cold and warm build.
LOCATION_REQUIREMENTS = {
    "a": ("attrs==23.2.0", "six==1.16.0"),
    "b": ("six==1.16.0",),
    "c": (),
}
SMOKE_REQUIREMENTS = {"a": ("six==1.16.0",)}
COLD_GOAL = 1.1  # ours / raw uv, at most
WARM_GOAL = 1.1
HIT_GOAL = 0.050  # seconds per location, at most
VENV_TIMEOUT = 60.0
INSTALL_TIMEOUT = 300.0
BUILD_TIMEOUT = VENV_TIMEOUT + INSTALL_TIMEOUT  # our build has none of its own
HIT_CALLS = 200
PLAN_CALLS = 50
FRESH_PLANS = 5
SMOKE = {"runs": 1, "warm_runs": 1}


@contextlib.contextmanager
def uv_cache(path: Path) -> Iterator[None]:
    """Point UV_CACHE_DIR at PATH in os.environ (our build passes it on to uv), then restore."""
    previous = os.environ.get("UV_CACHE_DIR")
    os.environ["UV_CACHE_DIR"] = str(path)
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("UV_CACHE_DIR", None)
        else:
            os.environ["UV_CACHE_DIR"] = previous


@contextlib.contextmanager
def watchdog(seconds: float, what: str) -> Iterator[None]:
    """Kill, by pid, the child processes this script started if WHAT outlasts SECONDS."""
    fired = threading.Event()

    def expire() -> None:
        fired.set()
        for child in psutil.Process().children(recursive=True):
            with contextlib.suppress(psutil.Error):
                child.kill()

    timer = threading.Timer(seconds, expire)
    timer.daemon = True
    timer.start()
    message = f"{what} took over {seconds:g}s; its subprocesses were killed"
    try:
        yield
    except Exception as exc:
        if fired.is_set():
            raise RuntimeError(message) from exc
        raise
    finally:
        timer.cancel()
    if fired.is_set():
        raise RuntimeError(message)


def shared_uv_cache() -> Path:
    """The uv cache every build on this machine shares (UV_CACHE_DIR, or uv's default)."""
    done = subprocess.run(
        [uv_binary(), "cache", "dir"],
        capture_output=True,
        text=True,
        env=uv_environment(),
        timeout=common.QUICK_TIMEOUT,
        check=True,
    )
    return Path(done.stdout.strip())


def run_ours(request: EnvRequest, envs_dir: Path, cache: Path) -> Sample:
    """Build REQUEST with ensure_env into the fresh ENVS_DIR, with CACHE as uv's cache."""
    with uv_cache(cache), watchdog(BUILD_TIMEOUT, "our build"):
        started = time.perf_counter()
        built = ensure_env(envs_dir, request)
        wall = time.perf_counter() - started
    if built.hit:
        raise RuntimeError(f"{envs_dir} was not fresh: ensure_env found {built.path}")
    timings = built.manifest()["timings"]
    return Sample(
        {
            "wall": wall,
            "venv": timings["venv"],
            "install": timings["install"],
            "runtime": timings["runtime"],
            # Manifest (site-packages scan, uv --version, JSON) and the rename.
            "manifest": max(built.seconds - timings["total"], 0.0),
            # lookup, mkdir, the key lock.
            "outside": max(wall - built.seconds, 0.0),
        },
    )


def uv_run(args: list[str], cache: Path, timeout: float) -> float:
    """Run uv with ARGS and CACHE as its cache, as our build does; return the seconds it took."""
    env = uv_environment()
    env["UV_CACHE_DIR"] = str(cache)
    started = time.perf_counter()
    result = subprocess.run(
        [uv_binary(), *args],
        capture_output=True,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
        timeout=timeout,
        check=False,
    )
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"uv {' '.join(args[:2])} failed:\n{result.stderr[-2000:]}")
    return seconds


def run_raw(request: EnvRequest, target: Path, cache: Path) -> Sample:
    """Build the same environment with the two raw uv commands into TARGET."""
    venv = uv_run(
        [
            "venv",
            "--quiet",
            "--relocatable",
            "--no-project",
            "--python",
            request.python.path,
            str(target),
        ],
        cache,
        VENV_TIMEOUT,
    )
    python = str(target / "bin" / "python")
    install_args = ["pip", "install", "--quiet", "--compile-bytecode", "--python", python]
    install = uv_run([*install_args, *request.install_requirements()], cache, INSTALL_TIMEOUT)
    return Sample({"wall": venv + install, "venv": venv, "install": install})


@dataclass
class Pair:
    """Interleaved samples of both builds."""

    ours: list[Sample] = field(default_factory=list)
    raw: list[Sample] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        # A sample's figures: "wall" seconds, and where they went (seconds per step).
        ours, raw = common.medians(self.ours), common.medians(self.raw)
        ours_wall, raw_wall = ours.pop("wall"), raw.pop("wall")
        return {
            "runs": len(self.ours),
            "ours_seconds": ours_wall,
            "raw_seconds": raw_wall,
            "ratio": ours_wall / raw_wall,
            "steps": {"ours": ours, "raw": raw},
            "samples": {
                "ours": [s.figures for s in self.ours],
                "raw": [s.figures for s in self.raw],
            },
        }


def interleave(
    runs: int,
    ours: Callable[[int], Sample],
    raw: Callable[[int], Sample],
) -> Pair:
    """Run both builds RUNS times, alternating which one goes first in each round."""
    pair = Pair()
    for i in range(runs):
        order = ((ours, pair.ours), (raw, pair.raw))
        for run, samples in order if i % 2 == 0 else order[::-1]:
            samples.append(run(i))
    return pair


def make_workspace(folder: Path, python: str, locations: dict[str, tuple[str, ...]]) -> Path:
    """A workspace.yaml of python_file locations on PYTHON, with LOCATIONS' requirements."""
    entries = (
        common.python_file(
            common.EMPTY_LOCATION,
            name,
            python=f'"{python}"',
            requirements=json.dumps(list(requirements)),
        )
        for name, requirements in locations.items()
    )
    return common.write_workspace(folder, entries, envs=folder / "envs")


def time_calls(call: Callable[[], object], count: int) -> list[float]:
    """Seconds of each of COUNT calls."""
    seconds = []
    for _ in range(count):
        started = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - started)
    return seconds


def plan_fresh_process(workspace_path: Path) -> float:
    """Seconds of the first plan() in a new process (imports excluded), as `up` pays it."""
    code = (
        "import sys, time; sys.path.insert(0, sys.argv[1])\n"
        "from supervisor.envs import plan\n"
        "from supervisor.workspace import load_workspace\n"
        "w = load_workspace(sys.argv[2]); t = time.perf_counter(); plan(w)\n"
        "print(time.perf_counter() - t)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(REPO), str(workspace_path)],
        capture_output=True,
        text=True,
        timeout=common.QUICK_TIMEOUT,
        check=True,
        stdin=subprocess.DEVNULL,
    )
    return float(out.stdout.strip().splitlines()[-1])


def bench_hit(workspace_path: Path, envs_dir: Path, cache: Path, fresh: int) -> dict[str, Any]:
    """ensure_env on built environments, and plan() of the workspace (FRESH times in a new
    process)."""
    workspace = load_workspace(workspace_path)
    requests = plan(workspace)
    with uv_cache(cache), watchdog(BUILD_TIMEOUT * len(requests), "building the hit set"):
        for request in requests.values():
            ensure_env(envs_dir, request)
    first = requests["a"]
    hit = time_calls(lambda: ensure_env(envs_dir, first), HIT_CALLS)
    plan_memory = time_calls(lambda: plan(workspace), PLAN_CALLS)

    def plan_disk() -> None:
        pythons.clear_cache()  # what a new process starts with: only the file cache
        plan(workspace)

    plan_disk_cache = time_calls(plan_disk, PLAN_CALLS)
    fresh_plans = [plan_fresh_process(workspace_path) for _ in range(fresh)]
    count = len(requests)
    per_location = median(hit) + median(plan_disk_cache) / count
    return {
        "ensure_env_hit_seconds": median(hit),
        "ensure_env_hit_p95_seconds": common.percentile(hit, 0.95),
        "locations": count,
        "plan_memory_cache_seconds": median(plan_memory),
        "plan_file_cache_seconds": median(plan_disk_cache),
        "plan_fresh_process_seconds": median(fresh_plans),
        "per_location_seconds": per_location,
    }


def bench_parts(env: Path, version: str) -> dict[str, float]:
    """Costs inside our build that raw uv does not pay, each timed alone."""

    def uv_version() -> None:
        subprocess.run(
            [uv_binary(), "--version"],
            capture_output=True,
            timeout=common.QUICK_TIMEOUT,
            check=True,
        )

    site = site_packages_of(env, version)
    return {
        "uv_version_seconds": median(time_calls(uv_version, 5)),
        "site_packages_scan_seconds": median(time_calls(lambda: installed_packages(site), 20)),
        "runtime_hash_uncached_seconds": median(time_calls(runtime_hash.__wrapped__, 20)),
    }


def run_bench(args: argparse.Namespace, scratch: Path) -> dict[str, Any]:
    """All three measurements in SCRATCH; returns the results."""
    locations = SMOKE_REQUIREMENTS if args.smoke else LOCATION_REQUIREMENTS
    workspace_path = make_workspace(scratch, args.python, locations)
    request = plan(load_workspace(workspace_path))["a"]
    shared = shared_uv_cache() if args.smoke else None
    fresh = iter(range(1_000_000))

    def folder(kind: str) -> Path:
        return scratch / f"{kind}-{next(fresh)}"

    def cleaning(run: Callable[[int], Sample], made: list[Path]) -> Callable[[int], Sample]:
        def wrapped(i: int) -> Sample:
            try:
                return run(i)
            finally:
                while made:
                    shutil.rmtree(made.pop(), ignore_errors=True)

        return wrapped

    made: list[Path] = []

    def cold_cache() -> Path:
        if shared is not None:
            return shared  # never in MADE: it is not ours to remove
        made.append(cache := folder("cold-cache"))
        return cache

    def cold_ours(_: int) -> Sample:
        made.append(envs := folder("cold-envs"))
        return run_ours(request, envs, cold_cache())

    def cold_raw(_: int) -> Sample:
        made.append(target := folder("cold-target"))
        return run_raw(request, target, cold_cache())

    cold = interleave(args.runs, cleaning(cold_ours, made), cleaning(cold_raw, made))

    warm_cache = shared or scratch / "warm-cache"

    def warm_ours(_: int) -> Sample:
        made.append(envs := folder("warm-envs"))
        return run_ours(request, envs, warm_cache)

    def warm_raw(_: int) -> Sample:
        made.append(target := folder("warm-target"))
        return run_raw(request, target, warm_cache)

    cleaning(warm_ours, made)(-1)  # untimed: fills the shared cache
    cleaning(warm_raw, made)(-1)
    warm = interleave(args.warm_runs, cleaning(warm_ours, made), cleaning(warm_raw, made))

    hit_envs = scratch / "hit-envs"
    hit = bench_hit(workspace_path, hit_envs, warm_cache, 1 if args.smoke else FRESH_PLANS)
    parts = bench_parts(hit_envs / request.name, request.python.version)
    uv = subprocess.run(
        [uv_binary(), "--version"], capture_output=True, text=True, timeout=common.QUICK_TIMEOUT
    ).stdout.strip()
    result: dict[str, Any] = {
        "python": request.python.version,
        "interpreter": request.python.path,
        "uv": uv,
        "requirements": request.install_requirements(),
        "shared_cache": str(shared) if shared is not None else None,
        "cold": cold.summary(),
        "warm": warm.summary(),
        "hit": hit,
        "parts": parts,
    }
    result["goals"] = {
        "cold_ratio_max": COLD_GOAL,
        "warm_ratio_max": WARM_GOAL,
        "hit_seconds_per_location_max": HIT_GOAL,
    }
    result["met"] = {
        "cold": result["cold"]["ratio"] <= COLD_GOAL,
        "warm": result["warm"]["ratio"] <= WARM_GOAL,
        "hit": hit["per_location_seconds"] <= HIT_GOAL,
    }
    result["goals_met"] = all(result["met"].values())
    return result


def ms(seconds: float) -> str:
    """SECONDS as milliseconds, for the table."""
    return f"{seconds * 1000:.3f} ms" if seconds < 0.01 else f"{seconds * 1000:.1f} ms"


def report(r: dict[str, Any]) -> None:
    """Print the figures and the goals line."""
    print(f"Python {r['python']} ({r['interpreter']}), {r['uv']}")
    print(f"  requirements: {' '.join(r['requirements'])}")
    if r["shared_cache"]:
        print(f"  every build on the shared uv cache {r['shared_cache']} (nothing cold)")
    for phase in ("cold", "warm"):
        p = r[phase]
        ours, raw = p["steps"]["ours"], p["steps"]["raw"]
        print(
            f"  {phase:<4} (median of {p['runs']}): ours {p['ours_seconds']:.3f} s,"
            f" raw uv {p['raw_seconds']:.3f} s, ratio {p['ratio']:.2f}"
        )
        print(
            f"       ours: venv {ms(ours['venv'])}, install {ms(ours['install'])},"
            f" runtime {ms(ours['runtime'])}, manifest {ms(ours['manifest'])},"
            f" outside {ms(ours['outside'])}"
        )
        print(f"       raw:  venv {ms(raw['venv'])}, install {ms(raw['install'])}")
    h = r["hit"]
    print(
        f"  hit: ensure_env {ms(h['ensure_env_hit_seconds'])} median"
        f" (p95 {ms(h['ensure_env_hit_p95_seconds'])}, {HIT_CALLS} calls)"
    )
    print(
        f"       plan() of {h['locations']} locations: {ms(h['plan_memory_cache_seconds'])}"
        f" (in-memory cache), {ms(h['plan_file_cache_seconds'])} (file cache only),"
        f" {ms(h['plan_fresh_process_seconds'])} (first call in a new process)"
    )
    print(
        f"       per location (hit + file-cache plan / {h['locations']}):"
        f" {ms(h['per_location_seconds'])}"
    )
    parts = r["parts"]
    print(
        f"  parts: uv --version {ms(parts['uv_version_seconds'])},"
        f" site-packages scan {ms(parts['site_packages_scan_seconds'])},"
        f" runtime_hash uncached {ms(parts['runtime_hash_uncached_seconds'])}"
    )
    met = r["met"]
    print(
        f"Goals: cold <= {COLD_GOAL}x raw: {common.verdict(met['cold'])}"
        f" ({r['cold']['ratio']:.2f});"
        f" warm <= {WARM_GOAL}x raw: {common.verdict(met['warm'])} ({r['warm']['ratio']:.2f});"
        f" hit < {HIT_GOAL * 1000:g} ms per location: {common.verdict(met['hit'])}"
        f" ({ms(h['per_location_seconds'])})"
    )


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; exit 0 when every goal is met, 1 otherwise."""
    parser = common.parser_for(__doc__)
    parser.add_argument("--runs", type=int, default=5, help="cold runs per build (5)")
    parser.add_argument("--warm-runs", type=int, default=15, help="warm runs per build (15)")
    parser.add_argument("--python", default="3.12", help="interpreter version (3.12)")
    args = common.parse(parser, argv, SMOKE)
    if args.runs < 1 or args.warm_runs < 1:
        parser.error("--runs and --warm-runs must be at least 1")
    scratch = Path(tempfile.mkdtemp(prefix="sv-bench-envbuild-"))
    try:
        result = run_bench(args, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return common.finish(result, args, report, result["goals_met"])


if __name__ == "__main__":
    sys.exit(main())
