"""Runs on the code server's side: spawn a worker per run, relay its events, cancel it.

The worker reports on a pipe; when it dies without a last word (os._exit, a
segfault, a kill), the server writes the failure itself, so every run ends with
RUN_SUCCESS, RUN_FAILURE or RUN_CANCELED.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from typing import Any, Iterator

import supervisor
from supervisor._proto import codeserver_pb2 as pb
from supervisor.codeserver.loader import CodeTarget
from supervisor.codeserver.warm import WarmPool

# argv[1] is the folder our runtime was imported from: already on sys.path in a built
# environment, and put first for a user's interpreter, where only a private copy has it.
WORKER_BOOTSTRAP = (
    "import sys; runtime = sys.argv.pop(1); del sys.path[0]\n"
    "if runtime not in sys.path: sys.path.insert(0, runtime)\n"
    "from supervisor.codeserver.worker import main; sys.exit(main())"
)
TERMINAL = ("RUN_SUCCESS", "RUN_FAILURE", "RUN_CANCELED")
CANCEL_GRACE_SECONDS = 2.0


def describe_exit(returncode: int | None) -> str:
    if returncode is None:
        return "still running"
    if returncode < 0:
        try:
            return "killed by " + signal.Signals(-returncode).name
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit code {returncode}"


class Run:
    """One run in progress: its worker and whether it was cancelled."""

    def __init__(self, run_id: str, worker: subprocess.Popen[bytes]) -> None:
        self.run_id = run_id
        self.worker = worker
        self.canceled = False
        self.failure = ""  # set when the run is ended as a failure, not a cancellation

    def cancel(self, failure: str = "") -> None:
        """Stop the worker's whole group: SIGTERM, then SIGKILL after a grace period.

        With FAILURE, the run is recorded as failed for that reason (a drain deadline).
        """
        self.canceled = True
        self.failure = self.failure or failure
        _signal_group(self.worker.pid, signal.SIGTERM)
        try:
            self.worker.wait(CANCEL_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            _signal_group(self.worker.pid, signal.SIGKILL)


def _signal_group(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signum)


class RunRegistry:
    """The runs in progress on this server, by id."""

    def __init__(self) -> None:
        self._runs: dict[str, Run] = {}
        # One condition guards the runs and tells a drain the moment the last one ends.
        self._lock = threading.Condition()

    def add(self, run: Run) -> None:
        with self._lock:
            self._runs[run.run_id] = run

    def remove(self, run_id: str) -> None:
        with self._lock:
            self._runs.pop(run_id, None)
            if not self._runs:
                self._lock.notify_all()

    def wait_idle(self, deadline: float) -> bool:
        """Wait until no run is in progress or the monotonic DEADLINE passes; True when idle."""
        with self._lock:
            return self._lock.wait_for(
                lambda: not self._runs, timeout=max(0.0, deadline - time.monotonic())
            )

    def cancel(self, run_id: str, failure: str = "") -> bool:
        with self._lock:
            run = self._runs.get(run_id)
        if run is None:
            return False
        run.cancel(failure)
        return True

    def cancel_all(self, failure: str) -> int:
        """End every run in progress as failed for FAILURE; return how many there were."""
        with self._lock:
            runs = list(self._runs.values())
        for run in runs:
            run.cancel(failure)
        return len(runs)

    def active(self) -> list[str]:
        with self._lock:
            return list(self._runs)


def make_event(run_id: str, data: dict[str, Any], pid: int) -> pb.RunEvent:
    """The protocol message of one event the worker reported as decoded JSON (DATA)."""
    event = pb.RunEvent(
        run_id=run_id,
        type=pb.EventType.Value(str(data["type"])),
        time=float(data.get("time") or time.time()),
        step=str(data.get("step") or ""),
        message=str(data.get("message") or ""),
        error=str(data.get("error") or ""),
        traceback=str(data.get("traceback") or ""),
        pid=pid,
        level=str(data.get("level") or ""),
    )
    for key, text in dict(data.get("metadata") or {}).items():
        event.metadata.add(key=str(key), text=str(text))
    return event


def log_event(location: str, event: pb.RunEvent) -> None:
    """Print the event on our own output, in the form code-location users know."""
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(event.time))
    sys.stderr.write(
        "{} - {} - {} - {} - {} - {} - {}\n".format(
            stamp,
            location,
            event.run_id,
            event.pid,
            event.step or "-",
            pb.EventType.Name(event.type),
            event.message + (": " + event.error if event.error else ""),
        )
    )
    sys.stderr.flush()


def base_argv(target: CodeTarget) -> list[str]:
    """The command line of a worker of TARGET, before what its run and pipes add."""
    runtime = os.path.dirname(os.path.dirname(os.path.abspath(supervisor.__file__)))
    argv = [sys.executable, "-c", WORKER_BOOTSTRAP, runtime]
    argv += ["--parent-pid=" + str(os.getpid())]
    # --flag=VALUE throughout: a run id or an asset key that starts with "-" is a value.
    for flag, value in (
        ("--module-name", target.module_name),
        ("--python-file", target.python_file),
        ("--working-directory", target.working_directory),
        ("--attribute", target.attribute),
    ):
        if value:
            argv.append(flag + "=" + value)
    if target.autoload:
        argv.append("--autoload")
    return argv


def worker_argv(
    request: pb.MaterializeRequest, target: CodeTarget, run_id: str, values_dir: str, fd: int
) -> list[str]:
    """The command line of a fresh worker that runs REQUEST and reports on pipe FD."""
    argv = [*base_argv(target), "--run-id=" + run_id, "--events-fd=" + str(fd)]
    argv.append("--values-dir=" + (request.values_dir or values_dir))
    for key in request.selection:
        argv.append("--selection=" + key)
    if request.upstream:
        argv.append("--upstream")
    return argv


def materialize(
    request: pb.MaterializeRequest,
    target: CodeTarget,
    location: str,
    values_dir: str,
    registry: RunRegistry,
    pool: WarmPool | None = None,
) -> Iterator[pb.RunEvent]:
    """Run the selection in a worker (the waiting one of POOL, or a fresh one) and yield
    its events as they come."""
    run_id = request.run_id or uuid.uuid4().hex
    pid = os.getpid()
    start = pb.RunEvent(
        run_id=run_id,
        type=pb.RUN_START,
        time=time.time(),
        pid=pid,
        message="Started execution of run for " + ", ".join(request.selection),
    )
    log_event(location, start)
    yield start
    try:
        worker, read_fd = _worker(request, target, run_id, values_dir, pool)
    except (OSError, ValueError) as exc:  # ValueError: a NUL in a run id or an asset key
        failure = pb.RunEvent(
            run_id=run_id,
            type=pb.RUN_FAILURE,
            time=time.time(),
            pid=pid,
            message="could not start the run worker",
            error=str(exc),
        )
        log_event(location, failure)
        yield failure
        return
    run = Run(run_id, worker)
    registry.add(run)
    try:
        for event in _relay(run, read_fd):
            log_event(location, event)
            yield event
    finally:
        if worker.poll() is None:
            # The caller went away (a cancelled stream): the run goes with it.
            run.cancel()
        registry.remove(run_id)


def _worker(
    request: pb.MaterializeRequest,
    target: CodeTarget,
    run_id: str,
    values_dir: str,
    pool: WarmPool | None,
) -> tuple[subprocess.Popen[bytes], int]:
    """The worker for this run and the pipe it reports on: the waiting one, given its job,
    or a fresh one."""
    warm = pool.take() if pool is not None else None
    if warm is not None:
        job = {
            "run_id": run_id,
            "values_dir": request.values_dir or values_dir,
            "selection": list(request.selection),
            "upstream": request.upstream,
        }
        try:
            warm.hand(job)
        except OSError:
            warm.discard()  # it died while waiting: a fresh one does the run
        else:
            return warm.process, warm.events_fd
    read_fd, write_fd = os.pipe()
    try:
        argv = worker_argv(request, target, run_id, values_dir, write_fd)
        worker = subprocess.Popen(
            argv, pass_fds=(write_fd,), stdin=subprocess.DEVNULL, start_new_session=True
        )
    except BaseException:
        os.close(read_fd)
        raise
    finally:
        os.close(write_fd)
    return worker, read_fd


def _relay(run: Run, read_fd: int) -> Iterator[pb.RunEvent]:
    """The worker's events as they come, then how its run ended."""
    open_step = ""
    finished = False
    with os.fdopen(read_fd, "r") as events:
        for line in events:
            try:
                data = json.loads(line)
            except ValueError:
                continue
            event = make_event(run.run_id, data, run.worker.pid)
            if data["type"] == "STEP_START":
                open_step = event.step
            elif data["type"] in ("STEP_SUCCESS", "STEP_FAILURE"):
                open_step = ""
            finished = finished or data["type"] in TERMINAL
            yield event
    code = run.worker.wait()
    yield from _ending(run, run.run_id, open_step, finished, code)


def _ending(
    run: Run, run_id: str, open_step: str, finished: bool, code: int
) -> Iterator[pb.RunEvent]:
    """The events a worker could not write itself: cancellation, or a death."""
    now = time.time()
    pid = run.worker.pid
    if run.canceled and run.failure:
        yield pb.RunEvent(
            run_id=run_id,
            type=pb.RUN_FAILURE,
            time=now,
            pid=pid,
            message="Execution of run failed",
            error=run.failure,
        )
        return
    if run.canceled:
        yield pb.RunEvent(
            run_id=run_id,
            type=pb.RUN_CANCELED,
            time=now,
            pid=pid,
            message=f"Run canceled; its worker was stopped ({describe_exit(code)})",
        )
        return
    if finished:
        return
    reason = f"the run worker died: {describe_exit(code)}"
    if open_step:
        yield pb.RunEvent(
            run_id=run_id,
            type=pb.STEP_FAILURE,
            time=now,
            pid=pid,
            step=open_step,
            message=f"Execution of step {open_step} failed",
            error=reason,
        )
    yield pb.RunEvent(
        run_id=run_id,
        type=pb.RUN_FAILURE,
        time=now,
        pid=pid,
        message="Execution of run failed",
        error=reason,
    )
