"""Guarantees a hostile walkthrough broke once: names never lead outside the state folders,
state is private whatever the umask, and a tool's doubled signal is not a second Ctrl-C."""

from __future__ import annotations

import json
import os
import re
import signal
import stat
import subprocess
import textwrap
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from supervisor.errors import SupervisorError, WorkspaceError
from supervisor.safepath import MAX_ENCODED, child_path, encode_name
from supervisor.supervision.supervisor import DUPLICATE_SIGNAL_SECONDS
from supervisor.workspace import load_workspace, workspace_from_targets
from tests.helpers import wait_for
from tests.uphelp import SUPERVISOR, Up, cli

ASSETS = """
from supervisor import Definitions, asset

@asset
def first():
    return [1, 2, 3]

defs = Definitions(assets=[first])
"""


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text))
    return path


# -- names and the paths built from them ---------------------------------------------------


@pytest.mark.parametrize(
    ("name", "complaint"),
    [
        ("../../../../tmp/PWNED", "without '/' or '..'"),
        ("a/b", "without '/' or '..'"),
        ("..", "without '/' or '..'"),
        ("x" * 300, "at most 100 characters"),
        ("tab\there", "printable characters"),
    ],
)
def test_a_location_name_that_could_lead_outside_is_refused_where_it_is_parsed(
    tmp_path: Path, name: str, complaint: str
) -> None:
    (tmp_path / "loc.py").write_text(ASSETS)
    workspace = tmp_path / "workspace.yaml"
    workspace.write_text(
        "load_from:\n"
        "  - python_file:\n"
        "      relative_path: loc.py\n"
        f"      location_name: {name!r}\n".replace("'", '"').replace("\t", "\\t")
    )
    with pytest.raises(WorkspaceError) as info:
        load_workspace(workspace)
    message = str(info.value)
    assert f"{workspace}:4" in message and "location_name" in message, message
    assert complaint in message, message


@given(st.text(min_size=1, max_size=400))
def test_every_name_becomes_one_file_inside_its_folder(name: str) -> None:
    folder = Path("/srv/state/logs")
    encoded = encode_name(name)
    assert "/" not in encoded and "\0" not in encoded
    assert not encoded.startswith(".")
    assert len(encoded) <= MAX_ENCODED
    assert (folder / encoded).parent == folder


@given(st.text(max_size=60), st.text(max_size=60))
def test_different_names_never_share_a_file(a: str, b: str) -> None:
    if a != b and a and b:
        assert encode_name(a) != encode_name(b)


def test_a_symlink_out_of_the_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "evil.log").symlink_to("/tmp/elsewhere.log")
    with pytest.raises(SupervisorError, match="refusing a path outside"):
        child_path(tmp_path / "logs", "evil", ".log")


# -- a real `up`: odd names stay inside, and everything it writes is private ---------------


@pytest.fixture(scope="module")
def private_up(tmp_path_factory: pytest.TempPathFactory, shared_envs_dir: Path):
    root = tmp_path_factory.mktemp("private")
    # A name that starts with a dot would be a hidden file, or "..", if used as it is.
    write(root / ".hidden.py", ASSETS)
    workspace = write(
        root / "workspace.yaml",
        f"""
        envs_dir: {shared_envs_dir}
        load_from:
          - python_file: .hidden.py
        """,
    )
    old = os.umask(0)  # the child inherits it: state must be private whatever the umask
    try:
        up = Up(workspace)
    finally:
        os.umask(old)
    try:
        up.wait_state(".hidden.py", "SERVING", timeout=300)
        yield up, root
    finally:
        up.stop()


def test_paths_from_an_odd_name_stay_in_the_state_folders(private_up) -> None:
    up, root = private_up
    # LOCATION.ASSET, the location's name holding a dot itself (Dagster's file names do).
    out = cli("materialize", ".hidden.py.first", "-w", str(up.workspace_file), timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    state = root / ".supervisor"
    assert (state / "logs" / "%2Ehidden.py.log").is_file()
    assert (state / "values" / "%2Ehidden.py" / "first.pickle").is_file()
    assert not (state / "logs" / ".hidden.py.log").exists()


def test_state_is_private_whatever_the_umask(private_up) -> None:
    up, root = private_up
    state = root / ".supervisor"
    wait_for(lambda: (state / "runs.db").exists(), 30, "the runs database")
    subprocess.run(
        [SUPERVISOR, "materialize", "first", "-w", str(up.workspace_file)],
        capture_output=True,
        timeout=120,
        check=True,
    )
    loose = []
    for path in [state, *state.rglob("*")]:
        if path.is_symlink() or path.is_socket():
            continue
        mode = stat.S_IMODE(path.stat().st_mode)
        wanted = 0o700 if path.is_dir() else 0o600
        if mode != wanted and path.relative_to(state).parts[0] != "runtime":
            loose.append(f"{path.relative_to(root)} {mode:o}")
    assert not loose, "state not private:\n" + "\n".join(loose)


def test_environment_locks_are_private(shared_envs_dir: Path, private_up) -> None:
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in shared_envs_dir.glob(".*/*.lock")}
    assert modes, f"no locks under {shared_envs_dir}"
    assert set(modes.values()) == {0o600}, modes


