"""The `dagster:` block, the instance and workspace file written for Dagster, the version rule,
and the pass-through's wait for a server that is coming: no Dagster needed."""

from __future__ import annotations

import asyncio
import os
import textwrap
from pathlib import Path

import grpc
import pytest
import yaml

from supervisor.dagsterui.compat import compatibility
from supervisor.dagsterui.instance import (
    dagster_home,
    ensure_instance,
    workspace_file,
    write_workspace_file,
)
from supervisor.errors import WorkspaceError
from supervisor.supervision.passthrough import PassThrough
from supervisor.workspace import WorkspaceSpec, load_workspace
from supervisor.workspace.specs import DagsterSpec
from tests.uphelp import Up, cli

ENTRY = "load_from:\n  - python_file: repo.py\n"


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    return tmp_path


def load(folder: Path, text: str) -> WorkspaceSpec:
    (folder / "workspace.yaml").write_text(textwrap.dedent(text))
    return load_workspace("workspace.yaml")


def problems(folder: Path, text: str) -> list[str]:
    with pytest.raises(WorkspaceError) as caught:
        load(folder, text)
    assert caught.value.exit_code == 2
    return caught.value.problems


def test_without_a_block_both_run_on_the_default_address(folder: Path) -> None:
    spec = load(folder, ENTRY).dagster
    assert spec == DagsterSpec(line=0)
    assert spec.enabled and spec.webserver and spec.daemon
    assert (spec.host, spec.port) == ("127.0.0.1", 3000)
    assert spec.requirements == ("dagster-webserver",)


def test_false_runs_neither(folder: Path) -> None:
    spec = load(folder, "dagster: false\n" + ENTRY).dagster
    assert not spec.enabled and not spec.webserver and not spec.daemon


def test_every_key(folder: Path) -> None:
    spec = load(
        folder,
        textwrap.dedent(
            """
        dagster:
          webserver: {host: localhost, port: 0}
          daemon: false
          version: "1.13.28"
          python: "3.11"
        """
        )
        + ENTRY,
    ).dagster
    assert (spec.host, spec.port, spec.daemon, spec.python) == ("localhost", 0, False, "3.11")
    assert spec.requirements == ("dagster-webserver", "dagster==1.13.28")
    spec = load(folder, 'dagster: {version: ">=1.12,<1.14", webserver: false}\n' + ENTRY).dagster
    assert spec.version == ">=1.12,<1.14" and not spec.webserver and spec.daemon


def test_every_problem_is_named_with_its_line_and_key(folder: Path) -> None:
    found = problems(
        folder,
        textwrap.dedent(
            """
        dagster:
          webserver: {port: 70000, hots: x}
          daemon: maybe
          version: 1.10
          verison: "1.13"
        """
        )
        + ENTRY,
    )
    assert found == [
        "workspace.yaml:3 dagster.webserver.port: expected a port from 1 to 65535, or 0 for"
        " a free one (default 3000); got 70000",
        "workspace.yaml:3 dagster.webserver.hots: unknown key; did you mean 'host'?",
        "workspace.yaml:4 dagster.daemon: expected true or false; got 'maybe'",
        'workspace.yaml:5 dagster.version: expected a dagster version in quotes ("1.13.28")'
        ' or a specifier (">=1.13,<1.14"); got 1.1',
        "workspace.yaml:6 dagster.verison: unknown key; did you mean 'version'?",
    ]
    assert problems(folder, 'dagster: {version: "one"}\n' + ENTRY) == [
        'workspace.yaml:1 dagster.version: expected a dagster version in quotes ("1.13.28")'
        " or a specifier (\">=1.13,<1.14\"); got 'one'"
    ]


def test_a_webserver_beyond_loopback_is_warned_about(folder: Path) -> None:
    spec = load(folder, "dagster: {webserver: {host: 0.0.0.0}}\n" + ENTRY)
    assert any("dagster.webserver.host" in w and "asks no password" in w for w in spec.warnings)
    assert not load(folder, "dagster: {webserver: {host: 127.0.0.1}}\n" + ENTRY).warnings


