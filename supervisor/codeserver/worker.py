"""The run worker: a subprocess of the code server that materializes assets.

It loads the location's code afresh, runs the selected assets in dependency
order and reports each event as a JSON line on an inherited pipe. Whatever an
asset does (raise, os._exit, segfault) ends this process, never the server.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import pickle
import sys
import time
import traceback
from typing import IO, Any

from supervisor.codeserver import lifeline, loader
from supervisor.sdk.assets import AssetContext
from supervisor.sdk.definitions import Definitions

PREVIEW_CHARS = 1000


class Events:
    """Writes events as JSON lines; one line per event, flushed at once."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream

    def emit(self, type_: str, step: str = "", message: str = "", **fields: Any) -> None:
        event = {"type": type_, "time": time.time(), "step": step, "message": message}
        event.update(fields)
        self.stream.write(json.dumps(event) + "\n")
        self.stream.flush()


class _EventLogHandler(logging.Handler):
    def __init__(self, events: Events, step: str) -> None:
        super().__init__()
        self.events = events
        self.step = step

    def emit(self, record: logging.LogRecord) -> None:
        self.events.emit("LOG", self.step, self.format(record), level=record.levelname)


def value_path(values_dir: str, key: str) -> str:
    return os.path.join(values_dir, key + ".pickle")


def has_value(values_dir: str, key: str) -> bool:
    return os.path.isfile(value_path(values_dir, key))


def plan_steps(
    defs: Definitions, selection: list[str], upstream: bool, values_dir: str
) -> list[str]:
    """The selection plus the upstream assets it needs, in dependency order.

    Without `upstream`, an upstream asset runs only when it has no stored value.
    """
    needed = set(selection)
    pending = list(selection)
    while pending:
        key = pending.pop()
        for dep in defs.deps_of(key):
            if dep not in needed and (upstream or not has_value(values_dir, dep)):
                needed.add(dep)
                pending.append(dep)
    return [key for key in defs.toposort() if key in needed]


def store_value(values_dir: str, key: str, value: Any) -> int:
    """Pickle VALUE atomically; return its size in bytes."""
    # Private, whatever the umask: values may hold anything the user's code produced.
    os.makedirs(values_dir, mode=0o700, exist_ok=True)
    os.chmod(values_dir, 0o700)
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    temp = value_path(values_dir, key) + ".tmp-" + str(os.getpid())
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(temp, value_path(values_dir, key))
    return len(data)


def load_value(values_dir: str, key: str) -> Any:
    with open(value_path(values_dir, key), "rb") as handle:
        return pickle.load(handle)


def describe_value(value: Any, size: int) -> dict[str, str]:
    """Metadata for people: type and size, rows and a preview for tables."""
    meta = {"type": type(value).__module__ + "." + type(value).__qualname__, "size": str(size)}
    shape = getattr(value, "shape", None)
    if isinstance(shape, tuple) and shape:
        meta["rows"] = str(shape[0])
        if len(shape) > 1:
            meta["columns"] = str(shape[1])
        head = getattr(value, "head", None)
        if callable(head):
            meta["preview"] = str(head(5))[:PREVIEW_CHARS]
    elif isinstance(value, (list, tuple, dict, set, frozenset, str, bytes)):
        meta["length"] = str(len(value))
        meta["preview"] = repr(value)[:PREVIEW_CHARS]
    else:
        meta["preview"] = repr(value)[:PREVIEW_CHARS]
    return meta


def run_step(
    defs: Definitions,
    key: str,
    run_id: str,
    values_dir: str,
    computed: dict[str, Any],
    events: Events,
) -> None:
    """Run one asset: call it with its upstream values and resources, then store its value."""
    asset = defs.get_asset(key)
    deps = set(defs.deps_of(key))
    resources = defs.resources
    kwargs: dict[str, Any] = {}
    for name in asset.params:
        if name in deps:
            kwargs[name] = computed[name] if name in computed else load_value(values_dir, name)
        elif name in resources:
            kwargs[name] = resources[name]
        elif name == "context":
            log = logging.getLogger("supervisor.run." + key)
            log.setLevel(logging.DEBUG)
            log.propagate = False
            log.handlers = [_EventLogHandler(events, key)]
            kwargs[name] = AssetContext(key, run_id, log)
    started = time.monotonic()
    value = asset.fn(**kwargs)
    size = store_value(values_dir, key, value)
    computed[key] = value
    meta = describe_value(value, size)
    events.emit(
        "ASSET_MATERIALIZATION",
        key,
        "Materialized value for asset {} ({}, {} bytes)".format(key, meta["type"], size),
        metadata=meta,
    )
    events.emit(
        "STEP_SUCCESS",
        key,
        f"Finished execution of step {key} in {(time.monotonic() - started) * 1000:.0f}ms",
    )


