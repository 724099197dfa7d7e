"""Every benchmark runs end to end in its --smoke mode and prints its figures.

A smoke run is each script's smallest setting (one run, the fewest locations, the shortest
windows) through the real path: real `supervisor up`, real code servers, real builds. Its
figures are not judged (one short run on a busy machine says nothing about a goal), so the
script exits 0 unless something failed; what is checked is that it got to every figure.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from bench import common

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "bench"
# Not benchmarks: the shared helpers, and the modules the benchmarks run as fixtures.
NOT_SCRIPTS = {"common.py", "minimal_server.py", "three_assets.py"}
SCRIPT_TIMEOUT = 120.0  # one smoke run takes 5 to 15 s on two idle cores
# Scripts that build heavy environments and start Dagster's webserver (twice) take longer.
SLOW_SCRIPTS = {"dagster_dev.py": 360.0}
STOP_GRACE = 30.0  # after SIGINT, for the script's own clean-up (it stops what it started)
NUMBER = r"[\d.,]+"

# The lines each script's report must hold, as regular expressions (one line each).
FIGURES = {
    "cli.py": [
        rf"python -c 'import click' \(reference\): {NUMBER} ms",
        rf"supervisor --help: {NUMBER} ms, ratio {NUMBER}",
        rf"supervisor status: {NUMBER} ms, ratio {NUMBER}",
        rf"supervisor ls \(through the control socket\): {NUMBER} ms, ratio {NUMBER}",
        r"^Goal \(status <= 2x the reference\): (met|NOT met)",
    ],
    "codeserver_start.py": [
        rf"start to SERVING: ours {NUMBER} s, reference {NUMBER} s, ratio {NUMBER}",
        rf"idle RSS: ours {NUMBER} MiB, reference {NUMBER} MiB, ratio {NUMBER}",
        r"^Goals \(start <= .*\): (met|NOT met)",
    ],
    "dagster_dev.py": [
        rf"command -> all LOADED in the webserver: supervisor up {NUMBER} s,"
        rf" dagster dev {NUMBER} s, ratio {NUMBER}",
        rf"idle RSS of the process tree: supervisor up {NUMBER} MiB, dagster dev {NUMBER} MiB,"
        rf" ratio {NUMBER}",
    ],
    "dagster_start.py": [
        rf"start to loaded: supervised {NUMBER} s, bare {NUMBER} s, ratio {NUMBER}",
        rf"idle RSS: supervised {NUMBER} MiB, bare {NUMBER} MiB, ratio {NUMBER}",
        r"^Goals \(start <= .*\): (met|NOT met)",
    ],
    "continuity.py": [
        rf"without restarts: \d+ calls, p50 {NUMBER} ms, p99 {NUMBER} ms",
        rf"during 1 restarts: \d+ calls, p50 {NUMBER} ms",
        r"failed calls: \d+ \(goal 0\)",
        r"interval 0\.5 s \(0\.5 s\): median \d+ ms, max \d+ ms",
        r"default interval \(2 s\): median \d+ ms, max \d+ ms",
        r"^Goals: (met|NOT met)",
    ],
    "env_build.py": [
        rf"cold \(median of 1\): ours {NUMBER} s, raw uv {NUMBER} s, ratio {NUMBER}",
        rf"warm \(median of 1\): ours {NUMBER} s, raw uv {NUMBER} s, ratio {NUMBER}",
        rf"hit: ensure_env {NUMBER} ms median",
        rf"per location \(hit \+ file-cache plan / 1\): {NUMBER} ms",
        r"^Goals: cold <= .* hit < .*: (met|NOT met)",
    ],
    "faults.py": [
        r"segfault\s+\S+\s+\d+ ms  code server killed by SIGSEGV",
        r"memory\s+\S+\s+\d+ ms  memory limit exceeded",
        r"import_hang\s+\S+\s+\d+ ms  not ready within the startup timeout",
        r"healthy sibling: \d+ calls, \d+ failed \(goal 0\)",
        r"^Goal \(every fault handled, the sibling never failed\): (met|NOT met)",
    ],
    "materialize.py": [
        rf"\(a\) CLI `materialize c --upstream`:\s+{NUMBER} ms",
        rf"\(b\) control API, call -> final event:\s+{NUMBER} ms",
        rf"ratios: CLI / API {NUMBER}x; API / in-process {NUMBER}x",
        r"^Goal \(control API < \d+ ms\): (met|NOT met)",
    ],
    "restart.py": [
        r"SIGKILL -> new server answers SERVING: ours \d+ ms",
        r"reference start \(minimal gRPC server, spawn -> SERVING\): \d+ ms",
        r"difference: [+-]\d+ ms",
        r"^Goal \(ours <= reference \+ \d+ ms = \d+ ms\): (met|NOT met)",
    ],
    "scale.py": [
        r"locations  floor s  ours s  ratio  RSS MB \(goal\)",
        rf"^\s+1\s+{NUMBER}\s+{NUMBER}\s+{NUMBER}\s+{NUMBER} \(\d+\)",
        rf"^\s+3\s+{NUMBER}\s+{NUMBER}\s+{NUMBER}\s+{NUMBER} \(\d+\)",
        r"^Goals: time <= 1\.2x floor .*: (met|NOT met)$",
    ],
    "schedules.py": [
        rf"\d+ schedules due at the same minute: cron time -> last run recorded {NUMBER} s,"
        rf" -> last RUN_START {NUMBER} s",
        rf"supervisor CPU idle with \d+ RUNNING schedules over {NUMBER} s: {NUMBER}% of a core",
        r"^Goals: (met|NOT met)",
    ],
    "standby.py": [
        rf"SIGKILL -> ListDefinitions answers again \(median of 1\): standby {NUMBER} ms,"
        rf" cold start {NUMBER} ms, ratio {NUMBER}",
        rf"memory: the standby {NUMBER} MiB RSS beside the active server's {NUMBER} MiB",
        r"^Goal \(standby median <= 50 ms\): (met|NOT met)",
    ],
    "ui.py": [
        rf"HTTP time to first byte: page {NUMBER} ms, static file {NUMBER} ms, ratio {NUMBER}",
        rf"HTTP whole page: page {NUMBER} ms, static file {NUMBER} ms, ratio {NUMBER}",
        rf"Chromium, navigation -> load event: page {NUMBER} ms, static file {NUMBER} ms,"
        rf" ratio {NUMBER}",
        rf"state change -> the page shows it: median {NUMBER} ms, max {NUMBER} ms",
        r"^Goals \(page < 100 ms, change < 100 ms\): (met|NOT met)",
    ],
    "up.py": [
        rf"up, 3 locations, spawn -> all SERVING: {NUMBER} s \(median of 1",
        rf"supervisor RSS with 3 serving: {NUMBER} MB",
        rf"supervisor CPU idle over 1 s: {NUMBER}% of a core",
        r"stop with 3 locations, SIGTERM -> exit 0",
        r"^Goals: (met|NOT met)",
    ],
}


def scripts() -> list[str]:
    return sorted(p.name for p in BENCH.glob("*.py") if p.name not in NOT_SCRIPTS)


def test_every_benchmark_is_smoked() -> None:
    assert all((BENCH / name).is_file() for name in NOT_SCRIPTS), "NOT_SCRIPTS names a lost file"
    assert scripts() == sorted(FIGURES), "a benchmark without its figures here, or the reverse"


def run_smoke(script: str) -> tuple[int, str]:
    """Run SCRIPT --smoke; its exit code and output. At the deadline it gets SIGINT (its
    `finally` blocks stop the `up` and the servers it started), then SIGKILL for its group."""
    proc = subprocess.Popen(
        [sys.executable, str(BENCH / script), "--smoke"],
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = proc.communicate(timeout=SLOW_SCRIPTS.get(script, SCRIPT_TIMEOUT))
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)
        try:
            output, _ = proc.communicate(timeout=STOP_GRACE)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            output, _ = proc.communicate()
        limit = SLOW_SCRIPTS.get(script, SCRIPT_TIMEOUT)
        pytest.fail(f"{script} --smoke did not finish within {limit:g}s:\n{output}")
    return proc.returncode, output


@pytest.mark.timeout(max(SLOW_SCRIPTS.values()) + STOP_GRACE + 30)
@pytest.mark.parametrize("script", scripts())
def test_smoke_run_prints_its_figures(script: str) -> None:
    code, output = run_smoke(script)
    assert code == 0, f"{script} --smoke exited {code}:\n{output}"
    missing = [p for p in FIGURES[script] if not re.search(p, output, re.MULTILINE)]
    assert not missing, f"{script} --smoke did not print {missing}:\n{output}"


def test_smoke_settings_stand_in_for_the_defaults() -> None:
    parser = common.parser_for("A benchmark.\n\nMore.")
    parser.add_argument("--runs", type=int, default=15)
    assert common.parse(parser, [], {"runs": 1}).runs == 15
    assert common.parse(parser, ["--smoke"], {"runs": 1}).runs == 1
    assert common.parse(parser, ["--smoke", "--runs", "3"], {"runs": 1}).runs == 3
    with pytest.raises(ValueError, match="runz"):
        common.parse(parser, [], {"runz": 1})


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 201)]
    assert common.percentile(values, 0.95) == 190.0
    assert common.percentile(values, 0.5) == 100.0
    assert common.percentile([7.0], 0.99) == 7.0
