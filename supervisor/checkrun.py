"""`supervisor check`: bring every location up on its own, gather facts inside each code
server, judge them, and bring everything down again."""

from __future__ import annotations

import asyncio
import os
import platform
import shutil
import signal
import sys
import time
from pathlib import Path

import grpc
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from supervisor import statefile
from supervisor._proto import codeserver_pb2 as pb
from supervisor._proto import codeserver_pb2_grpc
from supervisor.checks import CheckResult, check_location, check_unreachable
from supervisor.client import facts_to_dict
from supervisor.control import wait_settled
from supervisor.daemon import Location, Supervisor
from supervisor.errors import SupervisorError
from supervisor.logs import Console
from supervisor.workspace import LocationSpec, WorkspaceSpec

# Environments may need building first; a start is bounded by each startup_timeout.
SETTLE_SECONDS = 3600.0


def declared_names(spec: LocationSpec) -> set[str]:
    names = set()
    for text in spec.requirements:
        try:
            names.add(canonicalize_name(Requirement(text).name))
        except InvalidRequirement:
            continue
    return names


def allowed_paths(spec: LocationSpec, facts: dict) -> list[str]:
    """What besides its environment a location's sys.path may hold: its code, our runtime."""
    paths = []
    if spec.working_directory:
        paths.append(str(spec.working_directory))
    if spec.python_file:
        paths.append(str(spec.python_file.parent))
    if facts.get("runtime_path"):
        paths.append(str(Path(facts["runtime_path"]).parent))
    return paths


async def inspect(location: Location) -> tuple[dict, pb.DefinitionsReply]:
    channel = location.channel
    if channel is None:
        raise SupervisorError(
            location.machine.last_error or f"not serving ({location.state.value})"
        )
    stub = codeserver_pb2_grpc.CodeServerStub(channel)
    try:
        reply = await stub.Inspect(pb.InspectRequest(), timeout=30)
    except grpc.RpcError as exc:
        raise SupervisorError(f"Inspect failed: {exc.details()}") from None
    return facts_to_dict(reply), await location.definitions(timeout=30)


def counts_of(reply: pb.DefinitionsReply) -> dict[str, int]:
    return {
        "assets": len(reply.assets),
        "resources": len(reply.resources),
        "schedules": len(reply.schedules),
    }


async def run_check(
    workspace: WorkspaceSpec, names: tuple[str, ...], keep_running: bool, console: Console
) -> tuple[list[CheckResult], dict[str, float]]:
    """Start the chosen locations, judge each, stop them; return the results and seconds each."""
    specs = [workspace.location(n) for n in names] if names else list(workspace.locations)
    private = statefile.socket_dir(workspace.path) / f"check-{os.getpid()}"
    private.mkdir(mode=0o700, exist_ok=True)
    supervisor = Supervisor(workspace, console, socket_dir=private, record_state=False)
    started = {spec.name: time.monotonic() for spec in specs}
    results: list[CheckResult] = []
    timings: dict[str, float] = {}
    try:
        for spec in specs:
            supervisor.add(spec)
        await asyncio.gather(
            *(wait_settled(supervisor.locations[s.name], SETTLE_SECONDS) for s in specs)
        )
        declared = {spec.name: declared_names(spec) for spec in workspace.locations}
        for spec in specs:
            location = supervisor.locations[spec.name]
            others = {n: d for n, d in declared.items() if n != spec.name}
            try:
                facts, definitions = await inspect(location)
            except SupervisorError as exc:
                results += check_unreachable(spec, str(exc))
            else:
                load_error = (
                    definitions.load_error.message if definitions.HasField("load_error") else None
                )
                facts["load_error"] = load_error
                facts["counts"] = counts_of(definitions)
                results += check_location(
                    spec, facts, others, platform.python_version(), allowed_paths(spec, facts)
                )
            timings[spec.name] = time.monotonic() - started[spec.name]
        if keep_running:
            await _wait_for_signal(console)
    finally:
        await supervisor.stop_all()
        shutil.rmtree(private, ignore_errors=True)
    return results, timings


async def _wait_for_signal(console: Console) -> None:
    console.event("checks done; the code servers keep running until Ctrl-C")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()


def check_workspace(
    workspace: WorkspaceSpec, names: tuple[str, ...], keep_running: bool = False
) -> tuple[list[CheckResult], dict[str, float]]:
    """Run `check` on its own event loop; progress goes to stderr."""
    return asyncio.run(run_check(workspace, names, keep_running, Console(sys.stderr)))
