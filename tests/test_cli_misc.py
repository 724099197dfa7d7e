"""`supervisor pythons` and `supervisor env list|gc|path` through the real console script."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import click
import pytest

from tests.helpers import EXAMPLES
from tests.uphelp import cli

# Above the longest inner wait (one `cli` call, an environment build included).
pytestmark = pytest.mark.timeout(600)


def test_pythons_lists_what_was_found() -> None:
    out = cli("pythons", "--json")
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert {"path", "version", "implementation", "source"} <= set(rows[0])
    versions = {row["version"]: row for row in rows}
    assert versions["3.8.18"]["source"] == "pyenv" and versions["3.8.18"]["can_host"]
    assert not versions["3.7.16"]["can_host"]
    table = cli("pythons").stdout
    assert "3.13.0" in table and "pyenv" in table


def test_env_list_path_and_gc(tmp_path: Path) -> None:
    envs = tmp_path / "envs"
    workspace = tmp_path / "workspace.yaml"
    body = textwrap.dedent(f"""
        envs_dir: {envs}
        load_from:
          - python_file: {{relative_path: {EXAMPLES / "empty_location.py"}, location_name: one,
                           python: "3.13", requirements: [REQ]}}
    """)
    workspace.write_text(body.replace("REQ", '"six==1.16.0"'))
    assert cli("env", "build", "-w", str(workspace)).returncode == 0
    first = Path(cli("env", "path", "one", "-w", str(workspace)).stdout.strip())
    assert (first / "manifest.json").is_file()
    (row,) = json.loads(cli("env", "list", "--json", "-w", str(workspace)).stdout)
    assert row["locations"] == ["one"] and row["path"] == str(first)
    assert row["python"] == "3.13.0" and row["size_bytes"] > 0 and row["last_used"]
    workspace.write_text(body.replace("REQ", '"six==1.17.0"'))
    missing = cli("env", "path", "one", "-w", str(workspace))
    assert missing.returncode == 2 and "run: supervisor env build one" in missing.stderr
    dry = cli("env", "gc", "--dry-run", "-w", str(workspace))
    assert f"would remove {first}" in dry.stdout and first.exists()
    gone = cli("env", "gc", "-w", str(workspace))
    assert f"removed {first}" in gone.stdout and not first.exists()


def test_mistakes_are_usage_errors_without_tracebacks(tmp_path: Path) -> None:
    workspace = tmp_path / "workspace.yaml"
    workspace.write_text(
        f"load_from:\n  - python_file: {{relative_path: {EXAMPLES / 'empty_location.py'}}}\n"
    )
    for args in (
        ("env", "path", "nosuch", "-w", str(workspace)),
        ("env", "build", "nosuch", "-w", str(workspace)),
        ("check", "nosuch", "-w", str(workspace)),
    ):
        out = cli(*args)
        assert out.returncode == 2, (args, out.stderr)
        assert "unknown location 'nosuch'" in out.stderr and "Traceback" not in out.stderr
    missing = cli("up", "-f", str(tmp_path / "nope.py"))
    assert missing.returncode == 2 and "no such file" in missing.stderr
    both = cli("stop", "--all", "empty_location.py", "-w", str(workspace))
    assert both.returncode == 2 and "not both" in both.stderr
    nothing = cli("down", "-w", str(workspace))
    assert nothing.returncode == 0 and "no supervisor is running" in nothing.stdout
    gone = workspace.parent / "gone.yaml"
    gone.write_text(
        f"load_from:\n  - python_module: {{module_name: m, working_directory: {tmp_path}/no}}\n"
    )
    out = cli("check", "-w", str(gone))
    assert (
        out.returncode == 2
        and f"{gone}:2" in out.stderr
        and "no such working_directory" in out.stderr
    )


def test_the_command_list_of_help_is_each_commands_own_words() -> None:
    """`supervisor --help` lists commands from a table, importing none of them: the table
    must say what each command's own help says."""
    from supervisor.cli import COMMANDS, SHORT_HELP
    from supervisor.cli import cli as group

    assert list(SHORT_HELP) == list(COMMANDS)
    for name in COMMANDS:
        command = group.get_command(click.Context(group), name)
        assert command is not None
        assert SHORT_HELP[name] == command.get_short_help_str(10_000), name


def test_help_imports_no_command_module_nor_the_sdk() -> None:
    code = (
        "import sys\n"
        "from supervisor.cli import main\n"
        "sys.argv = ['supervisor', '--help']\n"
        "try:\n    main()\n"
        "except SystemExit:\n    pass\n"
        "heavy = [m for m in sys.modules if m.startswith(('supervisor.commands.',"
        " 'supervisor.sdk', 'supervisor.codeserver', 'grpc', 'yaml'))]\n"
        "print('HEAVY', heavy)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert "HEAVY []" in done.stdout, done.stdout


def test_up_starts_its_servers_before_grpc_loads() -> None:
    """What `up` imports before its first spawn holds nothing of gRPC, protobuf, SQLite or
    the dashboard's aiohttp: those load in a worker thread while the servers start."""
    code = (
        "import sys\n"
        "import supervisor.commands.up, supervisor.supervision.supervisor\n"
        "heavy = [m for m in sys.modules if m.split('.')[0] in"
        " ('grpc', 'google', 'sqlite3', 'aiohttp', 'jinja2', 'cronsim')]\n"
        "print('HEAVY', heavy)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert "HEAVY []" in done.stdout, done.stdout
