"""`builder: pip`: virtualenv + pip where uv cannot serve, built for real on CPython 3.12."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from supervisor import tools
from supervisor.envs import build_all, ensure_env, lookup, plan
from supervisor.envs.keys import BASE_REQUIREMENTS, KEY_VERSION, index_settings
from supervisor.errors import EnvBuildError, SupervisorError, WorkspaceError
from supervisor.runtime import runtime_hash
from supervisor.workspace import load_workspace
from tests.helpers import EXAMPLES
from tests.uphelp import cli

# Above the longest inner wait: a pip build of a small package, and one `supervisor` call.
pytestmark = pytest.mark.timeout(600)

LOCATION = EXAMPLES / "empty_location.py"


def write_workspace(root: Path, body: str) -> Path:
    path = root / "workspace.yaml"
    path.write_text(textwrap.dedent(body))
    return path


def two_builders(root: Path, requirement: str) -> Path:
    """A workspace with one spec twice: `pipped` built by pip, `uved` by uv (the default)."""
    return write_workspace(
        root,
        f"""
        envs_dir: envs
        defaults:
          python: "3.12"
          requirements: ["{requirement}"]
        load_from:
          - python_file: {{relative_path: {LOCATION}, location_name: pipped, builder: pip}}
          - python_file: {{relative_path: {LOCATION}, location_name: uved}}
        """,
    )


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory):
    """`pipped` and `uved`, one spec holding pyflakes (a console script), built once."""
    path = two_builders(tmp_path_factory.mktemp("builders"), "pyflakes==3.2.0")
    workspace = load_workspace(path)
    requests = plan(workspace)
    said: list[str] = []
    report = build_all(workspace.envs_dir, requests.values(), said.append)
    assert not report.failed, report.failed
    return workspace, requests, report, said


def test_a_pip_location_is_built_by_pip_and_says_so(built) -> None:
    workspace, requests, report, said = built
    pipped = report.built[requests["pipped"].key]
    manifest = pipped.manifest()
    assert manifest["builder"] == "pip"
    assert manifest["tools"]["pip"].startswith("pip ")
    assert manifest["tools"]["virtualenv"].startswith("virtualenv ")
    assert "pyflakes==3.2.0" in manifest["installed"]
    assert {"venv", "install", "runtime", "total"} <= set(manifest["timings"])
    assert report.built[requests["uved"].key].manifest()["builder"] == "uv"
    assert f"building {requests['pipped'].name} with pip for pipped" in said
    out = cli("env", "list", "--json", "-w", str(workspace.path))
    assert out.returncode == 0, out.stderr
    rows = {row["locations"][0]: row for row in json.loads(out.stdout)}
    assert (rows["pipped"]["builder"], rows["uved"]["builder"]) == ("pip", "uv")
    table = cli("env", "list", "-w", str(workspace.path))
    assert table.returncode == 0, table.stderr
    header, *lines = table.stdout.splitlines()
    assert "BUILDER" in header
    assert any(requests["pipped"].name in line and " pip " in line for line in lines), lines


def test_an_environment_without_a_builder_in_its_manifest_was_made_by_uv(built) -> None:
    workspace, requests, report, _ = built
    manifest_path = report.built[requests["uved"].key].path / "manifest.json"
    original = manifest_path.read_text()
    manifest = json.loads(original)
    del manifest["builder"]
    try:
        manifest_path.write_text(json.dumps(manifest))
        out = cli("env", "list", "--json", "-w", str(workspace.path))
        assert out.returncode == 0, out.stderr
        rows = {row["locations"][0]: row["builder"] for row in json.loads(out.stdout)}
        assert rows == {"pipped": "pip", "uved": "uv"}
    finally:
        manifest_path.write_text(original)


def test_console_scripts_of_a_pip_build_run_after_the_rename(built) -> None:
    workspace, requests, report, _ = built
    env = report.built[requests["pipped"].key].path
    out = subprocess.run(
        [str(env / "bin" / "pyflakes"), "--version"], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("3.2.0"), out.stdout
    assert (env / "bin" / "pyflakes").read_text().startswith(f"#!{env}/bin/python")
    assert f"VIRTUAL_ENV={env}\n" in (env / "bin" / "activate").read_text()
    naming_temp = [
        p.name for p in [*(env / "bin").iterdir(), env / "pyvenv.cfg"] if b".tmp-" in p.read_bytes()
    ]
    assert naming_temp == [], "nothing in bin may name the temporary folder"
    assert not list(workspace.envs_dir.glob(".tmp-*")), "no temporary folder may remain"


def test_a_second_ensure_of_a_pip_build_is_a_hit(built, monkeypatch) -> None:
    workspace, requests, _, _ = built

    def refuse(*args, **kwargs):
        raise AssertionError(f"a cache hit started a subprocess: {args}")

    monkeypatch.setattr(subprocess, "run", refuse)
    monkeypatch.setattr(subprocess, "Popen", refuse)
    again = plan(workspace)
    assert again["pipped"] == requests["pipped"]
    hit = ensure_env(workspace.envs_dir, again["pipped"])
    assert hit.hit and hit.path == workspace.envs_dir / requests["pipped"].name


def old_key(request) -> str:
    """The key as computed before there were builders: uv's keys must stay these."""
    python = request.python
    material = {
        "version": KEY_VERSION,
        "implementation": python.implementation,
        "python": python.version,
        "machine": getattr(python, "machine", ""),
        "requirements": sorted(set(request.requirements)),
        "base": list(BASE_REQUIREMENTS),
        "runtime": runtime_hash(),
        "index": index_settings(),
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()[:16]


def test_a_uv_and_a_pip_build_of_one_spec_have_different_keys(built) -> None:
    _, requests, report, _ = built
    pipped, uved = requests["pipped"], requests["uved"]
    assert (pipped.builder, uved.builder) == ("pip", "uv")
    assert pipped.requirements == uved.requirements and pipped.python == uved.python
    assert pipped.key != uved.key
    assert report.built[pipped.key].path != report.built[uved.key].path
    assert uved.key == old_key(uved), "uv-built environments keep the keys they had"


def test_pip_index_settings_make_pip_keys_only(tmp_path: Path, monkeypatch) -> None:
    workspace = load_workspace(two_builders(tmp_path, "six==1.16.0"))
    for name in ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS", "PIP_CONFIG_FILE"):
        monkeypatch.delenv(name, raising=False)
    before = plan(workspace)
    keys = [before["pipped"].key]
    config = tmp_path / "pip.conf"
    config.write_text("[global]\nindex-url = http://127.0.0.1:9/simple\n")
    changes = [
        ("PIP_INDEX_URL", "http://127.0.0.1:9/simple"),
        ("PIP_EXTRA_INDEX_URL", "http://127.0.0.1:9/extra"),
        ("PIP_FIND_LINKS", str(tmp_path)),
        ("PIP_CONFIG_FILE", str(config)),
    ]
    for name, value in changes:
        monkeypatch.setenv(name, value)
        now = plan(workspace)
        assert now["uved"].key == before["uved"].key, f"{name} changed a uv key"
        keys.append(now["pipped"].key)
    config.write_text("[global]\nindex-url = http://127.0.0.1:9/other\n")
    keys.append(plan(workspace)["pipped"].key)
    assert len(set(keys)) == len(keys), f"each pip setting, and the config's contents: {keys}"
    monkeypatch.setenv("UV_INDEX_URL", "http://127.0.0.1:9/simple")
    after = plan(workspace)
    assert after["pipped"].key == keys[-1], "UV_* settings do not change pip keys"
    assert after["uved"].key != before["uved"].key


@pytest.mark.timeout(400)  # above the 300 s the builds may take
def test_an_unreachable_pip_index_fails_the_pip_build_only(tmp_path: Path, monkeypatch) -> None:
    # Only the unreachable index: no config file, no find-links, no extra index, no retries.
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_TIMEOUT", "5")
    monkeypatch.delenv("PIP_FIND_LINKS", raising=False)
    monkeypatch.delenv("PIP_EXTRA_INDEX_URL", raising=False)
    workspace = load_workspace(two_builders(tmp_path, "six==1.16.0"))
    requests = plan(workspace)
    report = build_all(workspace.envs_dir, requests.values())
    assert requests["uved"].key in report.built, report.failed
    error = report.failed[requests["pipped"].key]
    assert isinstance(error, EnvBuildError)
    message = str(error)
    assert "'pipped'" in message and "pip could not install the requirements" in message
    assert "No matching distribution found for six==1.16.0" in message, "pip's own words"
    assert lookup(workspace.envs_dir, requests["pipped"]) is None
    assert not list(workspace.envs_dir.glob(".tmp-*"))


def test_without_uv_a_default_location_is_built_with_pip(tmp_path: Path, monkeypatch) -> None:
    def missing() -> str:
        raise SupervisorError("uv not found beside this Python or on PATH")

    monkeypatch.setattr(tools, "uv_binary", missing)
    path = write_workspace(
        tmp_path,
        f"""
        load_from:
          - python_file:
              relative_path: {LOCATION}
              location_name: plain
              python: "3.12"
              requirements: ["six==1.16.0"]
        """,
    )
    workspace = load_workspace(path)
    (request,) = plan(workspace).values()
    assert request.builder == "pip"
    said: list[str] = []
    env = ensure_env(workspace.envs_dir, request, said.append)
    assert said[0] == "uv not found beside this Python or on PATH; building with virtualenv + pip"
    assert env.manifest()["builder"] == "pip"
    assert "six==1.16.0" in env.manifest()["installed"]
    check = subprocess.run(
        [str(env.python), "-c", "import six; print(six.__version__)"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert check.stdout.strip() == "1.16.0", check.stderr


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (
            """\
            defaults:
              builder: conda
            load_from:
              - python_module: a
            """,
            "workspace.yaml:2 defaults.builder: expected one of uv, pip; got 'conda'",
        ),
        (
            """\
            load_from:
              - python_module:
                  module_name: a
                  builder: [pip]
            """,
            "workspace.yaml:4 load_from[0].python_module.builder: expected one of uv, pip;"
            " got ['pip']",
        ),
        (
            """\
            load_from:
              - python_module: {module_name: a, biulder: pip}
            """,
            "workspace.yaml:2 load_from[0].python_module.biulder: unknown key;"
            " did you mean 'builder'?",
        ),
        (
            """\
            load_from:
              - grpc_server: {port: 4500, builder: pip}
            """,
            "workspace.yaml:2 load_from[0].grpc_server.builder: a grpc_server location runs"
            " elsewhere; builder has no effect; got 'pip'",
        ),
    ],
)
def test_a_bad_builder_is_refused_with_its_place(
    tmp_path: Path, monkeypatch, body: str, problem: str
) -> None:
    monkeypatch.chdir(tmp_path)
    write_workspace(tmp_path, body)
    with pytest.raises(WorkspaceError) as caught:
        load_workspace("workspace.yaml")
    assert caught.value.problems == [problem]


def test_the_builder_is_read_from_defaults_and_entries(tmp_path: Path) -> None:
    path = write_workspace(
        tmp_path,
        """
        defaults: {builder: pip}
        load_from:
          - python_module: a
          - python_module: {module_name: b, builder: uv}
        """,
    )
    workspace = load_workspace(path)
    assert [loc.builder for loc in workspace.locations] == ["pip", "uv"]


def test_a_builder_beside_executable_path_is_refused(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    write_workspace(
        tmp_path,
        f"""\
        load_from:
          - python_module: {{module_name: a, executable_path: {sys.executable}, builder: pip}}
        """,
    )
    with pytest.raises(WorkspaceError) as caught:
        load_workspace("workspace.yaml")
    assert caught.value.problems == [
        "workspace.yaml:2 load_from[0].python_module.builder: executable_path runs that"
        " interpreter as is, so builder cannot apply; remove one of them; got 'pip'"
    ]
