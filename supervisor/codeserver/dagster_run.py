"""A run of Dagster assets, in a Dagster location's own environment: the worker that
`supervisor materialize` starts there (Dagster's code server has no call for it).

It loads the location's `dagster.Definitions` as `dagster api grpc` would find them, runs the
selected assets (and, with --upstream, everything upstream of them) in one run of the
implicit asset job on the workspace's Dagster instance (DAGSTER_HOME, which the supervisor
sets), or one kept in the location's values folder when there is none (so that outputs
stored by one run feed the next), and prints each of the run's events as one JSON
line on stdout, in our event names.

Child side: importable with the standard library alone; dagster is imported when it runs.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import sys
import time
import traceback
from typing import Any

# Dagster's event types -> ours; every other event is a LOG line.
EVENT_TYPES = {
    "PIPELINE_START": "RUN_START",  # Dagster still names run events so
    "PIPELINE_SUCCESS": "RUN_SUCCESS",
    "PIPELINE_FAILURE": "RUN_FAILURE",
    "RUN_START": "RUN_START",
    "STEP_START": "STEP_START",
    "ASSET_MATERIALIZATION": "ASSET_MATERIALIZATION",
    "STEP_SUCCESS": "STEP_SUCCESS",
    "STEP_FAILURE": "STEP_FAILURE",
    "RUN_SUCCESS": "RUN_SUCCESS",
    "RUN_FAILURE": "RUN_FAILURE",
}


def emit(kind: str, **fields: Any) -> None:
    fields.setdefault("time", time.time())
    sys.stdout.write(json.dumps({"type": kind, "pid": os.getpid(), **fields}) + "\n")
    sys.stdout.flush()


def load_module(args: argparse.Namespace) -> Any:
    if args.working_directory:
        sys.path.insert(0, args.working_directory)
    name = args.module_name or args.autoload_defs_module
    if name:
        return importlib.import_module(name)
    path = os.path.abspath(args.python_file)
    spec = importlib.util.spec_from_file_location("__location__", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path} as Python code")
    module = importlib.util.module_from_spec(spec)
    sys.modules["__location__"] = module
    spec.loader.exec_module(module)
    return module


def find_definitions(module: Any, args: argparse.Namespace) -> Any:
    import dagster

    if args.autoload_defs_module:
        from dagster.components import load_defs

        return load_defs(module)
    if args.attribute:
        value = getattr(module, args.attribute)
        return value() if callable(value) and not isinstance(value, dagster.Definitions) else value
    found = {id(v): v for v in vars(module).values() if isinstance(v, dagster.Definitions)}
    if len(found) != 1:
        raise LookupError(
            f"expected one dagster.Definitions among the top-level variables; found {len(found)}"
        )
    return next(iter(found.values()))


def event_fields(event: Any) -> dict[str, Any]:
    """One Dagster event in our fields."""
    kind = EVENT_TYPES.get(event.event_type_value, "LOG")
    fields: dict[str, Any] = {"message": event.message or event.event_type_value}
    key = getattr(event, "asset_key", None)
    if key is not None:
        fields["step"] = key.to_user_string()
    elif event.step_key:
        fields["step"] = event.step_key
    data = event.event_specific_data
    error = getattr(data, "error", None)
    if error is not None:
        fields["error"] = (error.message or "").strip().splitlines()[0] if error.message else ""
        fields["traceback"] = error.to_string()
    if kind == "LOG":
        fields["level"] = "INFO"
        fields["message"] = "{}: {}".format(event.event_type_value, fields["message"])
    return dict(kind=kind, **fields)


def run(args: argparse.Namespace) -> int:
    import dagster

    try:
        defs = find_definitions(load_module(args), args)
        keys = [dagster.AssetKey.from_user_string(key) for key in args.selection]
        graph = defs.resolve_asset_graph()
        selection = dagster.AssetSelection.assets(*keys)
        if args.upstream:
            selection = selection.upstream()
        chosen: list[Any] = sorted(selection.resolve(graph), key=lambda k: k.to_user_string())
        job = defs.resolve_implicit_global_asset_job_def()
        if os.environ.get("DAGSTER_HOME"):
            # The workspace's one instance: the run shows in Dagster's UI, and its outputs
            # feed the runs launched there.
            instance = dagster.DagsterInstance.get()
        else:
            os.makedirs(args.instance_dir, exist_ok=True)
            instance = dagster.DagsterInstance.local_temp(tempdir=args.instance_dir)
    except BaseException as exc:
        emit(
            "RUN_FAILURE",
            message="could not load the location's Definitions",
            error=f"{type(exc).__name__}: {exc}",
            traceback=traceback.format_exc(),
        )
        return 1
    try:
        result = job.execute_in_process(
            instance=instance,
            asset_selection=chosen,
            raise_on_error=False,
            tags={"supervisor/run_id": args.run_id},
        )
    except BaseException as exc:
        emit(
            "RUN_FAILURE",
            message="Execution of run failed",
            error=f"{type(exc).__name__}: {exc}",
            traceback=traceback.format_exc(),
        )
        return 1
    # The run's records, in order and with the times they happened.
    for entry in instance.all_logs(result.run_id):
        if entry.dagster_event is None:
            continue
        fields = event_fields(entry.dagster_event)
        fields["time"] = entry.timestamp
        emit(fields.pop("kind"), **fields)
    return 0 if result.success else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dagster_run")
    parser.add_argument("--module-name")
    parser.add_argument("--python-file")
    parser.add_argument("--autoload-defs-module")
    parser.add_argument("--working-directory")
    parser.add_argument("--attribute")
    parser.add_argument("--run-id", required=True)
    parser.add_argument("--selection", action="append", default=[])
    parser.add_argument("--upstream", action="store_true")
    parser.add_argument("--instance-dir", required=True)
    return run(parser.parse_args(argv))
