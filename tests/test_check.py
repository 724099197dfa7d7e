"""`supervisor check` for real: a clean workspace passes; each deliberately broken location
fails with the right check named; the JUnit report is parsed back and matches."""

from __future__ import annotations

import json
import shutil
import subprocess
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from supervisor.runtime import install_runtime
from supervisor.tools import uv_binary
from tests.helpers import EXAMPLES, FIXTURES, pyenv_python
from tests.uphelp import SUPERVISOR

EMPTY = EXAMPLES / "empty_location.py"


def cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SUPERVISOR, *args], capture_output=True, text=True, timeout=timeout)


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
    assert "10 passed, 0 failed" in out.stdout
    root = ET.parse(report).getroot()
    suites = {s.get("name"): s for s in root.iter("testsuite")}
    assert sorted(suites) == ["good_a", "good_b"]
    for suite in suites.values():
        cases = [c.get("name") for c in suite.iter("testcase")]
        assert cases == ["interpreter", "requirements", "consistent", "isolated", "definitions"]
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
