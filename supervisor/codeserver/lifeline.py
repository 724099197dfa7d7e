"""Keep a code server from outliving whoever started it.

Two mechanisms: on Linux the kernel sends SIGTERM when the parent dies (the
parent-death signal), and everywhere a heartbeat watchdog stops the server when
no Heartbeat call came for a while. A supervised server checks that its parent
is really gone (pid and start time) before it stops on a missed heartbeat, and a
stall of its own (user code holding the GIL, a stopped process) restarts the
clock instead of counting against the parent.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
import time
from typing import Callable

log = logging.getLogger("supervisor.codeserver")

_PR_SET_PDEATHSIG = 1


def process_start_time(pid: int) -> str | None:
    """Return the kernel's start time of a process, or None when it does not exist."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            stat = handle.read()
    except OSError:
        if sys.platform.startswith("linux"):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        return "alive"
    # The command name may hold spaces and parentheses: fields follow the last ")".
    return stat.rsplit(")", 1)[1].split()[19]


class Parent:
    """The process that started this server, identified by pid and start time."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.start_time = process_start_time(pid)

    def is_alive(self) -> bool:
        """True while the same parent process still runs and is still our parent."""
        if os.getppid() != self.pid:
            return False
        return self.start_time is not None and process_start_time(self.pid) == self.start_time


def ask_for_parent_death_signal(parent: Parent) -> bool:
    """Ask the kernel for SIGTERM when the parent dies; False if it already has."""
    if sys.platform.startswith("linux"):
        import ctypes  # only here: a few ms off every start elsewhere

        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
        except (OSError, AttributeError):  # pragma: no cover - exotic libc
            log.warning("parent-death signal unavailable; relying on the heartbeat")
    # The parent may have died before the request took effect.
    return parent.is_alive()


class HeartbeatWatchdog:
    """Calls on_timeout once no beat came for `timeout` seconds (and the parent is gone)."""

    def __init__(
        self,
        timeout: float,
        on_timeout: Callable[[str], None],
        parent: Parent | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.timeout = timeout
        self.tick = max(0.05, min(timeout / 4.0, 0.5))
        self._on_timeout = on_timeout
        self._parent = parent
        self._clock = clock
        self._last_beat = clock()
        self._lock = threading.Lock()
        self._stopped = threading.Event()

    def beat(self) -> None:
        """Record a Heartbeat call."""
        with self._lock:
            self._last_beat = self._clock()

    def stop(self) -> None:
        self._stopped.set()

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self._run, name="heartbeat-watchdog", daemon=True)
        thread.start()
        return thread

    def check(self, now: float, previous_tick: float) -> str | None:
        """Return why the server should stop at `now`, or None. Pure, for tests."""
        if self._parent is not None and not self._parent.is_alive():
            return f"parent process {self._parent.pid} is gone"
        with self._lock:
            if now - previous_tick > self.tick + max(1.0, self.timeout / 2.0):
                # We did not run for a long while ourselves: our stall, not a silent parent.
                self._last_beat = now
                return None
            silent = now - self._last_beat
            if silent <= self.timeout:
                return None
            if self._parent is not None:
                # A live parent that missed beats is busy, not gone.
                self._last_beat = now
                return None
        return f"no heartbeat for {silent:.1f}s (timeout {self.timeout}s)"

    def _run(self) -> None:
        previous = self._clock()
        while not self._stopped.wait(self.tick):
            now = self._clock()
            reason = self.check(now, previous)
            previous = now
            if reason is not None:
                self._on_timeout(reason)
                return


_PR_SET_CHILD_SUBREAPER = 36
# How long descendants get to end on SIGTERM before SIGKILL, when the server stops.
DESCENDANTS_GRACE_SECONDS = 0.5


def become_subreaper() -> bool:
    """Adopt our orphaned descendants (Linux): a daemon that user code double-forks out of
    our tree stays ours to end. False where the kernel offers no such thing."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes  # only here, as for the parent-death signal

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):  # pragma: no cover - exotic libc
        return False


def children_of(pid: int) -> list[int]:
    """The pids whose parent is PID (Linux /proc; [] where there is none)."""
    found = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[1] == str(pid) and fields[0] != "Z":
            found.append(int(entry))
    return found


def end_descendants(grace: float = DESCENDANTS_GRACE_SECONDS) -> int:
    """End every process below this one: SIGTERM, then SIGKILL after GRACE seconds. As a
    subreaper we inherit the orphans of what we end, so this repeats until none is left.
    Returns how many were signalled."""
    me = os.getpid()
    ended = set()
    deadline = time.monotonic() + grace
    signum = signal.SIGTERM
    while True:
        children = children_of(me)
        if not children:
            return len(ended)
        for pid in children:
            with contextlib.suppress(OSError):
                os.kill(pid, signum)
            ended.add(pid)
        # Ended ones stay zombies under us (children_of skips them) until we exit: reaping
        # them here could take a run worker's exit status from the code that waits for it.
        if time.monotonic() >= deadline:
            signum = signal.SIGKILL
        time.sleep(0.02)
