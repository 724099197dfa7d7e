"""The control service of a running `up`, on a Unix socket of mode 0600.

It depends on the locations (the Location interface), the run store and two callables
of the supervisor loop (reload, stop), not on the loop itself.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import grpc
from google.protobuf.message import DecodeError
from google.protobuf.message_factory import GetMessageClass

from supervisor._proto import codeserver_pb2 as cs
from supervisor._proto_host import control_pb2 as pb
from supervisor._proto_host import control_pb2_grpc
from supervisor.control.snapshot import status_to_dict
from supervisor.errors import SupervisorError, WorkspaceError
from supervisor.runs import materialize
from supervisor.runs.store import RunStore
from supervisor.schedules.ticker import Listed, Ticker
from supervisor.supervision.location import UP, Location, select
from supervisor.supervision.states import State

HISTORY_SHOWN = 20
# An action waits this long beyond a location's startup_timeout for it to settle.
SETTLE_MARGIN_SECONDS = 5.0


class ChangeLike(Protocol):
    """One location's outcome of a reload."""

    @property
    def location(self) -> str: ...
    @property
    def ok(self) -> bool: ...
    @property
    def message(self) -> str: ...


@dataclass
class ControlService:
    """What the control service works on: the live locations and the run store, plus how to
    reload the workspace and how to stop the supervisor."""

    locations: Mapping[str, Location]
    store: RunStore
    workspace_path: Path
    reload: Callable[[], Awaitable[Sequence[ChangeLike]]]
    request_stop: Callable[[int], None]
    ticker: Ticker | None = None
    # Dagster's webserver and daemon, when they run: listed and commanded like locations.
    system: Mapping[str, Location] = field(default_factory=dict)
    # What status says of a location beside them (versions, the webserver's trouble).
    warning: Callable[[Location], str | None] | None = None

    def warning_of(self, location: Location) -> str | None:
        """What status says beside LOCATION (only Dagster locations have anything to say)."""
        if self.warning is None or location.runtime != "dagster":
            return None
        return self.warning(location)


def location_status(location: Location, warning: str | None = None) -> pb.LocationStatus:
    """Describe one location (or system process) for `status`."""
    machine = location.machine
    status = pb.LocationStatus(
        name=location.name,
        kind=location.spec.kind,
        state=machine.state.value,
        restarts=location.restarts,
        python=location.python_version,
        address=location.address,
        since=machine.history[-1].at if machine.history else 0.0,
        metadata=dict(location.spec.metadata),
        runtime=location.runtime,
        url=location.url,
        dagster_version=location.dagster_version,
    )
    if warning:
        status.warning = warning
    if location.pid:
        status.pid = location.pid
    if location.env_key:
        status.env = location.env_key
    if machine.last_error:
        status.last_error = machine.last_error
    if location.load_error:
        status.load_error = location.load_error
    if location.next_attempt is not None:
        status.next_attempt = location.next_attempt
    for transition in list(machine.history)[-HISTORY_SHOWN:]:
        status.history.add(
            from_state=transition.from_state.value,
            to_state=transition.to_state.value,
            reason=transition.reason,
            at=transition.at,
        )
    return status


class StatusRows:
    """Every location's and system process's `status --json` entry as JSON text, for the
    state file: an entry is made again only once its location reported a change (or its
    warning changed), so a change costs one entry, not one per location."""

    def __init__(self, service: ControlService) -> None:
        self.service = service
        self._made: dict[int, tuple[Location, tuple[Any, ...], str]] = {}

    def __call__(self) -> list[str]:
        service = self.service
        made: dict[int, tuple[Location, tuple[Any, ...], str]] = {}
        for location in [*service.locations.values(), *service.system.values()]:
            warning = service.warning_of(location)
            key = (location.version, location.pid, warning)
            entry = self._made.get(id(location))
            if entry is None or entry[0] is not location or entry[1] != key:
                text = json.dumps(status_to_dict(location_status(location, warning)))
                entry = (location, key, text)
            made[id(location)] = entry
        self._made = made
        return [text for _, _, text in made.values()]


