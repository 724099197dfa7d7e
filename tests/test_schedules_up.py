"""A schedule that fires in a real `supervisor up`: its run appears in `runs` with its trigger,
`schedules` shows it, and its stop outlives a restart of `up`."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import FIXTURES, wait_for
from tests.uphelp import Up, cli

# The environment may be built first (a minute or two), then up to a minute until the tick.
pytestmark = pytest.mark.timeout(420)


def cli_json(*args: str) -> Any:
    out = cli(*args)
    assert out.returncode == 0, out.stdout + out.stderr
    return json.loads(out.stdout)


def test_a_schedule_due_within_a_minute_starts_its_run(
    tmp_path: Path, shared_envs_dir: Path
) -> None:
    workspace = tmp_path / "workspace.yaml"
    workspace.write_text(
        textwrap.dedent(f"""
        envs_dir: {shared_envs_dir}
        load_from:
          - python_file:
              relative_path: {FIXTURES / "scheduled_location.py"}
              location_name: timed
              python: "3.8"
    """)
    )
    w = str(workspace)
    up = Up(workspace)
    try:
        up.wait_state("timed", "SERVING", timeout=240)

        def listed() -> list[dict[str, Any]] | None:
            rows = cli_json("schedules", "--json", "-w", w)
            return rows if len(rows) == 2 else None

        rows = wait_for(listed, 30, "both schedules listed", up.log)
        by_name = {r["name"]: r for r in rows}
        minute = by_name["every_minute"]
        assert (minute["location"], minute["cron"], minute["timezone"]) == (
            "timed",
            "* * * * *",
            "Europe/Berlin",
        )
        assert minute["status"] == "RUNNING" and minute["next_tick"].endswith(":00Z")
        assert by_name["nightly"]["status"] == "STOPPED"  # Dagster's default
        assert by_name["nightly"]["next_tick"] is None
        table = cli("schedules", "-w", w).stdout.splitlines()
        assert table[0].split()[:4] == ["SCHEDULE", "CRON", "TIMEZONE", "STATUS"]
        assert table[1].startswith("timed.every_minute  * * * * *  Europe/Berlin  RUNNING")

        def scheduled_run() -> dict[str, Any] | None:
            runs = cli_json("runs", "--json", "-w", w)
            done = [
                r
                for r in runs
                if r["trigger"] == "schedule:every_minute" and r["status"] == "SUCCESS"
            ]
            return done[0] if done else None

        run = wait_for(scheduled_run, 90, "a run started by the schedule", up.log)
        assert run["location"] == "timed" and run["selection"] == ["heartbeat"]
        ticks = cli_json("schedules", "ticks", "timed.every_minute", "--json", "-w", w)
        assert any(t["run_id"] == run["id"] and t["status"] == "SUCCESS" for t in ticks)

        out = cli("schedules", "stop", "timed.every_minute", "-w", w)
        assert out.returncode == 0 and "STOPPED" in out.stdout, out.stdout + out.stderr
        wrong = cli("schedules", "start", "timed.nope", "-w", w)
        assert wrong.returncode == 2
        assert "unknown schedule 'timed.nope'; known: timed.every_minute, timed.nightly" in (
            wrong.stderr
        )
        assert "Traceback" not in wrong.stderr
        assert up.stop() == 0

        again = Up(workspace)
        up = again
        again.wait_state("timed", "SERVING", timeout=120)

        def status_of_minute() -> str | None:
            rows = cli_json("schedules", "--json", "-w", w)
            found = [r["status"] for r in rows if r["name"] == "every_minute"]
            return found[0] if found else None

        assert wait_for(status_of_minute, 30, "the schedule listed again", again.log) == "STOPPED"
    finally:
        up.stop()
