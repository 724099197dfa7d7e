"""`supervisor check` for real: a clean workspace passes; each deliberately broken location
fails with the right check named; the JUnit report is parsed back and matches."""

from __future__ import annotations

import functools
import json
import os
import shutil
import signal
import stat
import subprocess
import textwrap
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import psutil
import pytest

from supervisor.runtime import install_runtime
from supervisor.tools import uv_binary
from tests.helpers import EXAMPLES, FIXTURES, pyenv_python, remove, short_tempdir, wait_for
from tests.uphelp import SUPERVISOR, cli

EMPTY = EXAMPLES / "empty_location.py"
# Above the longest inner wait (a cold `env build`, a `cli` call of up to 600 s), so that
# the wait's own message is what a slow run reports.
pytestmark = pytest.mark.timeout(900)
# A check may build environments cold: its calls get longer than other commands.
cli = functools.partial(cli, timeout=600)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory, shared_envs_dir: Path) -> Path:
    root = tmp_path_factory.mktemp("check")
    path = root / "workspace.yaml"
    path.write_text(
        textwrap.dedent(f"""
        envs_dir: {shared_envs_dir}
        load_from:
          - python_file: {{relative_path: {EMPTY}, location_name: good_a, python: "3.8",
                           requirements: ["attrs==21.4.0"]}}
          - python_file: {{relative_path: {EMPTY}, location_name: good_b, python: "3.13",
                           requirements: ["six==1.16.0"]}}
          - python_file: {{relative_path: {EMPTY}, location_name: override, python: "3.8",
                           requirements: ["six==1.16.0"]}}
          - python_file: {{relative_path: {EMPTY}, location_name: mismatch, python: "3.8",
                           requirements: ["pyflakes==3.1.0"]}}
          - python_file: {{relative_path: {FIXTURES / "faults" / "raise_on_import.py"},
                           location_name: broken_load, python: "3.13"}}
    """)
    )
    built = cli("env", "build", "-w", str(path))
    assert built.returncode == 0, built.stderr
    env_of = {
        name: Path(cli("env", "path", name, "-w", str(path)).stdout.strip())
        for name in ("good_a", "override", "mismatch")
    }
    # override: the workspace pins six 1.16.0, the environment was changed behind our back.
    uv = uv_binary()
    subprocess.run(
        [
            uv,
            "pip",
            "install",
            "--quiet",
            "--python",
            str(env_of["override"] / "bin" / "python"),
            "six==1.17.0",
        ],
        check=True,
    )
    # mismatch: the environment was replaced by one made on another Python.
    manifest = (env_of["mismatch"] / "manifest.json").read_text()
    shutil.rmtree(env_of["mismatch"])
    target = env_of["mismatch"]
    subprocess.run(
        [uv, "venv", "--quiet", "--relocatable", "--python", pyenv_python("3.9"), str(target)],
        check=True,
    )
    subprocess.run(
        [
            uv,
            "pip",
            "install",
            "--quiet",
            "--python",
            str(target / "bin" / "python"),
            "grpcio",
            "protobuf",
            "pyflakes==3.1.0",
        ],
        check=True,
    )
    install_runtime(target / "lib" / "python3.9" / "site-packages")
    (target / "manifest.json").write_text(manifest)
    # leak: a location whose env: points PYTHONPATH at another location's site-packages.
    other = env_of["good_a"] / "lib" / "python3.8" / "site-packages"
    leak = f"""  - python_file: {{relative_path: {EMPTY}, location_name: leak, python: "3.8",
                   env: {{PYTHONPATH: "{other}"}}}}
"""
    path.write_text(path.read_text() + leak)
    yield path
    # Leave no tampered environment for later tests to share.
    for name in ("override", "mismatch"):
        shutil.rmtree(env_of[name], ignore_errors=True)


