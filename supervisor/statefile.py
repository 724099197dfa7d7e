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
import stat
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import psutil

from supervisor.errors import SupervisorError

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


@dataclass
class Owner:
    """The process that holds a workspace's lock."""

    pid: int
    started_at: float
    control_socket: str


class WorkspaceLock:
    """An exclusive lock on a workspace: one `up` at a time."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / LOCK_FILE
        self._handle: IO[str] | None = None

    def acquire(self, control: Path) -> None:
        """Take the lock or raise SupervisorError naming the running supervisor."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+")  # noqa: SIM115 - held for the supervisor's lifetime
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip()
            handle.close()
            raise SupervisorError(
                f"another supervisor is running this workspace ({owner or 'pid unknown'});"
                " stop it with `supervisor down`"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}, control socket {control}\n")
        handle.flush()
        self._handle = handle

    def release(self) -> None:
        if self._handle is not None:
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None


def read_owner(state_dir: Path) -> dict[str, Any] | None:
    """Return the state file's contents, or None when there is none or it is unreadable."""
    try:
        return json.loads((state_dir / STATE_FILE).read_text())
    except (OSError, ValueError):
        return None


def write_state(state_dir: Path, data: dict[str, Any]) -> None:
    """Write the state file atomically."""
    state_dir.mkdir(parents=True, exist_ok=True)
    temp = state_dir / f".{STATE_FILE}.{os.getpid()}"
    temp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(temp, state_dir / STATE_FILE)


def process_identity(pid: int) -> dict[str, Any]:
    """Return pid and create time: together they name one process, never a reused pid."""
    return {"pid": pid, "create_time": psutil.Process(pid).create_time()}


def is_same_process(identity: dict[str, Any]) -> bool:
    try:
        return psutil.Process(identity["pid"]).create_time() == identity["create_time"]
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
            os.killpg(proc.pid, 15)
    _, alive = psutil.wait_procs(leftovers, timeout=timeout)
    for proc in alive:
        with contextlib.suppress(psutil.Error, ProcessLookupError):
            os.killpg(proc.pid, 9)
    psutil.wait_procs(alive, timeout=timeout)
    return [p.pid for p in leftovers]


def now_iso(at: float | None = None) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at if at is not None else time.time()))