def user_traceback(exc: BaseException) -> str:
    """The traceback from the asset's own code on: our frames above it say nothing."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
        tb = tb.tb_next
    shown = tb if tb is not None else exc.__traceback__
    return "".join(traceback.format_exception(type(exc), exc, shown))


def load(args: argparse.Namespace) -> loader.LoadResult:
    target = loader.CodeTarget(
        args.module_name,
        args.python_file,
        args.working_directory,
        args.attribute,
        autoload=args.autoload,
    )
    return loader.load(target)


def wait_for_job(args: argparse.Namespace) -> bool:
    """A waiting worker: read its one job from the job pipe into ARGS; False when the
    pipe closes first (the server no longer wants it)."""
    with os.fdopen(args.job_fd, "r") as jobs:
        line = jobs.readline()
    if not line.strip():
        return False
    job = json.loads(line)
    args.run_id = str(job["run_id"])
    args.values_dir = str(job["values_dir"])
    args.selection = [str(key) for key in job["selection"]]
    args.upstream = bool(job["upstream"])
    return True


def run(args: argparse.Namespace, events: Events, result: loader.LoadResult) -> int:
    if result.definitions is None:
        failure = result.failure
        events.emit(
            "RUN_FAILURE",
            message="could not load the location: " + (failure.message if failure else "?"),
            error=failure.message if failure else "",
            traceback=failure.traceback if failure else "",
        )
        return 1
    defs = result.definitions
    unknown = [key for key in args.selection if key not in defs.asset_keys]
    if unknown:
        message = "unknown asset {}; known: {}".format(
            ", ".join(repr(k) for k in unknown), ", ".join(defs.asset_keys) or "none"
        )
        events.emit("RUN_FAILURE", message=message, error=message)
        return 1
    steps = plan_steps(defs, args.selection, args.upstream, args.values_dir)
    computed: dict[str, Any] = {}
    for key in steps:
        events.emit("STEP_START", key, "Started execution of step " + key)
        try:
            run_step(defs, key, args.run_id, args.values_dir, computed, events)
        except Exception as exc:  # user code: report it, and stop the run
            error = f"{type(exc).__name__}: {exc}"
            events.emit(
                "STEP_FAILURE",
                key,
                f"Execution of step {key} failed",
                error=error,
                traceback=user_traceback(exc),
            )
            events.emit(
                "RUN_FAILURE",
                message=f"Execution of run failed: step {key} raised",
                error=error,
            )
            return 1
    events.emit("RUN_SUCCESS", message="Finished execution of run for " + ", ".join(steps))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="supervisor run worker")
    parser.add_argument("--module-name")
    parser.add_argument("--python-file")
    parser.add_argument("--working-directory")
    parser.add_argument("--attribute")
    parser.add_argument("--autoload", action="store_true")
    parser.add_argument("--run-id")
    parser.add_argument("--values-dir")
    parser.add_argument("--selection", action="append", default=[])
    parser.add_argument("--upstream", action="store_true")
    parser.add_argument("--events-fd", type=int, required=True)
    parser.add_argument("--parent-pid", type=int)
    parser.add_argument("--job-fd", type=int, help="wait, code imported, for the run here")
    args = parser.parse_args(argv)
    if args.job_fd is None and not (args.run_id and args.values_dir):
        parser.error("--run-id and --values-dir are required without --job-fd")
    if args.parent_pid and not lifeline.ask_for_parent_death_signal(
        lifeline.Parent(args.parent_pid)
    ):
        return 1
    if args.working_directory and os.path.isdir(args.working_directory):
        os.chdir(args.working_directory)
    with os.fdopen(args.events_fd, "w") as stream:
        if args.job_fd is None:
            return run(args, Events(stream), load(args))
        # Warm: the code is imported before the run is known, then the run is awaited.
        result = load(args)
        if not wait_for_job(args):
            return 0
        return run(args, Events(stream), result)


if __name__ == "__main__":
    sys.exit(main())
