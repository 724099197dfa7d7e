"""A run worker started ahead of its run: interpreter up, the location's code imported,
waiting on a pipe for the one run it will ever do.

The code server keeps one waiting (`--warm-workers 1`, the default): a run takes it, and
another is started in the background. A worker is never reused: it does its run and exits.
A waiting worker is not used when the location's own source files changed since it was
started (it imported the old code); the run then gets a fresh worker, as without one.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import sysconfig
import threading
import time
from typing import Tuple

import supervisor

# After the server serves, at least this long before the first waiting worker starts, and
# then only once the machine is quiet (the starts of this location's siblings go first),
# but at the latest after QUIET_WAIT_SECONDS.
FIRST_DELAY_SECONDS = 1.0
QUIET_CHECK_SECONDS = 0.25
QUIET_WAIT_SECONDS = 60.0
STOP_GRACE_SECONDS = 1.0
Fingerprint = Tuple[Tuple[str, int], ...]


_roots: list[str] = []


def _library_roots() -> list[str]:
    if _roots:
        return _roots
    paths = sysconfig.get_paths()
    roots = {paths[key] for key in ("stdlib", "platstdlib", "purelib", "platlib") if key in paths}
    runtime = os.path.dirname(os.path.abspath(supervisor.__file__))
    _roots.extend(sorted(os.path.realpath(root) + os.sep for root in roots | {runtime}))
    return _roots


_user_files: tuple[int, list[str]] = (-1, [])


def user_code_files() -> list[str]:
    """Each imported module file outside the standard library, the installed distributions
    and our runtime: the location's own code. Kept while no module is imported anew."""
    global _user_files
    if _user_files[0] != len(sys.modules):
        roots = _library_roots()  # may import (sysconfig's data): before the count
        files = set()
        for module in list(sys.modules.values()):
            path = getattr(module, "__file__", None)
            if path:
                real = os.path.realpath(path)
                if not any(real.startswith(root) for root in roots):
                    files.add(real)
        _user_files = (len(sys.modules), sorted(files))
    return _user_files[1]


def user_code_fingerprint() -> Fingerprint:
    """The location's own code files with their modification times."""
    found = []
    for path in user_code_files():
        try:
            found.append((path, os.stat(path).st_mtime_ns))
        except OSError:
            found.append((path, -1))
    return tuple(found)


def machine_is_quiet() -> bool:
    """Whether at most half the processors have something to run (besides this thread), from
    /proc/loadavg's count of runnable tasks; True where that cannot be read."""
    try:
        with open("/proc/loadavg") as handle:
            runnable = int(handle.read().split()[3].split("/")[0])
    except (OSError, ValueError, IndexError):
        return True
    return runnable - 1 <= max(1, (os.cpu_count() or 1) // 2)


class WarmWorker:
    """One waiting worker: its process, the pipe it reads its job from, the pipe it
    reports on, and the code it imported (as the server saw it when it started)."""

    def __init__(
        self, process: subprocess.Popen, job_fd: int, events_fd: int, code: Fingerprint
    ) -> None:
        self.process = process
        self.job_fd = job_fd
        self.events_fd = events_fd
        self.code = code

    def hand(self, job: dict[str, object]) -> None:
        """Give the worker its run; OSError when it is gone."""
        data = (json.dumps(job) + "\n").encode()
        try:
            os.write(self.job_fd, data)
        finally:
            os.close(self.job_fd)

    def discard(self) -> None:
        """End it unused: a closed job pipe tells it to exit; a kill if it does not."""
        with contextlib.suppress(OSError):
            os.close(self.job_fd)
        with contextlib.suppress(OSError):
            os.close(self.events_fd)
        try:
            self.process.wait(STOP_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


class WarmPool:
    """At most one waiting worker, started in the background."""

    def __init__(self, argv: list[str], size: int = 1) -> None:
        self._argv = argv  # the worker's command line without its pipes
        self._size = size
        self._lock = threading.Lock()
        self._waiting: WarmWorker | None = None
        self._closed = False

    def start(self, delay: float = FIRST_DELAY_SECONDS) -> None:
        if self._size > 0:
            threading.Thread(target=self._first, args=(delay,), daemon=True).start()

    def _first(self, delay: float) -> None:
        time.sleep(delay)
        deadline = time.monotonic() + QUIET_WAIT_SECONDS
        while not machine_is_quiet() and time.monotonic() < deadline and not self._closed:
            # Spread over time: many servers started together all wait for the same quiet.
            time.sleep(QUIET_CHECK_SECONDS * (1 + random.random()))
        self._refill()

    def take(self) -> WarmWorker | None:
        """The waiting worker, if it is alive and imported the code as it is now; another
        starts in the background either way."""
        with self._lock:
            worker, self._waiting = self._waiting, None
        if worker is not None and (
            worker.process.poll() is not None or worker.code != user_code_fingerprint()
        ):
            threading.Thread(target=worker.discard, daemon=True).start()
            worker = None
        if self._size > 0 and not self._closed:
            threading.Thread(target=self._refill, daemon=True).start()
        return worker

    def _refill(self) -> None:
        with self._lock:
            if self._closed or self._waiting is not None:
                return
            try:
                self._waiting = self._spawn()
            except (OSError, ValueError):
                self._waiting = None  # the run gets a fresh worker, as without one

    def _spawn(self) -> WarmWorker:
        job_read, job_write = os.pipe()
        events_read, events_write = os.pipe()
        argv = [*self._argv, "--job-fd=" + str(job_read), "--events-fd=" + str(events_write)]
        try:
            process = subprocess.Popen(
                argv,
                pass_fds=(job_read, events_write),
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        except BaseException:
            for fd in (job_write, events_read):
                os.close(fd)
            raise
        finally:
            os.close(job_read)
            os.close(events_write)
        return WarmWorker(process, job_write, events_read, user_code_fingerprint())

    def close(self) -> None:
        with self._lock:
            self._closed = True
            worker, self._waiting = self._waiting, None
        if worker is not None:
            worker.discard()