def test_a_clean_workspace_passes_with_a_junit_report(workspace: Path, tmp_path: Path) -> None:
    report = tmp_path / "junit.xml"
    out = cli("check", "good_a", "good_b", "-w", str(workspace), "--junit", str(report))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "12 passed, 0 failed" in out.stdout
    root = ET.parse(report).getroot()
    suites = {s.get("name"): s for s in root.iter("testsuite")}
    assert sorted(suites) == ["good_a", "good_b"]
    for suite in suites.values():
        cases = [c.get("name") for c in suite.iter("testcase")]
        assert cases == [
            "interpreter",
            "requirements",
            "consistent",
            "isolated",
            "definitions",
            "stable",
        ]
        assert suite.get("failures") == "0"
        assert not list(suite.iter("failure"))


def test_broken_locations_fail_the_right_checks(workspace: Path, tmp_path: Path) -> None:
    report = tmp_path / "junit.xml"
    out = cli("check", "-w", str(workspace), "--json", "--junit", str(report))
    assert out.returncode == 1, out.stderr
    rows = json.loads(out.stdout)
    assert {"location", "check", "ok", "detail"} <= set(rows[0])
    failed: dict[str, set[str]] = {}
    for row in rows:
        if not row["ok"]:
            failed.setdefault(row["location"], set()).add(row["check"])
    assert failed == {
        "override": {"requirements"},
        "mismatch": {"interpreter"},
        "broken_load": {"definitions"},
        "leak": {"isolated"},
    }, rows
    detail = {(r["location"], r["check"]): r["detail"] for r in rows}
    assert "six" in detail["override", "requirements"]
    assert "1.17.0" in detail["override", "requirements"]
    assert "3.9.18" in detail["mismatch", "interpreter"]
    assert "this location is broken on purpose" in detail["broken_load", "definitions"]
    assert "PYTHONPATH" in detail["leak", "isolated"]
    assert rows[0]["ok"] is False, "failures come first"
    # The JUnit report says the same.
    root = ET.parse(report).getroot()
    junit_failed: dict[str, set[str]] = {}
    for suite in root.iter("testsuite"):
        for case in suite.iter("testcase"):
            if case.find("failure") is not None:
                junit_failed.setdefault(suite.get("name"), set()).add(case.get("name"))
    assert junit_failed == failed
    assert root.get("failures") == str(sum(len(v) for v in failed.values()))


def test_check_of_a_bad_workspace_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "workspace.yaml"
    bad.write_text("load_from:\n  - python_file: {relative_path: x.py, pyhton: '3.8'}\n")
    out = cli("check", "-w", str(bad))
    assert out.returncode == 2
    assert "pyhton" in out.stderr and "did you mean" in out.stderr


def socket_paths_of(pid: int) -> list[Path]:
    """The --socket paths of the code servers below process PID."""
    paths = []
    for proc in psutil.Process(pid).children(recursive=True):
        try:
            argv = proc.cmdline()
        except psutil.Error:
            continue
        if "--socket" in argv:
            paths.append(Path(argv[argv.index("--socket") + 1]))
    return paths


def test_a_check_runs_its_servers_in_a_private_folder(workspace: Path, tmp_path: Path) -> None:
    runtime = short_tempdir()
    err = tmp_path / "check.err"
    with open(err, "wb") as handle:
        proc = subprocess.Popen(
            [SUPERVISOR, "check", "good_a", "--keep-running", "-w", str(workspace)],
            stdout=subprocess.DEVNULL,
            stderr=handle,
            env={**os.environ, "XDG_RUNTIME_DIR": str(runtime)},
            start_new_session=True,
        )
    try:
        wait_for(
            lambda: "checks done" in err.read_text(),
            240,
            "the check to finish and keep its servers running",
            err.read_text,
        )
        sockets = socket_paths_of(proc.pid)
        modes = {
            folder: stat.S_IMODE(folder.lstat().st_mode)
            for folder in {p.parent for p in sockets} | {p.parent.parent for p in sockets}
        }
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        leftovers = sorted(runtime.rglob("*"))
        remove(runtime)
    assert sockets, f"no code server with a --socket below the check; stderr:\n{err.read_text()}"
    (private,) = {p.parent for p in sockets}
    assert private.name == f"check-{proc.pid}", private
    assert private.parent.parent == runtime, "inside the workspace's own socket folder"
    assert modes == {private: 0o700, private.parent: 0o700}, {
        str(k): f"{v:o}" for k, v in modes.items()
    }
    assert code == 0, err.read_text()
    assert private not in leftovers, "the check removes its own folder when it ends"


