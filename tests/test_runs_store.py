"""The runs database (real SQLite files) and `supervisor runs`, through click's CliRunner."""

from __future__ import annotations

import json
import re
import sqlite3
import threading
import time
from contextlib import closing
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from supervisor.commands.runs import runs
from supervisor.errors import SupervisorError
from supervisor.runs.store import SCHEMA_VERSION, RunStore, runs_db_path

T0 = 1714564800.0  # 2024-05-01T12:00:00Z
RUN_KEYS = ["id", "location", "selection", "status", "started_at", "ended_at", "reason", "trigger"]
EVENT_KEYS = ["time", "type", "step", "message", "metadata", "error", "traceback"]


@pytest.fixture
def store(tmp_path: Path) -> RunStore:
    with closing(RunStore(runs_db_path(tmp_path / "state"))) as opened:
        yield opened


def test_create_events_finish(store: RunStore) -> None:
    run_id = store.create_run("etl", ["raw", "clean"], now=T0)
    assert re.fullmatch(r"[0-9a-f]{32}", run_id)
    store.add_event(run_id, "RUN_START", time=T0)
    store.add_event(run_id, "STEP_START", step="raw", time=T0 + 0.25)
    store.add_event(
        run_id, "ASSET_MATERIALIZATION", step="raw", message="stored", metadata={"rows": "3"}
    )
    store.finish_run(run_id, "SUCCESS", now=T0 + 2.5)
    run = store.get_run(run_id)
    assert list(run) == [*RUN_KEYS, "events"]
    assert run["selection"] == ["raw", "clean"]
    assert run["status"] == "SUCCESS"
    assert run["reason"] is None
    assert run["started_at"] == "2024-05-01T12:00:00.000Z"
    assert run["ended_at"] == "2024-05-01T12:00:02.500Z"
    assert [list(e) for e in run["events"]] == [EVENT_KEYS] * 3
    assert run["events"][1]["time"] == "2024-05-01T12:00:00.250Z"
    assert run["events"][2]["metadata"] == {"rows": "3"}
    assert run["events"][0]["metadata"] == {}


def test_events_keep_insertion_order_not_time_order(store: RunStore) -> None:
    run_id = store.create_run("etl", ["a"], now=T0)
    for i, kind in enumerate(["RUN_START", "STEP_START", "LOG", "STEP_SUCCESS", "RUN_SUCCESS"]):
        store.add_event(run_id, kind, message=str(i), time=T0 + 10 - i)  # times run backwards
    events = store.get_run(run_id)["events"]
    assert [e["message"] for e in events] == ["0", "1", "2", "3", "4"]
    assert events[0]["time"] == "2024-05-01T12:00:10.000Z"


def test_iso_times_are_utc_with_milliseconds(store: RunStore) -> None:
    run_id = store.create_run("etl", [], now=0.0)
    store.add_event(run_id, "LOG", time=1.2345)
    run = store.get_run(run_id)
    assert run["started_at"] == "1970-01-01T00:00:00.000Z"
    assert run["ended_at"] is None
    assert run["events"][0]["time"] == "1970-01-01T00:00:01.234Z"


def test_list_filters_and_newest_first(store: RunStore) -> None:
    a = store.create_run("etl", ["a"], now=T0 + 1)
    b = store.create_run("ml", ["m"], now=T0 + 3)
    c = store.create_run("etl", ["b"], now=T0 + 2)
    d = store.create_run("etl", ["c"], now=T0 + 2)  # same instant as c, inserted later
    store.finish_run(a, "SUCCESS", now=T0 + 5)
    store.finish_run(b, "FAILURE", reason="boom", now=T0 + 6)
    assert [r["id"] for r in store.list_runs()] == [b, d, c, a]
    assert [r["id"] for r in store.list_runs(location="etl")] == [d, c, a]
    assert [r["id"] for r in store.list_runs(status="STARTED")] == [d, c]
    assert [r["id"] for r in store.list_runs(location="etl", status="SUCCESS")] == [a]
    assert [r["id"] for r in store.list_runs(limit=2)] == [b, d]
    assert store.list_runs(location="nowhere") == []
    listed = store.list_runs(status="FAILURE")[0]
    assert list(listed) == RUN_KEYS
    assert listed["reason"] == "boom"


