"""Benchmark: how light the command line is, against `python -c "import click"`.

Runs a real `supervisor up` on a one-location workspace (examples/empty_location.py on the host
interpreter) and times, interleaved, --runs spawns each of: the reference `python -c "import
click"`, `supervisor --help`, `supervisor status` (read from the state file `up` keeps) and
`supervisor ls` (a call through the control socket, so it needs grpc). Each is a fresh
process, started the same way, timed to its exit.
Goal: `supervisor status` <= 2x the reference. --smoke: 3 runs each.

Usage: .venv/bin/python bench/cli.py [--runs N] [--json] [--smoke]
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import shutil  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

from bench import common  # noqa: E402

GOAL_RATIO = 2.0
SMOKE = {"runs": 3}
NAME = "bench"


def spawn_seconds(argv: list[str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    took = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {done.returncode}: {done.stderr}")
    return took


def run(runs: int) -> dict[str, Any]:
    root = common.private_tempdir()
    workspace = common.write_workspace(
        root, [common.python_file(common.EMPTY_LOCATION, NAME)], envs=root / "envs"
    )
    common.build_env(workspace)
    up = common.Up(workspace, "--no-ui", cwd=root)
    try:
        client = common.connect(up, 60)
        common.wait_location(up, client, NAME, common.is_serving, 60, "SERVING")
        client.__exit__()
        commands = {
            "reference": [sys.executable, "-c", "import click"],
            "help": [common.SUPERVISOR, "--help"],
            "status": [common.SUPERVISOR, "status", "-w", str(workspace)],
            "ls": [common.SUPERVISOR, "ls", "-w", str(workspace)],
        }
        for argv in commands.values():
            spawn_seconds(argv)  # warm the file cache
        samples: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(runs):
            for name, argv in commands.items():
                samples[name].append(spawn_seconds(argv))
        result: dict[str, Any] = {"runs": runs}
        for name, values in samples.items():
            result[name] = common.median(values)
        return result
    finally:
        common.stop_up(up)
        shutil.rmtree(root, ignore_errors=True)


def report(result: dict[str, Any]) -> None:
    reference = result["reference"]
    ms = 1000
    print(
        f"python -c 'import click' (reference): {reference * ms:.1f} ms"
        f" (median of {result['runs']})"
    )
    for name, label in (
        ("help", "supervisor --help"),
        ("status", "supervisor status"),
        ("ls", "supervisor ls (through the control socket)"),
    ):
        print(f"{label}: {result[name] * ms:.1f} ms, ratio {result[name] / reference:.2f}")
    print(f"Goal (status <= {GOAL_RATIO:g}x the reference): {common.verdict(met(result))}")


def met(result: dict[str, Any]) -> bool:
    return bool(result["status"] <= GOAL_RATIO * result["reference"])


def main(argv: list[str] | None = None) -> int:
    parser = common.parser_for(__doc__)
    parser.add_argument("--runs", type=int, default=20)
    args = common.parse(parser, argv, SMOKE)
    result = run(args.runs)
    return common.finish(result, args, report, met(result))


if __name__ == "__main__":
    sys.exit(main())
