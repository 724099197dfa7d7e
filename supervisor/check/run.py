"""`supervisor check`: bring every location up on its own, gather facts inside each code
server, judge them, and bring everything down again."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import platform
import shutil
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from supervisor._proto import codeserver_pb2 as pb
from supervisor.check.dagster_ui import check_dagster_ui, webserver_dagster
from supervisor.check.verdicts import (
    CheckResult,
    check_location,
    check_stable,
    check_unreachable,
)
from supervisor.control.codeserver import facts_to_dict
from supervisor.errors import SupervisorError
from supervisor.launch.dagster import probe_facts
from supervisor.private import private_dir
from supervisor.supervision import statefile
from supervisor.supervision.location import SETTLED, UP, Location
from supervisor.supervision.logs import Console
from supervisor.supervision.states import State
from supervisor.supervision.supervisor import Supervisor
from supervisor.workspace import LocationSpec, WorkspaceSpec

# Building an environment is bounded by uv's own timeouts; this only stops a wait for ever.
BUILD_SECONDS = 3600.0
# The default deadline of a start: the location's startup_timeout and this much more.
START_MARGIN_SECONDS = 5.0
# After a failed call, how long to wait for the server's exit to be seen.
EXIT_SEEN_SECONDS = 2.0
# How long a location must keep serving after its start to pass `stable`.
DEFAULT_SETTLE_SECONDS = 3.0
INSPECT_TIMEOUT = 30.0


def declared_names(spec: LocationSpec) -> set[str]:
    """The canonical names of the distributions SPEC declares."""
    names: set[str] = set()
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


async def inspect(location: Location) -> tuple[dict[str, Any], pb.DefinitionsReply]:
    if location.channel is None:
        # The whole reason it is not serving (a resolver's message, say), not a call's failure.
        raise SupervisorError(
            location.machine.last_error or f"not serving ({location.state.value})"
        )
    launchable = getattr(location, "launchable", None)
    if location.runtime == "dagster" and launchable is not None:
        # Dagster's server has no Inspect: the location's interpreter is asked instead.
        reply = await asyncio.to_thread(probe_facts, launchable, location.spec)
    else:
        reply = await location.code_server().inspect(timeout=INSPECT_TIMEOUT)
    return facts_to_dict(reply), await location.definitions(timeout=INSPECT_TIMEOUT)


def counts_of(reply: pb.DefinitionsReply) -> dict[str, int]:
    return {
        "assets": len(reply.assets),
        "resources": len(reply.resources),
        "schedules": len(reply.schedules),
    }


@dataclass(frozen=True)
class CheckReport:
    """What `check` found: every result, the wall time, and whether it was cut short."""

    results: list[CheckResult]
    seconds: float
    interrupted: bool = False


@dataclass(frozen=True)
class CheckOptions:
    """How long `check` waits: TIMEOUT for a start (None: startup_timeout plus a margin),
    SETTLE for a location to keep serving after it started."""

    timeout: float | None = None
    settle: float = DEFAULT_SETTLE_SECONDS
    keep_running: bool = False


def without_restarts(spec: LocationSpec) -> LocationSpec:
    """SPEC with restarts off: `check` judges a location's first start, it never retries."""
    return dataclasses.replace(spec, restart=dataclasses.replace(spec.restart, policy="never"))


