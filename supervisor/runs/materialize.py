"""Materialize through the supervisor: find the location of the assets, run them in its code
server, keep every event in the run store, and end every run with a final status."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Mapping

from supervisor._proto import codeserver_pb2 as pb
from supervisor.errors import CodeServerError, SupervisorError
from supervisor.private import private_dir
from supervisor.runs.dagster_runs import materialize_dagster
from supervisor.runs.store import RunStore
from supervisor.supervision.location import Location, select

FINAL = {pb.RUN_SUCCESS: "SUCCESS", pb.RUN_FAILURE: "FAILURE", pb.RUN_CANCELED: "CANCELED"}


async def resolve(
    locations: Mapping[str, Location], assets: list[str], location_name: str, all_: bool
) -> tuple[Location, list[str]]:
    """Find the one location that holds ASSETS; SupervisorError says why not.

    An asset may be named LOCATION.ASSET, as the list of known assets shows them.
    """
    plain = []
    # Location names may hold dots themselves (Dagster's `repo.py`, `pkg.defs:defs`): the
    # longest name that prefixes KEY wins.
    by_length = sorted(locations, key=len, reverse=True)
    for key in assets:
        prefix = next((name for name in by_length if key.startswith(name + ".")), None)
        if prefix is not None:
            if location_name and location_name != prefix:
                raise SupervisorError(f"asset {key!r} is not in location {location_name!r}")
            location_name = prefix
            key = key[len(prefix) + 1 :]
        plain.append(key)
    assets = plain
    candidates = select(locations, [location_name]) if location_name else list(locations.values())
    holdings: dict[str, list[str]] = {}
    away: list[str] = []
    for location in candidates:
        try:
            reply = await location.definitions()
        except SupervisorError:
            away.append(f"{location.name} is {location.state.value}")
            continue
        holdings[location.name] = [a.key for a in reply.assets]
    not_serving = f" (not asked: {', '.join(away)})" if away else ""
    if all_:
        if len(candidates) != 1:
            raise SupervisorError("--all needs -l LOCATION (which location's assets?)")
        if candidates[0].name not in holdings:
            state = candidates[0].state.value
            raise SupervisorError(f"location {candidates[0].name!r} is not serving ({state})")
        return candidates[0], holdings[candidates[0].name]
    if not assets:
        raise SupervisorError("name the assets to materialize, or give --all with -l")
    owners: dict[str, list[str]] = {}
    for key in assets:
        owners[key] = [name for name, keys in holdings.items() if key in keys]
    unknown = [key for key, where in owners.items() if not where]
    if unknown:
        known = ", ".join(f"{n}.{k}" for n, keys in holdings.items() for k in keys) or "none"
        raise SupervisorError(
            f"unknown asset {', '.join(repr(k) for k in unknown)}; known: {known}{not_serving}"
        )
    several = {key: where for key, where in owners.items() if len(where) > 1}
    if several:
        key, where = next(iter(several.items()))
        raise SupervisorError(
            f"asset {key!r} is in several locations ({', '.join(where)}); pick one with -l"
        )
    names = {where[0] for where in owners.values()}
    if len(names) > 1:
        raise SupervisorError(
            f"the assets are in different locations ({', '.join(sorted(names))});"
            " materialize each location's assets separately"
        )
    return locations[names.pop()], list(dict.fromkeys(assets))


async def run(
    store: RunStore,
    location: Location,
    selection: list[str],
    upstream: bool,
    trigger: str = "manual",
    run_id: str | None = None,
) -> AsyncIterator[pb.RunEvent]:
    """Run SELECTION in LOCATION, recording each event; yields the events.

    The run is recorded with TRIGGER (`manual`, `schedule:NAME`), unless RUN_ID names one
    already recorded (a schedule's tick records its run together with the tick)."""
    if run_id is None:
        run_id = uuid.uuid4().hex
        store.create_run(location.name, selection, run_id, trigger=trigger)
    values_dir = location.values_dir
    if values_dir is not None:
        private_dir(values_dir)  # the server writes into it; made here, private, with parents
    request = pb.MaterializeRequest(
        run_id=run_id,
        selection=selection,
        upstream=upstream,
        values_dir="" if values_dir is None else str(values_dir),
    )
    ended = False
    try:
        async for event in _events(location, request):
            record(store, event)
            ended = ended or event.type in FINAL
            yield event
        if not ended:
            raise CodeServerError(
                location.name, "Materialize", location.address, "the stream ended early"
            )
    except CodeServerError as exc:
        reason = f"the code server of location {location.name!r} went away during the run"
        event = pb.RunEvent(
            run_id=run_id,
            type=pb.RUN_FAILURE,
            time=time.time(),
            message="Execution of run failed",
            error=f"{reason}: {exc.reason}",
        )
        record(store, event)
        yield event
    except BaseException:
        # The caller hung up (Ctrl-C) or the supervisor is stopping: the code server
        # cancels the run when our call to it ends; the record says so.
        if not ended:
            record(
                store,
                pb.RunEvent(
                    run_id=run_id,
                    type=pb.RUN_CANCELED,
                    time=time.time(),
                    message="Run canceled: the caller went away",
                ),
            )
        raise


def _events(location: Location, request: pb.MaterializeRequest) -> AsyncIterator[pb.RunEvent]:
    """The run's events: from our code server, or from a Dagster run worker in a Dagster
    location's own environment."""
    launchable = getattr(location, "launchable", None)
    if location.runtime == "dagster" and launchable is not None:
        if location.values_dir is None or location.channel is None:
            raise CodeServerError(
                location.name, "Materialize", location.address or "-", "it is not serving"
            )
        return materialize_dagster(launchable, location.spec, request, location.values_dir)
    return location.code_server().materialize(request)


def record(store: RunStore, event: pb.RunEvent) -> None:
    """Keep one event; a final one also closes the run with its status."""
    store.add_event(
        event.run_id,
        pb.EventType.Name(event.type),
        step=event.step,
        message=event.message,
        time=event.time,
        metadata={m.key: m.text for m in event.metadata},
        error=event.error,
        traceback=event.traceback,
    )
    if event.type in FINAL:
        store.finish_run(event.run_id, FINAL[event.type], event.error or "")
