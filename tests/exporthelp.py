"""What the export tests share: a workspace of locations to export (two built, one Dagster
one never built, a grpc_server entry) and `export kubernetes` of it, run once a module."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers import EXAMPLES
from tests.uphelp import cli


@pytest.fixture(scope="module")
def export_project(tmp_path_factory: pytest.TempPathFactory, shared_envs_dir: Path) -> Path:
    """A workspace of two pure-SDK locations on 3.12 and 3.8, a Dagster one (never built
    here) and a grpc_server entry; returns its file."""
    root = tmp_path_factory.mktemp("export")
    code = root / "proj"
    (code / "pkg").mkdir(parents=True)
    shutil.copy(EXAMPLES / "empty_location.py", code / "empty_location.py")
    (code / "pkg" / "__init__.py").write_text("VALUE = 1\n")
    (code / "__pycache__").mkdir()
    (code / "__pycache__" / "stale.pyc").write_bytes(b"\0")
    path = root / "workspace.yaml"
    path.write_text(
        textwrap.dedent(f"""
        envs_dir: {shared_envs_dir}
        load_from:
          - python_file:
              relative_path: proj/empty_location.py
              working_directory: proj
              location_name: My_Loc
              python: "3.12"
              requirements: ["six==1.16.0"]
              memory_limit: 512MiB
              env: {{GREETING: hello}}
              health: {{interval: 3, timeout: 2, failures: 4}}
              restart: {{policy: never, max_restarts: 3}}
          - python_file:
              relative_path: {EXAMPLES / "empty_location.py"}
              working_directory: {EXAMPLES}
              location_name: old
              python: "3.8"
          - python_module:
              module_name: dag_code
              working_directory: {code}
              location_name: dag
              requirements: ["dagster>=1.13,<1.14"]
              memory_limit: 1GiB
          - grpc_server: {{host: example.com, port: 4500, location_name: remote}}
        """)
    )
    return path


@pytest.fixture(scope="module")
def k8s_out(export_project: Path) -> Path:
    """`export kubernetes` of every location, run once (it builds nothing)."""
    out = export_project.parent / "out" / "k8s"
    done = cli(
        "export",
        "kubernetes",
        "-w",
        str(export_project),
        "-o",
        str(out),
        "--image-prefix",
        "registry.example.com/team",
        "--namespace",
        "data",
    )
    assert done.returncode == 0, done.stderr
    assert "skipping location 'remote'" in done.stderr
    assert "location 'My_Loc' is named 'my-loc' in the cluster" in done.stderr
    return out


def env_of(export_project: Path, name: str) -> Path:
    done = cli("env", "path", name, "-w", str(export_project))
    assert done.returncode == 0, done.stderr
    return Path(done.stdout.strip())


def documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]