FAULTS = FIXTURES / "faults"


@pytest.fixture(scope="module")
def faulty_workspace(tmp_path_factory: pytest.TempPathFactory, shared_envs_dir: Path) -> Path:
    root = tmp_path_factory.mktemp("check-faults")
    path = root / "workspace.yaml"
    path.write_text(
        textwrap.dedent(
            f"""
            envs_dir: {shared_envs_dir}
            load_from:
              - python_file: {{relative_path: {FAULTS}/healthy.py, location_name: healthy}}
              - python_file: {{relative_path: {FAULTS}/hang_on_import.py,
                               location_name: import_hang, startup_timeout: 2}}
              - python_file: {{relative_path: {FAULTS}/exit_3_after_start.py,
                               location_name: exit3}}
              - python_file: {{relative_path: {FAULTS}/segfault_after_start.py,
                               location_name: segfault}}
              - python_file: {{relative_path: {FAULTS}/memory_blowup.py, location_name: memory,
                               memory_limit: 200MiB}}
            """
        )
    )
    return path


def test_check_ends_and_fails_locations_that_do_not_keep_serving(
    faulty_workspace: Path, tmp_path: Path
) -> None:
    report = tmp_path / "junit.xml"
    started = time.monotonic()
    out = cli("check", "-w", str(faulty_workspace), "--json", "--junit", str(report))
    took = time.monotonic() - started
    assert out.returncode == 1, out.stdout + out.stderr
    rows = json.loads(out.stdout)
    stable = {r["location"]: r for r in rows if r["check"] == "stable"}
    assert stable["healthy"]["ok"], stable["healthy"]
    for name in ("import_hang", "exit3", "segfault", "memory"):
        assert not stable[name]["ok"], (name, stable[name])
    assert "startup timeout of 2s" in stable["import_hang"]["detail"]
    assert "exit code 3" in stable["exit3"]["detail"]
    assert "SIGSEGV" in stable["segfault"]["detail"]
    assert "memory limit exceeded" in stable["memory"]["detail"]
    # The start error is said once, on `stable`; the other rows do not repeat it.
    hang_rows = [r for r in rows if r["location"] == "import_hang" and r["check"] != "stable"]
    assert all(r["detail"].startswith("not checked") for r in hang_rows), hang_rows
    # Nothing restarts inside a check, so it ends well within a start and a settle each.
    assert took < 120, f"check took {took:.0f}s"
    root = ET.parse(report).getroot()
    assert float(root.get("time")) <= took
    times = [float(c.get("time")) for c in root.iter("testcase")]
    assert max(times) >= 2.0 and min(times) < 0.5, times


def test_an_interrupted_check_still_reports(faulty_workspace: Path, tmp_path: Path) -> None:
    slow = faulty_workspace.parent / "slow.yaml"
    slow.write_text(
        faulty_workspace.read_text().replace("startup_timeout: 2", "startup_timeout: 600")
    )
    report = tmp_path / "junit.xml"
    out_file = tmp_path / "check.out"
    with open(out_file, "wb") as out:
        proc = subprocess.Popen(
            [
                SUPERVISOR,
                "check",
                "healthy",
                "import_hang",
                "-w",
                str(slow),
                "--junit",
                str(report),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for(
            lambda: (
                "import_hang  | [STARTING]" in out_file.read_text()
                and "healthy      | [SERVING]" in out_file.read_text()
            ),
            120,
            "both locations to be starting or serving",
            out_file.read_text,
        )
        proc.send_signal(signal.SIGINT)
        code = proc.wait(60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    text = out_file.read_text()
    assert code == 130, text
    assert "(interrupted)" in text
    assert "not checked: interrupted" in text
    suites = {s.get("name") for s in ET.parse(report).getroot().iter("testsuite")}
    assert suites == {"healthy", "import_hang"}