def test_prefix_lookup_ambiguous_and_unknown(store: RunStore) -> None:
    for run_id in ("abcd1234", "abcd5678", "ffff0000", "ab"):
        store.create_run("etl", [], run_id=run_id, now=T0)
    assert store.get_run("ffff")["id"] == "ffff0000"
    assert store.get_run("abcd12")["id"] == "abcd1234"
    assert store.get_run("ab")["id"] == "ab"  # a whole id may be short
    with pytest.raises(SupervisorError, match="ambiguous") as ambiguous:
        store.get_run("abcd")
    assert "abcd1234" in str(ambiguous.value) and "abcd5678" in str(ambiguous.value)
    with pytest.raises(SupervisorError, match="no run 'zzzz'"):
        store.get_run("zzzz")
    with pytest.raises(SupervisorError, match="at least 4 characters"):
        store.get_run("abc")
    with pytest.raises(SupervisorError, match="no run"):
        store.get_run("ab%_")  # LIKE wildcards are not wildcards here


def test_reconcile_fails_started_runs_only(store: RunStore) -> None:
    running = store.create_run("etl", ["a"], now=T0)
    other = store.create_run("ml", ["m"], now=T0 + 1)
    done = store.create_run("etl", ["b"], now=T0 + 2)
    store.add_event(done, "RUN_SUCCESS", time=T0 + 3)
    store.finish_run(done, "SUCCESS", now=T0 + 3)
    failed = store.reconcile("the supervisor stopped while the run was going", now=T0 + 10)
    assert failed == [running, other]
    for run_id in failed:
        run = store.get_run(run_id)
        assert run["status"] == "FAILURE"
        assert run["reason"] == "the supervisor stopped while the run was going"
        assert run["ended_at"] == "2024-05-01T12:00:10.000Z"
        assert run["events"][-1]["type"] == "RUN_FAILURE"
        assert run["events"][-1]["message"] == run["reason"]
    untouched = store.get_run(done)
    assert untouched["status"] == "SUCCESS"
    assert [e["type"] for e in untouched["events"]] == ["RUN_SUCCESS"]
    assert store.reconcile("again") == []


def test_fail_location_runs(store: RunStore) -> None:
    etl = store.create_run("etl", ["a"], now=T0)
    ml = store.create_run("ml", ["m"], now=T0)
    assert store.fail_location_runs("etl", "code server exited with code -9") == [etl]
    assert store.get_run(etl)["status"] == "FAILURE"
    assert store.get_run(etl)["reason"] == "code server exited with code -9"
    assert store.get_run(ml)["status"] == "STARTED"
    assert store.get_run(ml)["events"] == []


def test_second_finish_is_ignored(store: RunStore) -> None:
    run_id = store.create_run("etl", ["a"], now=T0)
    store.finish_run(run_id, "CANCELED", reason="asked to", now=T0 + 1)
    store.finish_run(run_id, "FAILURE", reason="late", now=T0 + 9)
    assert store.reconcile("restart") == []
    run = store.get_run(run_id)
    assert (run["status"], run["reason"]) == ("CANCELED", "asked to")
    assert run["ended_at"] == "2024-05-01T12:00:01.000Z"


def test_bad_values_are_bugs(store: RunStore) -> None:
    run_id = store.create_run("etl", ["a"])
    with pytest.raises(ValueError, match="event type 'BOGUS'"):
        store.add_event(run_id, "BOGUS")
    with pytest.raises(ValueError, match="final status 'STARTED'"):
        store.finish_run(run_id, "STARTED")
    with pytest.raises(ValueError, match="run status 'done'"):
        store.list_runs(status="done")
    with pytest.raises(ValueError, match="no run 'nope'"):
        store.add_event("nope", "LOG")
    with pytest.raises(ValueError, match="no run 'nope'"):
        store.finish_run("nope", "SUCCESS")
    assert store.get_run(run_id)["events"] == []  # the failed insert rolled back