class ControlServicer(control_pb2_grpc.SupervisorServicer):
    """Answers the CLI; runs on the supervisor's event loop, so it may touch all state."""

    def __init__(self, service: ControlService) -> None:
        self.service = service

    async def _chosen(
        self, context: grpc.aio.ServicerContext, names: Sequence[str], all_: bool = False
    ) -> list[Location]:
        try:
            if names and not all_:
                everything = {**self.service.locations, **self.service.system}
                return select(everything, list(names))
            return select(self.service.locations, list(names), all_)
        except SupervisorError as exc:
            await context.abort(grpc.StatusCode.NOT_FOUND, str(exc))
            raise  # abort raises; this line is for the type checker

    async def Status(self, request: Any, context: grpc.aio.ServicerContext) -> pb.StatusReply:
        chosen = await self._chosen(context, request.locations)
        if not request.locations:
            chosen += list(self.service.system.values())
        return pb.StatusReply(
            locations=[location_status(loc, self.service.warning_of(loc)) for loc in chosen],
            supervisor_pid=os.getpid(),
            workspace=str(self.service.workspace_path),
        )

    async def _act(
        self, request: Any, context: grpc.aio.ServicerContext, action: str
    ) -> pb.ActionReply:
        chosen = await self._chosen(context, request.locations, request.all)
        results = await asyncio.gather(*(_act_on(loc, action) for loc in chosen))
        return pb.ActionReply(results=results)

    async def Start(self, request: Any, context: grpc.aio.ServicerContext) -> pb.ActionReply:
        return await self._act(request, context, "start")

    async def Stop(self, request: Any, context: grpc.aio.ServicerContext) -> pb.ActionReply:
        return await self._act(request, context, "stop")

    async def Restart(self, request: Any, context: grpc.aio.ServicerContext) -> pb.ActionReply:
        return await self._act(request, context, "restart")

    async def Reload(self, request: Any, context: grpc.aio.ServicerContext) -> pb.ActionReply:
        try:
            changes = await self.service.reload()
        except WorkspaceError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
            raise
        except SupervisorError as exc:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(exc))
            raise
        return pb.ActionReply(
            results=[
                pb.ActionResult(location=c.location, ok=c.ok, message=c.message) for c in changes
            ]
        )

    async def ListDefinitions(
        self, request: Any, context: grpc.aio.ServicerContext
    ) -> pb.DefinitionsList:
        chosen = await self._chosen(context, request.locations, request.all)
        replies = await asyncio.gather(*(_definitions(loc) for loc in chosen))
        return pb.DefinitionsList(locations=replies)

    async def Materialize(
        self, request: Any, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[cs.RunEvent]:
        try:
            location, selection = await materialize.resolve(
                self.service.locations, list(request.assets), request.location, request.all
            )
        except SupervisorError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
            raise
        async for event in materialize.run(
            self.service.store, location, selection, request.upstream
        ):
            yield event

    async def CancelRun(self, request: Any, context: grpc.aio.ServicerContext) -> pb.CancelRunReply:
        try:
            run = self.service.store.get_run(request.run_id)
        except SupervisorError as exc:
            await context.abort(grpc.StatusCode.NOT_FOUND, str(exc))
            raise
        location = self.service.locations.get(run["location"])
        if run["status"] != "STARTED" or location is None or location.channel is None:
            return pb.CancelRunReply(found=False)
        try:
            found = await location.code_server().cancel_run(run["id"])
        except SupervisorError as exc:
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))
            raise
        return pb.CancelRunReply(found=found)

    async def ListSchedules(
        self, request: Any, context: grpc.aio.ServicerContext
    ) -> pb.ScheduleList:
        ticker = await self._ticker(context)
        return pb.ScheduleList(schedules=[schedule_info(row) for row in ticker.listing()])

    async def SetScheduleStatus(
        self, request: Any, context: grpc.aio.ServicerContext
    ) -> pb.ActionReply:
        ticker = await self._ticker(context)
        try:
            message = ticker.set_status(request.schedule, request.running)
        except SupervisorError as exc:
            await context.abort(grpc.StatusCode.NOT_FOUND, str(exc))
            raise
        result = pb.ActionResult(location=request.schedule, ok=True, message=message)
        return pb.ActionReply(results=[result])

    async def _ticker(self, context: grpc.aio.ServicerContext) -> Ticker:
        if self.service.ticker is None:
            await context.abort(
                grpc.StatusCode.FAILED_PRECONDITION, "this supervisor ticks no schedules"
            )
            raise SupervisorError("no ticker")  # abort raises; this line is for the type checker
        return self.service.ticker

    async def Shutdown(self, request: Any, context: grpc.aio.ServicerContext) -> pb.ShutdownReply:
        # Answer first, then stop: the caller waits for the lock to go, not for this reply.
        asyncio.get_running_loop().call_soon(self.service.request_stop, 0)
        return pb.ShutdownReply()


