"""Plain functions that turn what a server loaded into protocol messages."""

from __future__ import annotations

import os
import sys

import supervisor
from supervisor._proto import codeserver_pb2 as pb
from supervisor.codeserver.loader import LoadFailure, LoadResult


def load_error_message(failure: LoadFailure | None) -> pb.LoadError | None:
    """Return the LoadError message for a failure, or None."""
    if failure is None:
        return None
    return pb.LoadError(message=failure.message, traceback=failure.traceback)


def definitions_reply(location_name: str, result: LoadResult) -> pb.DefinitionsReply:
    """Describe the loaded Definitions (or the load error) as a DefinitionsReply."""
    reply = pb.DefinitionsReply(location_name=location_name)
    if result.failure is not None or result.definitions is None:
        reply.load_error.CopyFrom(load_error_message(result.failure))
        return reply
    defs = result.definitions
    for asset in defs.assets:
        reply.assets.add(
            key=asset.key,
            deps=list(defs.deps_of(asset.key)),
            group=asset.group,
            description=asset.description,
            resources=list(defs.resources_of(asset.key)),
        )
    reply.resources.extend(sorted(defs.resources))
    for schedule in defs.schedules:
        reply.schedules.add(
            name=schedule.name,
            cron=schedule.cron_schedule,
            targets=list(defs.schedule_targets(schedule)),
            description=schedule.description,
            timezone=schedule.execution_timezone or "",
            default_status=schedule.default_status.value,
            catch_up=schedule.catch_up,
            allow_overlap=schedule.allow_overlap,
        )
    return reply


def installed_distributions() -> list[tuple[str, str]]:
    """Return (name, version) of every distribution importable here, first on sys.path wins."""
    # Imported here, not at start: importlib.metadata costs ~10 ms of every server start.
    from importlib import metadata

    seen = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if not name:
            continue
        key = name.lower().replace("_", "-").replace(".", "-")
        if key not in seen:
            seen[key] = (name, dist.version)
    return sorted(seen.values(), key=lambda item: item[0].lower())


def server_info(
    location_name: str,
    runtime_version: str,
    address: str,
    started_at: float,
    result: LoadResult,
    distributions: list[tuple[str, str]],
) -> pb.ServerInfo:
    """Describe this server process and its interpreter."""
    import platform  # only needed here; kept off the start path

    info = pb.ServerInfo(
        location_name=location_name,
        pid=os.getpid(),
        python_version=platform.python_version(),
        python_implementation=platform.python_implementation(),
        python_executable=sys.executable,
        sys_prefix=sys.prefix,
        runtime_version=runtime_version,
        runtime_path=os.path.dirname(os.path.abspath(supervisor.__file__)),
        address=address,
        started_at=started_at,
    )
    for name, version in distributions:
        info.distributions.add(name=name, version=version)
    if result.failure is not None:
        info.load_error.CopyFrom(load_error_message(result.failure))
    return info
