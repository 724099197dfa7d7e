"""`supervisor up` and the commands that drive it, through the real CLI and real processes."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from supervisor.supervision import statefile
from tests.helpers import EXAMPLES, pid_gone, process_states, wait_for
from tests.uphelp import SUPERVISOR, Up, cli

STARTED = re.compile(r"Started code server for \w+ \S+ on port (\d+) in process (\d+)")
# Above the longest chain of inner waits (three starts of up to 120 s each in the shared
# fixture, reloads of up to 150 s), so that the wait that ran out is what a slow run reports.
pytestmark = pytest.mark.timeout(600)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class RemoteServer:
    """`supervisor api grpc` on a fixed port, as a remote code location."""

    def __init__(self, port: int, log: Path, python_file: Path) -> None:
        self.port = port
        self.log = log
        self.python_file = python_file
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [
                    SUPERVISOR,
                    "api",
                    "grpc",
                    "-f",
                    str(self.python_file),
                    "-p",
                    str(self.port),
                    "--location-name",
                    "far",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        wait_for(
            lambda: STARTED.search(self.log.read_text()),
            30,
            "the remote server",
            self.log.read_text,
        )

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.log.write_text("")


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory, shared_envs_dir: Path):
    root = tmp_path_factory.mktemp("lifecycle")
    far = write(
        root / "far_location.py",
        """
        from supervisor import Definitions, asset

        @asset
        def far_away():
            return 1

        defs = Definitions(assets=[far_away])
    """,
    )
    remote = RemoteServer(free_port(), root / "remote.log", far)
    remote.start()
    workspace = write(
        root / "workspace.yaml",
        f"""
        envs_dir: {shared_envs_dir}
        defaults:
          health: {{interval: 0.2, timeout: 1}}
        load_from:
          - python_module:
              module_name: hello_location
              working_directory: {EXAMPLES}
              location_name: old
              python: "3.8"
          - python_file:
              relative_path: {EXAMPLES / "empty_location.py"}
              location_name: new
              env: {{GREETING: hi}}
          - grpc_server: {{host: 127.0.0.1, port: {remote.port}, location_name: remote}}
    """,
    )
    up = Up(workspace)
    try:
        for name in ("old", "new", "remote"):
            up.wait_state(name, "SERVING", timeout=120)
        yield up, remote, root
    finally:
        up.stop()
        remote.kill()


def test_status_json_shape(running) -> None:
    up, _, _ = running
    out = cli("status", "--json", "-w", str(up.workspace_file))
    assert out.returncode == 0, out.stderr
    rows = {row["name"]: row for row in json.loads(out.stdout)}
    assert list(rows) == ["old", "new", "remote"]
    old = rows["old"]
    assert {"name", "state", "pid", "restarts", "python", "env", "last_error"} <= set(old)
    assert old["state"] == "SERVING" and old["restarts"] == 0 and old["last_error"] is None
    assert old["python"] == "3.8.18"
    assert re.fullmatch(r"[0-9a-f]{16}", old["env"])
    assert isinstance(old["pid"], int) and not pid_gone(old["pid"])
    assert rows["remote"]["env"] is None
    text = cli("status", "-w", str(up.workspace_file)).stdout
    assert text.splitlines()[0].split()[:3] == ["NAME", "STATE", "PID"]


# What `status` runs in a fresh interpreter, then the modules it had loaded by the end.
STATUS_IMPORTS = """
import json, sys
from supervisor.cli import main
sys.argv = ["supervisor", "status", "--json", "-w", sys.argv[1]]
try:
    main()
except SystemExit as exc:
    assert not exc.code, exc.code