# -- signals from CI tools -------------------------------------------------------------------


SLOW_TO_STOP = (
    ASSETS
    + """
import atexit, time

# Exits a few seconds after it is told to (the server's own exit timer ends the wait):
# long enough for a second signal to arrive while the supervisor is still stopping it.
atexit.register(time.sleep, 60)
"""
)


@pytest.fixture
def small_workspace(tmp_path: Path, shared_envs_dir: Path) -> Path:
    write(tmp_path / "small.py", SLOW_TO_STOP)
    return write(
        tmp_path / "workspace.yaml",
        f"""
        envs_dir: {shared_envs_dir}
        load_from:
          - python_file: small.py
        """,
    )


def test_a_signal_to_the_process_and_then_its_group_stops_gently(small_workspace: Path) -> None:
    """GNU timeout sends SIGTERM to its child and then to the child's group."""
    up = Up(small_workspace)
    try:
        up.wait_state("small.py", "SERVING", timeout=300)
        up.proc.send_signal(signal.SIGTERM)
        os.killpg(up.proc.pid, signal.SIGTERM)
        assert up.proc.wait(60) == 0, up.log()
    finally:
        up.stop()
    log = up.log(200)
    assert "killing every code server" not in log, log
    location_log = small_workspace.parent / ".supervisor" / "logs" / "small.py.log"
    assert "SERVING -> STOPPING: supervisor stopping" in location_log.read_text()


def test_a_second_ctrl_c_from_a_person_still_kills_at_once(small_workspace: Path) -> None:
    up = Up(small_workspace)
    try:
        up.wait_state("small.py", "SERVING", timeout=300)
        up.proc.send_signal(signal.SIGINT)
        first = time.monotonic()
        # A person's second Ctrl-C comes once the first is under way, and later than the
        # window in which a tool's doubled signal is taken as one.
        wait_for(
            lambda: (
                "Stopping code server" in up.log(200)
                and time.monotonic() - first > 2 * DUPLICATE_SIGNAL_SECONDS
            ),
            30,
            "the first stop to be under way",
            up.log,
        )
        up.proc.send_signal(signal.SIGINT)
        assert up.proc.wait(60) == 130, up.log()
    finally:
        up.stop()
    assert "stopping at once: killing every code server" in up.log(200)


# -- reload reloads code ---------------------------------------------------------------------

TWO_ASSETS = ASSETS.replace(
    "defs = Definitions(assets=[first])",
    "@asset\ndef second(first):\n    return len(first)\n\n"
    "defs = Definitions(assets=[first, second])",
)


def asset_keys(workspace: Path, name: str) -> list[str]:
    out = cli("ls", name, "--json", "-w", str(workspace), timeout=60)
    if out.returncode != 0:
        return []
    return [a["key"] for a in json.loads(out.stdout)[0]["assets"]]


@pytest.mark.parametrize("how", ["reload", "watch"])
def test_changed_code_is_served_after_a_reload(
    tmp_path: Path, shared_envs_dir: Path, how: str
) -> None:
    code = write(tmp_path / "edited.py", ASSETS)
    workspace = write(
        tmp_path / "workspace.yaml",
        f"""
        envs_dir: {shared_envs_dir}
        load_from:
          - python_file: edited.py
        """,
    )
    up = Up(workspace, *(["--watch"] if how == "watch" else []))
    try:
        before = up.wait_state("edited.py", "SERVING", timeout=300)["pid"]
        assert asset_keys(workspace, "edited.py") == ["first"]
        code.write_text(textwrap.dedent(TWO_ASSETS))
        if how == "reload":
            out = cli("reload", "-w", str(workspace), timeout=120)
            assert out.returncode == 0, out.stdout + out.stderr
            assert "code changed: restarted" in out.stdout + out.stderr
        wait_for(
            lambda: asset_keys(workspace, "edited.py") == ["first", "second"],
            60,
            "the new asset to be served",
            lambda: f"{asset_keys(workspace, 'edited.py')}\n{up.log()}",
        )
        after = up.wait_state("edited.py", "SERVING")["pid"]
        assert after != before
    finally:
        up.stop()


