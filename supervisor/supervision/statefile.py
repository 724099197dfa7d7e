"""Where a workspace's supervisor keeps its state: the lock, the state file, the socket folder.

The state folder is `.supervisor/` beside the workspace file. Sockets live in a
short private folder (mode 0700) under $XDG_RUNTIME_DIR or the temp folder, named
by a hash of the workspace file's path, so that socket paths stay under 107 bytes.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import signal
import stat
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import psutil

from supervisor.errors import SupervisorError
from supervisor.private import open_private_text, private_dir, write_private

LOCK_FILE = "up.lock"
STATE_FILE = "state.json"


def state_dir_of(workspace_file: Path) -> Path:
    """The state folder of a workspace file (which need not exist: `up -m/-f` has none)."""
    return workspace_file.resolve().parent / ".supervisor"


def socket_dir(workspace_file: Path, create: bool = True) -> Path:
    """Return the private socket folder of a workspace, creating it (mode 0700) if asked."""
    digest = hashlib.sha256(str(workspace_file.resolve()).encode()).hexdigest()[:12]
    base = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    path = Path(base) / f"wsup-{digest}"
    if not create:
        return path
    path.mkdir(mode=0o700, exist_ok=True)
    info = path.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
        raise SupervisorError(f"{path} is not a folder of ours; remove it and try again")
    if stat.S_IMODE(info.st_mode) != 0o700:
        path.chmod(0o700)
    return path


def control_socket(workspace_file: Path) -> Path:
    """Where the control socket of a workspace's `up` is (nothing is created)."""
    return socket_dir(workspace_file, create=False) / "control.sock"


class WorkspaceLock:
    """An exclusive lock on a workspace: one `up` at a time."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / LOCK_FILE
        self._handle: IO[str] | None = None

    def acquire(self, control: Path, workspace_file: Path) -> None:
        """Take the lock or raise SupervisorError naming the running supervisor."""
        private_dir(self.path.parent)
        handle = open_private_text(self.path, "a+")  # held for the supervisor's lifetime
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip()
            handle.close()
            raise SupervisorError(_held_by(owner, workspace_file)) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}, control socket {control}, workspace {workspace_file}\n")
        handle.flush()
        self._handle = handle

    def release(self) -> None:
        if self._handle is not None:
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None


def _held_by(owner: str, workspace_file: Path) -> str:
    """Why the lock is taken: this workspace runs already, or another file of its folder."""
    other = owner.rpartition(", workspace ")[2] if ", workspace " in owner else ""
    if other and Path(other) != workspace_file:
        return (
            f"another supervisor is running {other} ({owner.partition(',')[0]});"
            f" the workspace files of one folder share its state folder"
            f" {workspace_file.parent / '.supervisor'}, so one `up` at a time runs there;"
            f" stop it with `supervisor down -w {other}`"
        )
    return (
        f"another supervisor is running this workspace ({owner or 'pid unknown'});"
        " stop it with `supervisor down`"
    )


def read_owner(state_dir: Path) -> dict[str, Any] | None:
    """Return the state file's contents, or None when there is none or it is unreadable."""
    try:
        data = json.loads((state_dir / STATE_FILE).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_state(state_dir: Path, data: dict[str, Any], status: Sequence[str] = ()) -> None:
    """Write the state file atomically: DATA, and as its "status" the entries STATUS (each
    already JSON text). Compact: written at every change, so it costs no indentation."""
    head = json.dumps({**data, "status": []}, separators=(",", ":"))
    text = f"{head[: -len('[]}')]}[{','.join(status)}]}}\n"
    write_private(private_dir(state_dir) / STATE_FILE, text)


def is_same_process(identity: dict[str, Any]) -> bool:
    """True when IDENTITY's pid still names the process that had its create time."""
    try:
        return bool(psutil.Process(identity["pid"]).create_time() == identity["create_time"])
    except (psutil.Error, KeyError, TypeError):
        return False


def end_leftovers(state_dir: Path, timeout: float = 5.0) -> list[int]:
    """End the code servers a killed supervisor left behind (by pid and create time)."""
    data = read_owner(state_dir)
    if not data:
        return []
    leftovers = []
    for child in data.get("children", []):
        if is_same_process(child):
            with contextlib.suppress(psutil.Error):
                leftovers.append(psutil.Process(child["pid"]))
    for proc in leftovers:
        with contextlib.suppress(psutil.Error, ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
    _, alive = psutil.wait_procs(leftovers, timeout=timeout)
    for proc in alive:
        with contextlib.suppress(psutil.Error, ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    psutil.wait_procs(alive, timeout=timeout)
    return [p.pid for p in leftovers]


# Every process started on behalf of a workspace inherits this variable: the workspace's
# digest and the identity (pid, create time) of the supervisor that started it.
WORKSPACE_TOKEN = "SUPERVISOR_WORKSPACE_TOKEN"


def workspace_digest(workspace_file: Path) -> str:
    return hashlib.sha256(str(workspace_file.resolve()).encode()).hexdigest()[:16]


def mark_environment(workspace_file: Path) -> str:
    """Give this process (and so everything it starts) the workspace's token; return it."""
    me = psutil.Process()
    token = f"{workspace_digest(workspace_file)}:{me.pid}:{me.create_time()}"
    os.environ[WORKSPACE_TOKEN] = token
    return token


def end_strays(workspace_file: Path, timeout: float = 2.0) -> list[int]:
    """End every process that carries this workspace's token from a supervisor that is gone
    (what escaped every other net: a daemon that left its code server's tree, say)."""
    digest = workspace_digest(workspace_file)
    strays = []
    for proc in psutil.process_iter(["environ"]):
        with contextlib.suppress(psutil.Error, TypeError, ValueError):
            token = (proc.info.get("environ") or {}).get(WORKSPACE_TOKEN, "")
            found, _, owner = token.partition(":")
            if found != digest:
                continue
            pid, _, started = owner.partition(":")
            if is_same_process({"pid": int(pid), "create_time": float(started)}):
                continue  # its supervisor lives (a `check` beside us, or ourselves)
            strays.append(proc)
    for proc in strays:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(strays, timeout=timeout)
    return [p.pid for p in strays]