print(json.dumps(sorted(sys.modules)))
"""
HEAVY = (
    "grpc",
    "google.protobuf",
    "yaml",
    "aiohttp",
    "jinja2",
    "supervisor.codeserver",
    "supervisor.sdk",
    "supervisor._proto",
    "supervisor._proto_host",
)


def test_status_reads_the_state_file_and_imports_no_grpc(running) -> None:
    up, _, _ = running
    done = subprocess.run(
        [sys.executable, "-c", STATUS_IMPORTS, str(up.workspace_file)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    printed, modules = done.stdout.rsplit("\n[", 1)
    loaded = json.loads("[" + modules)
    assert not [m for m in loaded if m.startswith(HEAVY)], "status imported what it needs not"
    # The same as the control API says, entry for entry.
    by_file = {row["name"]: row for row in json.loads(printed)}
    assert by_file == up.status()


def test_ls_through_the_supervisor(running) -> None:
    up, _, _ = running
    out = cli("ls", "--json", "-w", str(up.workspace_file))
    assert out.returncode == 0, out.stderr
    entries = {e["location"]: e for e in json.loads(out.stdout)}
    assert [a["key"] for a in entries["old"]["assets"]] == ["names", "greetings", "greeting_count"]
    assert [a["key"] for a in entries["new"]["assets"]] == ["empty_data"]
    assert [a["key"] for a in entries["remote"]["assets"]] == ["far_away"]
    one = json.loads(cli("ls", "new", "--json", "-w", str(up.workspace_file)).stdout)
    assert [e["location"] for e in one] == ["new"]


def test_logs_of_a_location(running) -> None:
    up, _, _ = running
    out = cli("logs", "old", "-n", "50", "-w", str(up.workspace_file))
    assert out.returncode == 0, out.stderr
    assert "Started code server for module hello_location" in out.stdout
    assert "STARTING -> SERVING" in out.stdout
    bad = cli("logs", "nope", "-w", str(up.workspace_file))
    assert bad.returncode == 2 and "unknown location 'nope'" in bad.stderr


def test_a_second_up_is_refused(running) -> None:
    up, _, _ = running
    out = cli("up", "-w", str(up.workspace_file), timeout=60)
    assert out.returncode == 1
    assert "another supervisor is running this workspace" in out.stderr
    assert f"pid {up.proc.pid}" in out.stderr
    assert up.proc.poll() is None


def remote_assets(up: Up) -> list[str] | str:
    """The asset keys `ls` shows for the remote location, or its load error."""
    out = cli("ls", "remote", "--json", "-w", str(up.workspace_file), timeout=30)
    (listed,) = json.loads(out.stdout)
    return listed["load_error"] or [a["key"] for a in listed["assets"]]


def test_remote_location_goes_unreachable_and_comes_back(running) -> None:
    up, remote, _ = running
    original = remote.python_file.read_text()
    remote.kill()
    try:
        entry = up.wait_state("remote", "UNREACHABLE", timeout=30)
        unreachable = remote_assets(up)
        remote.python_file.write_text(original.replace("far_away", "farther_away"))
        remote.start()
        up.wait_state("remote", "SERVING", timeout=30)
        changed = remote_assets(up)
    finally:
        # The fixture is shared: leave its remote serving what the other tests expect.
        remote.kill()
        remote.python_file.write_text(original)
        remote.start()
    assert f"127.0.0.1:{remote.port}" in entry["last_error"]
    assert "UNREACHABLE" in unreachable
    assert changed == ["farther_away"]
    wait_for(
        lambda: remote_assets(up) == ["far_away"],
        30,
        "the restored remote to serve far_away again",
        lambda: remote_assets(up),
    )


def test_restart_stop_start(running) -> None:
    up, _, _ = running
    before = up.status()["new"]["pid"]
    out = cli("restart", "new", "-w", str(up.workspace_file))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "new: SERVING"
    assert up.status()["new"]["pid"] not in (None, before)
    wait_for(
        lambda: pid_gone(before),
        15,
        f"the old server {before} to drain and exit",
        lambda: process_states(before),
    )
    assert cli("stop", "new", "-w", str(up.workspace_file)).stdout.strip() == "new: STOPPED"
    assert up.status()["new"]["pid"] is None
    assert cli("start", "new", "-w", str(up.workspace_file)).stdout.strip() == "new: SERVING"
    unknown = cli("restart", "nope", "-w", str(up.workspace_file))
    assert unknown.returncode == 2 and "unknown location 'nope'" in unknown.stderr
    assert cli("restart", "-w", str(up.workspace_file)).returncode == 2


def test_reload_touches_only_what_changed(running) -> None:
    up, _, _ = running
    workspace = up.workspace_file
    before = up.status()
    text = workspace.read_text()
    workspace.write_text(
        text.replace("env: {GREETING: hi}", "env: {GREETING: hello}")
        + f"""  - python_file:
      relative_path: {EXAMPLES / "empty_location.py"}
      location_name: added