def test_up_flags_take_requirements_as_a_workspace_entry_does(tmp_path: Path) -> None:
    (tmp_path / "loc.py").write_text(ASSETS)
    (tmp_path / "reqs.txt").write_text("attrs==23.2.0\n# a comment\nsix==1.16.0\n")
    workspace = workspace_from_targets(
        [], ["loc.py"], None, tmp_path, ["reqs.txt", "pyflakes==3.2.0", "six==1.16.0"]
    )
    assert workspace.locations[0].requirements == (
        "attrs==23.2.0",
        "six==1.16.0",
        "pyflakes==3.2.0",
    )
    with pytest.raises(WorkspaceError, match=r"-r: expected a requirement .*got 'nope=='"):
        workspace_from_targets([], ["loc.py"], None, tmp_path, ["nope=="])
    out = subprocess.run(
        [SUPERVISOR, "up", "-r", "six"], capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert out.returncode == 2 and "-r, -a and -d go with -m/-f" in out.stderr, out.stderr


def complete(words: str, cwd: Path) -> list[str]:
    """What the shell would be offered for the last of WORDS (click's bash protocol)."""
    env = {
        **os.environ,
        "COMP_WORDS": words,
        "COMP_CWORD": str(len(words.split(" ")) - 1),
        "_SUPERVISOR_COMPLETE": "bash_complete",
    }
    out = subprocess.run([SUPERVISOR], capture_output=True, text=True, env=env, cwd=cwd, timeout=60)
    return [line.split(",", 1)[1] for line in out.stdout.splitlines() if "," in line]


def test_shell_completion_offers_location_and_asset_names(private_up) -> None:
    _, root = private_up
    write(
        root / "second.yaml",
        "load_from:\n  - python_file: {relative_path: .hidden.py, location_name: other}\n",
    )
    assert complete("supervisor logs ", root) == [".hidden.py"]
    assert complete("supervisor restart -w second.yaml o", root) == ["other"]
    assert complete("supervisor materialize fi", root) == ["first"]
    assert complete("supervisor materialize .hidden.py.", root) == [".hidden.py.first"]


def test_worker_flags_keep_values_that_look_like_flags() -> None:
    from supervisor._proto import codeserver_pb2 as pb
    from supervisor.codeserver.execution import worker_argv
    from supervisor.codeserver.loader import CodeTarget

    request = pb.MaterializeRequest(selection=["-h", "--upstream"], run_id="--x")
    target = CodeTarget(module_name=None, python_file="/srv/loc.py", working_directory=None)
    argv = worker_argv(request, target, "--run", "/srv/values", 7)
    assert "--run-id=--run" in argv
    assert argv.count("--selection=-h") == 1 and "--selection=--upstream" in argv
    assert "--upstream" not in argv  # the request did not ask for upstream runs


# -- build progress, on a terminal only ------------------------------------------------------


def run_on_a_terminal(argv: list[str], cwd: Path, timeout: float) -> tuple[int, str]:
    """Run ARGV with a pseudo-terminal as its stderr (stdout too); its code and output."""
    import pty
    import select

    master, slave = pty.openpty()
    proc = subprocess.Popen(argv, stdout=slave, stderr=slave, stdin=subprocess.DEVNULL, cwd=cwd)
    os.close(slave)
    chunks = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # the other end closed: the process is gone
                    break
                if not data:
                    break
                chunks.append(data)
            elif proc.poll() is not None:
                break
        code = proc.wait(max(deadline - time.monotonic(), 1))
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return code, b"".join(chunks).decode(errors="replace")


@pytest.mark.timeout(300)
def test_a_build_shows_its_progress_on_a_terminal_and_not_in_a_pipe(tmp_path: Path) -> None:
    (tmp_path / "loc.py").write_text(ASSETS)
    for name in ("tty", "pipe"):
        write(
            tmp_path / f"{name}.yaml",
            f"""
            envs_dir: envs-{name}
            load_from:
              - python_file: {{relative_path: loc.py, requirements: [six==1.16.0]}}
            """,
        )
    code, shown = run_on_a_terminal(
        [SUPERVISOR, "env", "build", "-w", "tty.yaml"], tmp_path, timeout=240
    )
    assert code == 0, shown
    assert re.search(r"py3\S+: Resolved \d+ packages", shown), shown
    assert re.search(r"py3\S+: Installed \d+ packages", shown), shown
    piped = cli("env", "build", "-w", "pipe.yaml", timeout=240, cwd=tmp_path)
    assert piped.returncode == 0, piped.stderr
    assert "Resolved" not in piped.stderr + piped.stdout
    assert "built py3" in piped.stderr


def test_the_ticker_tells_how_long_a_build_has_run() -> None:
    from supervisor.envs.build import _Ticker

    heard: list[str] = []
    ticker = _Ticker("py3.11-abc", heard.append)
    try:
        wait_for(lambda: heard, 10, "the first tick")
    finally:
        ticker.stop()
    assert re.fullmatch(r"building py3\.11-abc: \d+s", heard[0]), heard


# -- failures that used to leave things stuck, and small things a user trips on ---------------


@pytest.mark.parametrize("envs_dir", ["afile", "/proc/nope"])
def test_an_unusable_envs_dir_is_refused_before_anything_starts(
    tmp_path: Path, envs_dir: str
) -> None:
    (tmp_path / "afile").write_text("not a folder")
    (tmp_path / "loc.py").write_text(ASSETS)
    write(
        tmp_path / "workspace.yaml", f"envs_dir: {envs_dir}\nload_from:\n  - python_file: loc.py\n"
    )
    for command in (["up"], ["check"], ["env", "build"]):
        out = cli(*command, "-w", "workspace.yaml", timeout=60, cwd=tmp_path)
        assert out.returncode == 2, (command, out.stdout, out.stderr)
        assert f"{tmp_path / 'workspace.yaml'}:1 envs_dir: cannot hold environments" in out.stderr
        assert "Traceback" not in out.stderr


@pytest.mark.timeout(300)
def test_a_requirement_that_does_not_resolve_names_its_workspace_line(
    tmp_path: Path, shared_envs_dir: Path
) -> None:
    (tmp_path / "loc.py").write_text(ASSETS)
    write(
        tmp_path / "workspace.yaml",
        f"""
        envs_dir: {shared_envs_dir}
        load_from:
          - python_file: {{relative_path: loc.py, requirements: [no-such-dist-wsup-test==9.9]}}
        """,
    )
    out = cli("check", "--json", "-w", "workspace.yaml", timeout=240, cwd=tmp_path)
    assert out.returncode == 1, out.stderr
    stable = next(r for r in json.loads(out.stdout) if r["check"] == "stable")
    assert stable["detail"].startswith(f"{tmp_path / 'workspace.yaml'}:4: environment of"), stable
    assert "no-such-dist-wsup-test" in stable["detail"] and "  | " in stable["detail"], stable


@pytest.mark.timeout(300)
def test_a_start_that_hangs_backs_off_and_status_says_when_next(
    tmp_path: Path, shared_envs_dir: Path
) -> None:
    """A start that runs into its deadline took longer than stable_after (as 60 s does against
    the default 10 s): it must not count as a stable run that resets the back-off."""
    from tests.helpers import FIXTURES

    workspace = write(
        tmp_path / "workspace.yaml",
        f"""
        envs_dir: {shared_envs_dir}
        load_from:
          - python_file: {{relative_path: {FIXTURES}/faults/hang_on_import.py,
                           location_name: stuck, startup_timeout: 1,
                           restart: {{backoff_initial: 2, backoff_max: 4, stable_after: 0.5}}}}
        """,
    )
    up = Up(workspace)
    try:
        entry = up.wait(
            "stuck",
            lambda e: e["state"] == "BACKOFF" and e["restarts"] >= 2,
            120,
            "a second restart, after a back-off",
        )
        assert entry["next_attempt"] is not None, entry
        assert "restart 2 in 2.0s (back-off)" in entry["last_error"], entry
        table = subprocess.run(
            [SUPERVISOR, "status", "-w", str(workspace)], capture_output=True, text=True, timeout=60
        )
        assert "next start in" in table.stdout or "STARTING" in table.stdout, table.stdout
    finally:
        up.stop()


def test_two_workspace_files_of_one_folder_say_they_share_its_state(private_up) -> None:
    up, root = private_up
    other = write(root / "other.yaml", "load_from:\n  - python_file: .hidden.py\n")
    out = subprocess.run(
        [SUPERVISOR, "up", "-w", str(other)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 1, out.stderr
    assert f"another supervisor is running {up.workspace_file}" in out.stderr
    assert "share its state folder" in out.stderr
    assert f"supervisor down -w {up.workspace_file}" in out.stderr


def test_runs_status_takes_the_event_names_people_see(private_up) -> None:
    up, _ = private_up
    subprocess.run(
        [SUPERVISOR, "materialize", "first", "-w", str(up.workspace_file)],
        capture_output=True,
        timeout=120,
        check=True,
    )
    listed = {}
    for status in ("SUCCESS", "RUN_SUCCESS", "run_success"):
        out = cli("runs", "--status", status, "--json", "-w", str(up.workspace_file), timeout=60)
        assert out.returncode == 0, out.stderr
        listed[status] = [r["id"] for r in json.loads(out.stdout)]
    assert listed["SUCCESS"] and listed["SUCCESS"] == listed["RUN_SUCCESS"] == listed["run_success"]