def test_a_webserver_at_least_as_new_as_the_location_works() -> None:
    assert compatibility("1.13.29", "1.13.28") is None  # patch levels do not matter
    assert compatibility("1.12.3", "1.13.28") is None
    newer = compatibility("1.13.1", "1.12.9")
    assert newer is not None and "newer than the webserver's 1.12.9" in newer
    assert '"1.13.*"' in newer
    other = compatibility("2.0.0", "1.13.0")
    assert other is not None and "different major versions" in other
    assert compatibility("", "1.13.0") is None  # not known yet


def test_the_instance_is_written_once_and_a_users_file_is_kept(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    workspace = load(folder, ENTRY)
    home = ensure_instance(workspace)
    assert home == folder / ".supervisor" / "dagster" == dagster_home(workspace)
    config = yaml.safe_load((home / "dagster.yaml").read_text())
    assert config["storage"] == {"sqlite": {"base_dir": str(home)}}
    assert config["run_coordinator"]["class"] == "QueuedRunCoordinator"
    assert oct(home.stat().st_mode & 0o777) == "0o700"
    (home / "dagster.yaml").write_text("# mine\n")
    ensure_instance(workspace)
    assert (home / "dagster.yaml").read_text() == "# mine\n"
    monkeypatch.setenv("DAGSTER_HOME", str(folder / "elsewhere"))
    assert ensure_instance(workspace) == folder / "elsewhere"
    assert (folder / "elsewhere" / "dagster.yaml").is_file()


def test_the_workspace_file_dagster_reads(folder: Path) -> None:
    workspace = load(folder, ENTRY)
    path = write_workspace_file(workspace, [("a", "/run/a.sock"), ("b", "/run/b.sock")])
    assert path == workspace_file(workspace)
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert yaml.safe_load(path.read_text()) == {
        "load_from": [
            {"grpc_server": {"socket": "/run/a.sock", "location_name": "a"}},
            {"grpc_server": {"socket": "/run/b.sock", "location_name": "b"}},
        ]
    }


def test_dagster_workspace_before_up_says_what_writes_it(folder: Path) -> None:
    (folder / "workspace.yaml").write_text(ENTRY)
    done = cli("dagster", "workspace", "-w", str(folder / "workspace.yaml"))
    assert done.returncode == 1, done
    assert "does not exist yet: `supervisor up -w" in done.stderr, done.stderr
    bad = cli("up", "-w", str(folder / "workspace.yaml"), "--dagster-port", "70000")
    assert bad.returncode == 2 and "--dagster-port" in bad.stderr, bad.stderr


def test_a_location_named_like_the_webserver_keeps_the_ui_off(folder: Path) -> None:
    workspace = folder / "workspace.yaml"
    workspace.write_text(
        "load_from:\n"
        "  - grpc_server: {host: 127.0.0.1, port: 1, location_name: dagster-webserver}\n"
    )
    up = Up(workspace)
    try:
        up.wait_state("dagster-webserver", "UNREACHABLE", timeout=60)
        assert "Dagster's webserver and daemon do not run: location name 'dagster-webserver'" in (
            up.log()
        ), up.log()
    finally:
        up.stop()


def test_a_call_waits_at_the_stable_address_for_a_server_that_is_coming(tmp_path: Path) -> None:
    async def scenario() -> bytes:
        backend = grpc.aio.server()
        echo = grpc.unary_unary_rpc_method_handler(lambda request, _context: b"pong:" + request)
        backend.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler("test.Echo", {"Ping": echo}),)
        )
        backend_socket = tmp_path / "backend.sock"
        backend.add_insecure_port(f"unix:{backend_socket}")
        await backend.start()
        current: list[grpc.aio.Channel] = []
        front = PassThrough(
            tmp_path / "front.sock", lambda: current[0] if current else None, lambda: True
        )
        await front.start()
        assert oct(os.stat(tmp_path / "front.sock").st_mode & 0o777) == "0o600"
        client = grpc.aio.insecure_channel(front.address)
        try:
            call = asyncio.ensure_future(client.unary_unary("/test.Echo/Ping")(b"x", timeout=10))
            # The call is held, not failed, while none serves.
            done, _ = await asyncio.wait({call}, timeout=0.3)
            assert not done, call
            current.append(grpc.aio.insecure_channel(f"unix:{backend_socket}"))
            front.notify()
            return await call
        finally:
            await client.close()
            await front.stop()
            await backend.stop(0)

    assert asyncio.run(scenario()) == b"pong:x"