"""
    )
    try:
        out = cli("reload", "-w", str(workspace), timeout=150)
        assert out.returncode == 0, out.stderr
        assert "old: unchanged" in out.stdout and "new: changed" in out.stdout
        assert "added: added" in out.stdout
        up.wait_state("added", "SERVING")
        up.wait_state("new", "SERVING")
        after = up.status()
        assert after["old"]["pid"] == before["old"]["pid"], "unchanged locations stay put"
        assert after["new"]["pid"] != before["new"]["pid"]
        # A change whose new version cannot be built leaves the old server serving.
        broken = workspace.read_text().replace(
            "env: {GREETING: hello}",
            'env: {GREETING: hello}\n      requirements: ["six==999.0.0"]',
        )
        workspace.write_text(broken)
        serving = up.status()["new"]["pid"]
        out = cli("reload", "-w", str(workspace), timeout=150)
        assert out.returncode == 1
        assert "new: changed, but the new version failed" in out.stdout
        assert up.status()["new"]["state"] == "SERVING"
        assert up.status()["new"]["pid"] == serving
    finally:
        workspace.write_text(text)
        restored = cli("reload", "-w", str(workspace), timeout=150)
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert "added" not in up.status()
    up.wait_state("new", "SERVING")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_sockets_live_in_a_private_folder(running) -> None:
    up, _, _ = running
    control = statefile.control_socket(up.workspace_file)
    folder = control.parent
    addresses = {name: entry["address"] for name, entry in up.status().items()}
    del addresses["remote"]
    assert sorted(addresses) == ["new", "old"]
    for name, address in addresses.items():
        assert address.startswith("unix:"), f"{name} listens on {address}"
        path = Path(address[len("unix:") :])
        assert path.parent == folder, f"{name}'s socket {path} is not in {folder}"
        assert mode(path) == 0o600, f"{path} has mode {mode(path):o}"
    assert mode(folder) == 0o700, f"{folder} has mode {mode(folder):o}"
    assert mode(control) == 0o600, f"{control} has mode {mode(control):o}"


def test_killed_supervisor_leaves_no_code_server_and_next_up_is_clean(
    tmp_path: Path, shared_envs_dir: Path
) -> None:
    workspace = write(
        tmp_path / "workspace.yaml",
        f"""
        envs_dir: {shared_envs_dir}
        load_from:
          - python_file: {{relative_path: {EXAMPLES / "empty_location.py"}, location_name: a,
                           python: "3.8"}}
          - python_file: {{relative_path: {EXAMPLES / "empty_location.py"}, location_name: b}}
    """,
    )
    up = Up(workspace)
    try:
        pids = [up.wait_state(n, "SERVING", timeout=120)["pid"] for n in ("a", "b")]
        os.kill(up.proc.pid, signal.SIGKILL)
        up.proc.wait(10)
        wait_for(
            lambda: all(pid_gone(p) for p in pids),
            5,
            f"code servers {pids} to exit",
            lambda: process_states(*pids),
        )
    finally:
        up.stop()
    again = Up(workspace)
    try:
        for name in ("a", "b"):
            again.wait_state(name, "SERVING", timeout=60)
        state = statefile.read_owner(workspace.parent / ".supervisor")
        assert state["supervisor_pid"] == again.proc.pid
        assert sorted(c["location"] for c in state["children"]) == ["a", "b"]
    finally:
        code = again.stop()
    assert code == 0, again.log()
    state = statefile.read_owner(workspace.parent / ".supervisor")
    assert state["supervisor_pid"] is None and state["children"] == []


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 0), (signal.SIGINT, 130)])
def test_signals_stop_everything_cleanly(
    tmp_path: Path, shared_envs_dir: Path, signum: int, code: int
) -> None:
    (tmp_path / "envs").symlink_to(shared_envs_dir)
    # No workspace file: `up -f` makes one of the flags, with its state in the current folder.
    up = Up(tmp_path / "workspace.yaml", "-f", str(EXAMPLES / "empty_location.py"), cwd=tmp_path)
    try:
        pid = up.wait_state("empty_location.py", "SERVING", timeout=60)["pid"]
    except BaseException:
        up.stop(signal.SIGKILL)
        raise
    assert up.stop(signum) == code
    assert pid_gone(pid)
    assert "[STOPPED] supervisor stopping" in up.log()