async def run_check(
    workspace: WorkspaceSpec, names: tuple[str, ...], options: CheckOptions, console: Console
) -> CheckReport:
    """Start the chosen locations, judge each, stop them. Always ends: each start has a
    deadline, nothing restarts, and Ctrl-C (or SIGTERM) gives a report of what was done."""
    began = time.monotonic()
    specs = [workspace.location(n) for n in names] if names else list(workspace.locations)
    private = private_dir(statefile.socket_dir(workspace.path) / f"check-{os.getpid()}")
    supervisor = Supervisor(
        workspace, console, socket_dir=private, record_state=False, dagster_ui=False
    )
    # Its servers carry the workspace's token too, with this process as their owner.
    statefile.mark_environment(workspace.path)
    declared = {spec.name: declared_names(spec) for spec in workspace.locations}
    interrupted = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, interrupted.set)
    tasks: dict[str, asyncio.Task[list[CheckResult]]] = {}
    webserver = None
    if workspace.dagster.enabled and any(s.effective_runtime == "dagster" for s in specs):
        webserver = asyncio.create_task(_webserver_dagster(workspace))
    try:
        for spec in specs:
            location = supervisor.add(without_restarts(spec))
            others = {n: d for n, d in declared.items() if n != spec.name}
            tasks[spec.name] = asyncio.create_task(_check_one(location, others, options, webserver))
        stop = asyncio.create_task(interrupted.wait())
        pending: set[asyncio.Task[Any]] = set(tasks.values())
        while pending and not stop.done():
            # Only what is still running: a finished task would wake every wait at once.
            _, pending = await asyncio.wait({stop, *pending}, return_when=asyncio.FIRST_COMPLETED)
            pending.discard(stop)
        stop.cancel()
        results = []
        for spec in specs:
            task = tasks[spec.name]
            if task.done() and not task.cancelled():
                results += task.result()
            else:
                task.cancel()
                seconds = time.monotonic() - began
                results += check_unreachable(spec, "not checked: interrupted", seconds)
        cut_short = interrupted.is_set()
        if options.keep_running and not cut_short:
            # Here Ctrl-C is the expected end, not an interruption of the checks.
            console.event("checks done; the code servers keep running until Ctrl-C")
            await interrupted.wait()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        if webserver is not None:
            webserver.cancel()
        await supervisor.stop_all()
        shutil.rmtree(private, ignore_errors=True)
    return CheckReport(results, time.monotonic() - began, cut_short)


async def _webserver_dagster(workspace: WorkspaceSpec) -> str | SupervisorError:
    try:
        return await asyncio.to_thread(webserver_dagster, workspace)
    except SupervisorError as exc:
        return exc


async def _check_one(
    location: Location,
    others: dict[str, set[str]],
    options: CheckOptions,
    webserver: asyncio.Task[str | SupervisorError] | None = None,
) -> list[CheckResult]:
    """Bring one location up, judge its facts, watch it serve for the settle window."""
    spec = location.spec
    began = time.monotonic()
    # Building is bounded by uv's own timeouts; the start by the check's deadline.
    await location.wait_until(lambda s: s not in (State.PENDING, State.BUILDING), BUILD_SECONDS)
    timeout = options.timeout
    if timeout is None:
        timeout = spec.startup_timeout + START_MARGIN_SECONDS
    await location.settled(timeout)
    if location.state not in UP:
        why = location.machine.last_error or location.state.value
        if location.state not in SETTLED:
            why = f"not serving within the check's timeout of {timeout:g}s ({location.state.value})"
        return check_unreachable(spec, why, time.monotonic() - began)
    started = time.monotonic()
    try:
        facts, definitions = await inspect(location)
    except SupervisorError as exc:
        # A server that died under the call says better why than the call does.
        left = await location.wait_until(lambda s: s not in UP, EXIT_SEEN_SECONDS)
        why = (location.machine.last_error or str(exc)) if left else str(exc)
        return check_unreachable(spec, f"stopped serving: {why}", time.monotonic() - began)
    inspected = time.monotonic()
    facts["load_error"] = (
        definitions.load_error.message if definitions.HasField("load_error") else None
    )
    facts["counts"] = counts_of(definitions)
    judged = check_location(
        spec, facts, others, platform.python_version(), allowed_paths(spec, facts)
    )
    # Inspect's call is the facts checks' time; the stable check's is the start and watch.
    results = [dataclasses.replace(judged[0], seconds=inspected - started), *judged[1:]]
    left = await location.wait_until(lambda s: s not in UP, options.settle)
    reason = None
    if left:
        reason = location.machine.last_error or location.state.value
    watched = time.monotonic() - began - (inspected - started)
    stable = check_stable(spec, options.settle, reason, watched)
    version = location.dagster_version
    if webserver is None or location.runtime != "dagster" or not version:
        return [*results, stable]
    return [*results, stable, check_dagster_ui(spec.name, version, await webserver)]


def check_workspace(
    workspace: WorkspaceSpec, names: tuple[str, ...], options: CheckOptions
) -> CheckReport:
    """Run `check` on its own event loop; progress goes to stderr."""
    return asyncio.run(run_check(workspace, names, options, Console(sys.stderr)))
