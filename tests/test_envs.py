"""Environments for real: uv builds on CPython 3.8 and 3.13, keys, sharing, cache, atomicity."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from supervisor.envs import build as build_module
from supervisor.envs import build_all, collect_garbage, ensure_env, list_envs, lookup, plan
from supervisor.envs.store import location_env_path
from supervisor.errors import EnvBuildError, InterpreterNotFoundError, UsageError
from supervisor.workspace import load_workspace
from tests.helpers import EXAMPLES, FIXTURES, pid_gone, process_states, wait_for


def write_workspace(root: Path, body: str) -> Path:
    path = root / "workspace.yaml"
    path.write_text(textwrap.dedent(body))
    return path


def package_version(python: Path, module: str) -> str:
    code = f"import importlib.metadata as m; print(m.version({module!r}))"
    return subprocess.run(
        [str(python), "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()


@pytest.fixture(scope="module")
def conflicting(tmp_path_factory: pytest.TempPathFactory):
    """A workspace whose two locations pin different attrs on 3.8 and 3.13, built once."""
    root = tmp_path_factory.mktemp("conflicting")
    path = write_workspace(
        root,
        f"""
        envs_dir: envs
        load_from:
          - python_file:
              relative_path: {EXAMPLES / "empty_location.py"}
              location_name: old
              python: "3.8"
              requirements: ["attrs==21.4.0"]
          - python_file:
              relative_path: {EXAMPLES / "empty_location.py"}
              location_name: new
              python: "3.13"
              requirements: ["attrs==23.2.0", "pyflakes"]
          - python_file:
              relative_path: {EXAMPLES / "empty_location.py"}
              location_name: new_twin
              python: "3.13"
              requirements: ["pyflakes", "attrs==23.2.0"]
        """,
    )
    workspace = load_workspace(path)
    requests = plan(workspace)
    report = build_all(workspace.envs_dir, requests.values())
    assert not report.failed, report.failed
    return workspace, requests, report


def test_conflicting_pins_each_see_their_own(conflicting) -> None:
    _workspace, requests, report = conflicting
    old = report.built[requests["old"].key]
    new = report.built[requests["new"].key]
    assert package_version(old.python, "attrs") == "21.4.0"
    assert package_version(new.python, "attrs") == "23.2.0"
    version = subprocess.run(
        [str(old.python), "-c", "import sys; print(sys.version_info[:2])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert version.strip() == "(3, 8)"
    manifest = old.manifest()
    assert "attrs==21.4.0" in manifest["installed"]
    assert manifest["python"]["version"].startswith("3.8.")
    assert {"venv", "install", "runtime", "total"} <= set(manifest["timings"])
    assert manifest["tools"]["uv"].startswith("uv ")


def test_equal_specs_share_one_environment(conflicting) -> None:
    workspace, requests, report = conflicting
    assert requests["new"].key == requests["new_twin"].key
    assert requests["new"].locations == ("new", "new_twin")
    assert len(report.built) == 2
    rows = {r["name"]: r for r in list_envs(workspace)}
    assert sorted(rows[requests["new"].name]["locations"]) == ["new", "new_twin"]
    assert rows[requests["old"].name]["size_bytes"] > 1_000_000


def test_console_scripts_work_in_place_after_the_rename(conflicting) -> None:
    _, requests, report = conflicting
    env = report.built[requests["new"].key]
    out = subprocess.run(
        [str(env.path / "bin" / "pyflakes"), "--version"], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert not list(env.path.parent.glob(".tmp-*")), "no temporary folder may remain"


@pytest.mark.parametrize("name", ["old", "new"])
def test_the_runtime_is_compiled_for_where_the_environment_is(conflicting, name: str) -> None:
    """No server start compiles the runtime; a traceback names its files in place."""
    _, requests, report = conflicting
    env = report.built[requests[name].key]
    python = env.path / "bin" / "python"
    code = (
        "import supervisor.codeserver.worker as w, importlib.util as u, marshal;"
        "cached = u.cache_from_source(w.__file__);"
        "data = open(cached, 'rb').read();"
        "print(w.__file__); print(marshal.loads(data[16:]).co_filename)"
    )
    out = subprocess.run(
        [str(python), "-I", "-c", code], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    source, compiled_for = out.stdout.split()
    assert compiled_for == source and source.startswith(str(env.path)), out.stdout


def test_a_cache_hit_starts_no_subprocess(conflicting, monkeypatch) -> None:
    workspace, requests, _ = conflicting

    def refuse(*args, **kwargs):
        raise AssertionError(f"a cache hit started a subprocess: {args}")

    monkeypatch.setattr(subprocess, "run", refuse)
    monkeypatch.setattr(subprocess, "Popen", refuse)
    again = plan(workspace)
    hit = ensure_env(workspace.envs_dir, again["old"])
    assert hit.hit
    assert hit.path == workspace.envs_dir / requests["old"].name


def test_a_changed_requirement_makes_a_new_key(tmp_path: Path) -> None:
    reqs = tmp_path / "requirements.txt"
    reqs.write_text("six==1.16.0\n")
    path = write_workspace(
        tmp_path,
        f"""
        load_from:
          - python_file:
              relative_path: {EXAMPLES / "empty_location.py"}
              location_name: a
              python: "3.8"
              requirements: requirements.txt
          - python_file:
              relative_path: {EXAMPLES / "empty_location.py"}
              location_name: b
              python: "3.8"
              requirements: ["six==1.16.0"]
          - python_file:
              relative_path: {EXAMPLES / "empty_location.py"}
              location_name: c
              python: "3.8"
              requirements: ["six==1.17.0"]
        """,
    )
    first = plan(load_workspace(path))
    assert first["a"].key == first["b"].key, "a file and a list with equal contents share"
    assert first["c"].key != first["b"].key
    reqs.write_text("six==1.17.0\n")
    second = plan(load_workspace(path))
    assert second["a"].key != first["a"].key
    assert second["a"].key == first["c"].key


def test_an_unresolvable_requirement_names_the_location_and_the_others_go_on(
    tmp_path: Path,
) -> None:
    path = write_workspace(
        tmp_path,
        f"""
        load_from:
          - python_file:
              relative_path: {EXAMPLES / "empty_location.py"}
              location_name: broken
              python: "3.13"
              requirements: ["six==999.0.0"]
          - python_file:
              relative_path: {EXAMPLES / "empty_location.py"}
              location_name: fine
              python: "3.13"
        """,
    )
    workspace = load_workspace(path)
    requests = plan(workspace)
    report = build_all(workspace.envs_dir, requests.values())
    assert requests["fine"].key in report.built
    error = report.failed[requests["broken"].key]
    assert isinstance(error, EnvBuildError)
    assert "broken" in str(error)
    assert "six==999.0.0" in str(error), "the resolver's own message is quoted"
    assert lookup(workspace.envs_dir, requests["broken"]) is None
    assert not list(workspace.envs_dir.glob(".tmp-*"))


def test_a_missing_interpreter_lists_what_was_found(tmp_path: Path) -> None:
    path = write_workspace(
        tmp_path,
        f"""
        load_from:
          - python_file:
              relative_path: {EXAMPLES / "empty_location.py"}
              python: "3.5"
        """,
    )
    with pytest.raises(InterpreterNotFoundError) as info:
        plan(load_workspace(path))
    assert "3.5" in str(info.value)
    assert f"{path}:3 location 'empty_location.py' python:" in str(info.value)
    assert "3.8.18" in str(info.value) and "3.13.0" in str(info.value)


BUILD_SCRIPT = """
import sys
from supervisor.envs import ensure_env, plan
from supervisor.workspace import load_workspace
workspace = load_workspace(sys.argv[1])
built = ensure_env(workspace.envs_dir, plan(workspace)[sys.argv[2]])
print(built.path, built.hit)
"""


def one_location(tmp_path: Path, requirement: str) -> Path:
    return write_workspace(
        tmp_path,
        f"""
        load_from:
          - python_file:
              relative_path: {EXAMPLES / "empty_location.py"}
              location_name: only
              python: "3.8"
              requirements: ["{requirement}"]
        """,
    )


def listing(folder: Path) -> str:
    """What is in FOLDER, two levels deep, for failure messages."""
    if not folder.exists():
        return f"no folder {folder}"
    return ", ".join(sorted(str(p.relative_to(folder)) for p in folder.glob("*/*"))) or "empty"


@pytest.mark.timeout(300)  # above the 120 s wait for the build, plus the rebuild
def test_an_interrupted_build_is_never_used(tmp_path: Path, monkeypatch) -> None:
    # A package whose build waits for our release: the build is surely mid-install when
    # killed, whatever the build does before that and whatever it names its folders.
    package = tmp_path / "waits_for_release"
    shutil.copytree(FIXTURES / "packages" / "waits_for_release", package)
    started, release = tmp_path / "build-started", tmp_path / "build-release"
    monkeypatch.setenv("BUILD_STARTED_MARKER", str(started))
    monkeypatch.setenv("BUILD_RELEASE_MARKER", str(release))
    path = one_location(tmp_path, f"waits_for_release @ {package.as_uri()}")
    workspace = load_workspace(path)
    envs_dir = workspace.envs_dir
    request = plan(workspace)["only"]
    log = tmp_path / "build.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", BUILD_SCRIPT, str(path), "only"],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for(
            started.exists,
            120,
            "the build to reach the install of waits_for_release",
            lambda: f"{listing(envs_dir)}; build output: {log.read_text()!r}",
        )
        backend = int(started.read_text())
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
    # uv and what it runs die with the build (the parent-death signal), not at their leisure.
    wait_for(
        lambda: pid_gone(backend),
        2,
        f"the killed build's backend {backend} to end",
        lambda: process_states(backend),
    )
    left = sorted(p for p in envs_dir.iterdir() if p.name != build_module.LOCKS)
    assert left, "the interrupted build's folder stays, for gc to find"
    target = envs_dir / request.name
    assert not target.exists(), f"only a complete environment has its name: {listing(envs_dir)}"
    assert lookup(envs_dir, request) is None, "a half-built environment must never be used"
    with pytest.raises(UsageError, match="not built yet"):
        location_env_path(workspace, "only")

    release.write_text("")
    built = ensure_env(envs_dir, request)
    assert not built.hit, "the interrupted build is done again, not taken as it was"
    assert built.path == target and built.path not in left
    assert (built.path / build_module.MANIFEST).is_file()
    assert package_version(built.python, "waits_for_release") == "1.0"
    assert location_env_path(workspace, "only") == built.path
    # The next build of the key, holding its lock, removed what the dead one left.
    remaining = sorted(p for p in envs_dir.iterdir() if p.name != build_module.LOCKS)
    assert remaining == [built.path], "a dead build's folder is removed by the next build"
    assert collect_garbage(workspace, dry_run=True) == []


@pytest.mark.timeout(300)  # above the 180 s each build may take
def test_two_concurrent_builds_of_one_key_wait_not_collide(tmp_path: Path) -> None:
    path = one_location(tmp_path, "six==1.16.0")
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", BUILD_SCRIPT, str(path), "only"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=180) for p in procs]
    for proc, (_out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
    results = sorted(out.split() for out, _ in outputs)
    assert results[0][0] == results[1][0], "both got the same environment"
    assert [hit for _, hit in results] == ["False", "True"], "one built, the other waited"
    workspace = load_workspace(path)
    assert not list(workspace.envs_dir.glob(".tmp-*"))


def test_gc_removes_what_no_entry_uses(tmp_path: Path) -> None:
    path = one_location(tmp_path, "six==1.16.0")
    workspace = load_workspace(path)
    old = ensure_env(workspace.envs_dir, plan(workspace)["only"])
    path = one_location(tmp_path, "six==1.17.0")
    workspace = load_workspace(path)
    new = ensure_env(workspace.envs_dir, plan(workspace)["only"])
    dry = collect_garbage(workspace, dry_run=True)
    assert [p for p, _ in dry] == [old.path] and old.path.exists()
    collect_garbage(workspace)
    assert not old.path.exists() and new.path.exists()
    assert json.loads((new.path / "manifest.json").read_text())["requirements"] == ["six==1.17.0"]
    assert build_module.MANIFEST == "manifest.json"