def test_missing_file_read_only(tmp_path: Path) -> None:
    path = tmp_path / ".supervisor" / "runs.db"
    with pytest.raises(SupervisorError, match=f"no runs recorded yet at {re.escape(str(path))}"):
        RunStore(path, readonly=True)
    assert not path.parent.exists()  # reading creates nothing


def test_schema_version_and_wal(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    RunStore(path).close()
    with closing(sqlite3.connect(path)) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 2
        raw.execute("PRAGMA user_version = 7")
    for readonly in (False, True):
        with pytest.raises(SupervisorError, match=r"schema version 7, newer than .*\(2\)"):
            RunStore(path, readonly=readonly)


def test_read_only_store_cannot_write(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    RunStore(path).close()  # the writer is gone: no -wal or -shm file is left
    with closing(RunStore(path, readonly=True)) as reader:
        assert reader.list_runs() == []
        with pytest.raises(ValueError, match="read-only"):
            reader.create_run("etl", ["a"])


def test_reader_reads_while_a_writer_holds_a_transaction(store: RunStore) -> None:
    committed = store.create_run("etl", ["a"], now=T0)
    writer = sqlite3.connect(store.path, isolation_level=None, check_same_thread=False)
    commit_soon = threading.Timer(0.3, writer.execute, args=("COMMIT",))
    try:
        writer.execute("BEGIN EXCLUSIVE")
        writer.execute(
            "INSERT INTO runs (id, location, selection, status, started_at)"
            " VALUES ('pending0', 'etl', '[]', 'STARTED', ?)",
            (T0 + 1,),
        )
        began = time.monotonic()
        with closing(RunStore(store.path, readonly=True)) as reader:
            assert [r["id"] for r in reader.list_runs()] == [committed]
            assert reader.get_run(committed[:6])["id"] == committed
        assert time.monotonic() - began < 1.0, "the reader waited for the writer"
        # A second writer waits for the lock (busy timeout) instead of failing at once.
        commit_soon.start()
        store.add_event(committed, "LOG", message="after the lock")
    finally:
        commit_soon.cancel()  # when the test failed before the commit ran
        writer.close()
    assert [r["id"] for r in store.list_runs()] == ["pending0", committed]


# The CLI, on a workspace folder whose .supervisor/runs.db the tests fill.


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """A workspace file (deliberately not valid YAML: the commands must not parse it)."""
    path = tmp_path / "ws" / "workspace.yaml"
    path.parent.mkdir()
    path.write_text("locations: [unclosed\n")
    with closing(RunStore(runs_db_path(path.parent / ".supervisor"))) as store:
        store.create_run("etl", ["raw", "clean"], run_id="aaaa1111" + "0" * 24, now=T0)
        store.add_event("aaaa1111" + "0" * 24, "RUN_START", time=T0)
        store.finish_run("aaaa1111" + "0" * 24, "SUCCESS", now=T0 + 2.5)
        run = store.create_run("ml", ["model"], run_id="bbbb2222" + "0" * 24, now=T0 + 60)
        store.add_event(run, "RUN_START", time=T0 + 60)
        store.add_event(run, "STEP_START", step="model", time=T0 + 60.25)
        store.add_event(run, "LOG", step="model", message="fitting", time=T0 + 60.5)
        store.add_event(
            run,
            "STEP_FAILURE",
            step="model",
            message="step model failed",
            time=T0 + 61,
            error="ZeroDivisionError: division by zero",
            traceback='Traceback (most recent call last):\n  File "m.py", line 3\n',
        )
        store.add_event(run, "RUN_FAILURE", message="1 step failed", time=T0 + 61.002)
        store.finish_run(run, "FAILURE", reason="1 step failed", now=T0 + 61.002)
        store.create_run("etl", ["raw"], run_id="cccc3333" + "0" * 24, now=T0 + 120)
    return path


def invoke(*args: str) -> click.testing.Result:
    return CliRunner().invoke(runs, list(args), catch_exceptions=True)


def test_cli_table(workspace: Path) -> None:
    result = invoke("-w", str(workspace))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["ID", "LOCATION", "STATUS", "STARTED", "DURATION", "SELECTION"]
    assert lines[1].split() == ["cccc3333", "etl", "STARTED", "2024-05-01T12:02:00Z", "-", "raw"]
    assert lines[2].split() == [
        "bbbb2222",
        "ml",
        "FAILURE",
        "2024-05-01T12:01:00Z",
        "1.0s",
        "model",
    ]
    assert lines[3].split()[:5] == ["aaaa1111", "etl", "SUCCESS", "2024-05-01T12:00:00Z", "2.5s"]
    assert lines[3].endswith("raw, clean")
    assert len(lines) == 4


def test_cli_json_and_filters(workspace: Path) -> None:
    result = invoke("-w", str(workspace), "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [list(r) for r in rows] == [RUN_KEYS] * 3
    assert rows[2]["selection"] == ["raw", "clean"]
    assert rows[1]["reason"] == "1 step failed"
    filtered = json.loads(invoke("-w", str(workspace), "--status", "failure", "--json").output)
    assert [r["id"][:8] for r in filtered] == ["bbbb2222"]
    etl = json.loads(invoke("-w", str(workspace), "-l", "etl", "--limit", "1", "--json").output)
    assert [r["id"][:8] for r in etl] == ["cccc3333"]
    bad = invoke("-w", str(workspace), "--status", "done")
    assert bad.exit_code == 2 and "'done' is not one of" in bad.output


def test_cli_show_prefix(workspace: Path) -> None:
    result = invoke("show", "bbbb", "-w", str(workspace))
    assert result.exit_code == 0, result.output
    text = result.output
    assert re.search(r"^run +bbbb2222" + "0" * 24 + "$", text, re.M)
    assert re.search(r"^status +FAILURE$", text, re.M)
    assert re.search(r"^reason +1 step failed$", text, re.M)
    events = [line for line in text.splitlines() if re.match(r"\d\d:\d\d:\d\d\.\d{3}  ", line)]
    assert [line.split()[:2] for line in events] == [
        ["12:01:00.000", "RUN_START"],
        ["12:01:00.250", "STEP_START"],
        ["12:01:00.500", "LOG"],
        ["12:01:01.000", "STEP_FAILURE"],
        ["12:01:01.002", "RUN_FAILURE"],
    ]
    assert events[2].split()[2:] == ["model", "fitting"]
    after = text.split(events[3] + "\n", 1)[1].splitlines()
    assert after[:3] == [
        "    ZeroDivisionError: division by zero",
        "    Traceback (most recent call last):",
        '      File "m.py", line 3',
    ]


def test_cli_show_json(workspace: Path) -> None:
    # The group's -w and --json count for `show` too.
    result = invoke("-w", str(workspace), "--json", "show", "aaaa1111")
    assert result.exit_code == 0, result.output
    run = json.loads(result.output)
    assert list(run) == [*RUN_KEYS, "events"]
    assert [list(e) for e in run["events"]] == [EVENT_KEYS]
    assert run["events"][0]["time"] == "2024-05-01T12:00:00.000Z"


def test_cli_unknown_id_is_one_line(workspace: Path) -> None:
    direct = invoke("show", "zzzz", "-w", str(workspace))
    assert direct.exit_code == 1 and isinstance(direct.exception, SupervisorError)
    # Through the real CLI group, which turns SupervisorError into one line on stderr.
    from supervisor.cli import _Group

    root = _Group("supervisor")
    root.add_command(runs)
    result = CliRunner().invoke(root, ["runs", "show", "zzzz", "-w", str(workspace)])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"error: no run 'zzzz' in {workspace.parent / '.supervisor' / 'runs.db'}"
    ]
    assert "Traceback" not in result.output


def test_cli_without_runs_db(tmp_path: Path) -> None:
    result = invoke("-w", str(tmp_path / "workspace.yaml"))
    assert result.exit_code == 0
    assert result.output.strip() == "no runs"
    result = invoke("-w", str(tmp_path / "workspace.yaml"), "--json")
    assert result.exit_code == 0 and json.loads(result.output) == []
    result = invoke("-w", str(tmp_path / "workspace.yaml"), "show", "abcd")
    assert result.exit_code == 1
    assert "no runs recorded yet at" in str(result.exception)