def schedule_info(row: Listed) -> pb.ScheduleInfo:
    """Describe one schedule for `schedules`."""
    schedule = row.schedule
    info = pb.ScheduleInfo(
        location=schedule.location,
        name=schedule.name,
        cron=schedule.cron,
        timezone=schedule.timezone,
        status=row.status,
        targets=list(schedule.targets),
        description=schedule.description,
        problem=schedule.problem,
    )
    if row.next_tick is not None:
        info.next_tick = row.next_tick
    if row.last is not None:
        info.last_tick = row.last.scheduled_at
        info.last_tick_status = row.last.status
        info.last_run_id = row.last.run_id or ""
    return info


async def _act_on(location: Location, action: str) -> pb.ActionResult:
    if action == "stop":
        await location.stop("stop requested")
    elif action == "start":
        refused = location.start()
        if refused is not None:
            return pb.ActionResult(location=location.name, ok=False, message=refused)
    else:
        await location.restart()
    await location.settled(location.spec.startup_timeout + SETTLE_MARGIN_SECONDS)
    state = location.state
    ok = state is State.STOPPED if action == "stop" else state in UP
    return pb.ActionResult(location=location.name, ok=ok, message=state.value)


async def _definitions(location: Location) -> cs.DefinitionsReply:
    try:
        reply = await location.definitions()
    except SupervisorError as exc:
        reply = cs.DefinitionsReply(location_name=location.name)
        reply.load_error.message = str(exc)
        return reply
    # The workspace's name for it, whatever the server calls itself.
    reply.location_name = location.name
    return reply


@dataclass(frozen=True)
class MalformedRequest:
    """What a request's bytes became when they did not parse as the request type."""

    type_name: str
    reason: str

    @property
    def message(self) -> str:
        return f"malformed {self.type_name}: {self.reason}"


def _parser(message_class: Any) -> Callable[[bytes], Any]:
    def parse(data: bytes) -> Any:
        try:
            return message_class.FromString(data)
        except DecodeError as exc:
            return MalformedRequest(message_class.DESCRIPTOR.full_name, str(exc))

    return parse


def _refusing_malformed(behaviour: Callable[..., Any], streaming: bool) -> Callable[..., Any]:
    """BEHAVIOUR, but a MalformedRequest is answered INVALID_ARGUMENT before it is called."""
    if streaming:

        async def stream(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            if isinstance(request, MalformedRequest):
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, request.message)
            async for item in behaviour(request, context):
                yield item

        return stream

    async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
        if isinstance(request, MalformedRequest):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, request.message)
        return await behaviour(request, context)

    return unary


def control_handler(servicer: ControlServicer) -> grpc.GenericRpcHandler:
    """The Supervisor service's handlers, as the generated stubs make them, except that a
    request whose bytes do not parse is refused with INVALID_ARGUMENT saying why (grpc's
    own deserializer answers UNKNOWN, naming a Python exception class)."""
    service = pb.DESCRIPTOR.services_by_name["Supervisor"]
    handlers = {}
    for method in service.methods:
        make = (
            grpc.unary_stream_rpc_method_handler
            if method.server_streaming
            else grpc.unary_unary_rpc_method_handler
        )
        handlers[method.name] = make(
            _refusing_malformed(getattr(servicer, method.name), method.server_streaming),
            request_deserializer=_parser(GetMessageClass(method.input_type)),
            response_serializer=GetMessageClass(method.output_type).SerializeToString,
        )
    return grpc.method_handlers_generic_handler(service.full_name, handlers)


async def serve_control(service: ControlService, path: Path) -> grpc.aio.Server:
    """Serve the control service on PATH (mode 0600)."""
    if path.exists():
        path.unlink()
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    server.add_generic_rpc_handlers((control_handler(ControlServicer(service)),))
    old = os.umask(0o177)
    try:
        server.add_insecure_port("unix:" + str(path))
        await server.start()
    finally:
        os.umask(old)
    path.chmod(0o600)
    return server
