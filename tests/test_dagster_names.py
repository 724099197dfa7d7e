"""Dagster's names and merge rules, end to end: `supervisor check` reports a location with
`attribute:` under Dagster's name, an autoload_defs_module entry serves what its submodules
define, and several -w files merge as Dagster merges them."""

from __future__ import annotations

import functools
import json
import textwrap
from pathlib import Path

import pytest

from tests.helpers import EXAMPLES
from tests.uphelp import Up, cli

pytestmark = pytest.mark.timeout(900)
cli = functools.partial(cli, timeout=600)
EMPTY = EXAMPLES / "empty_location.py"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, shared_envs_dir: Path) -> Path:
    """A folder with a file of two Definitions, a package to autoload, two workspace files."""
    root = tmp_path_factory.mktemp("names")
    (root / "two_defs.py").write_text(
        "from supervisor import Definitions, asset\n\n"
        "@asset\ndef first():\n    return 1\n\n"
        "@asset\ndef second():\n    return 2\n\n"
        "defs = Definitions(assets=[first])\n"
        "other_defs = Definitions(assets=[second])\n"
    )
    package = root / "auto_pkg"
    (package / "inner").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "inner" / "__init__.py").write_text("")
    (package / "inner" / "found.py").write_text(
        "from supervisor import asset\n\n@asset\ndef found_deep():\n    return 3\n"
    )
    (root / "workspace.yaml").write_text(
        textwrap.dedent(f"""
        envs_dir: {shared_envs_dir}
        load_from:
          - python_file: {{relative_path: two_defs.py, attribute: defs}}
          - python_file: {{relative_path: two_defs.py, attribute: other_defs}}
          - autoload_defs_module: {{module_name: auto_pkg, working_directory: {root}}}
        """)
    )
    (root / "more.yaml").write_text(
        textwrap.dedent(f"""
        load_from:
          - python_file: {{relative_path: {EMPTY}, location_name: "two_defs.py:defs"}}
          - python_file: {{relative_path: {EMPTY}, location_name: extra}}
        """)
    )
    return root


def test_check_reports_under_dagsters_names(project: Path) -> None:
    done = cli("check", "-w", str(project / "workspace.yaml"), "--json", "--settle", "0")
    assert done.returncode == 0, done.stdout + done.stderr
    results = json.loads(done.stdout)
    locations = {r["location"] for r in results}
    assert locations == {"two_defs.py:defs", "two_defs.py:other_defs", "auto_pkg"}, results
    assert all(r["ok"] for r in results), results


def test_each_name_serves_its_own_definitions(project: Path) -> None:
    """The two attributes of one file are two locations; autoload finds the deep asset."""
    workspace = project / "workspace.yaml"
    up = Up(workspace)
    try:
        for name in ("two_defs.py:defs", "two_defs.py:other_defs", "auto_pkg"):
            up.wait_state(name, "SERVING", timeout=120)
        done = cli("ls", "--json", "-w", str(workspace))
        assert done.returncode == 0, done.stderr
        assets = {e["location"]: [a["key"] for a in e["assets"]] for e in json.loads(done.stdout)}
        assert assets == {
            "two_defs.py:defs": ["first"],
            "two_defs.py:other_defs": ["second"],
            "auto_pkg": ["found_deep"],
        }
    finally:
        assert up.stop() == 0, up.log()


def test_several_workspace_files_merge_in_order(project: Path) -> None:
    """A later file's entry replaces the earlier one of the same name, in its place."""
    done = cli(
        "env",
        "list",
        "--json",
        "-w",
        str(project / "workspace.yaml"),
        "-w",
        str(project / "more.yaml"),
    )
    assert done.returncode == 0, done.stderr
    used = [name for env in json.loads(done.stdout) for name in env["locations"]]
    assert sorted(used) == sorted(
        ["two_defs.py:defs", "two_defs.py:other_defs", "auto_pkg", "extra"]
    ), done.stdout
