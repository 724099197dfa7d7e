"""The control service of a running `up` (Unix socket, mode 0600) and the client the CLI uses."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc

from supervisor import statefile
from supervisor._proto import codeserver_pb2 as cs
from supervisor._proto_host import control_pb2 as pb
from supervisor._proto_host import control_pb2_grpc
from supervisor.client import CHANNEL_OPTIONS
from supervisor.errors import SupervisorError, UsageError, WorkspaceError

if TYPE_CHECKING:
    from supervisor.daemon import Location, Supervisor


def location_status(location: Location) -> pb.LocationStatus:
    """Describe one location for `status`."""
    machine = location.machine
    process = getattr(location, "process", None)
    launchable = getattr(location, "launchable", None)
    status = pb.LocationStatus(
        name=location.name,
        kind=location.spec.kind,
        state=machine.state.value,
        restarts=getattr(getattr(location, "tracker", None), "restarts", 0),
        python=launchable.python_version if launchable else getattr(location, "python_version", ""),
        address=location.address,
        since=machine.history[-1].at if machine.history else 0.0,
    )
    pid = process.pid if process is not None and process.returncode is None else None
    pid = pid or getattr(location, "pid", None)
    if pid:
        status.pid = pid
    if launchable is not None and launchable.env_key:
        status.env = launchable.env_key
    if machine.last_error:
        status.last_error = machine.last_error
    if location.load_error:
        status.load_error = location.load_error
    for transition in list(machine.history)[-20:]:
        status.history.add(
            from_state=transition.from_state.value,
            to_state=transition.to_state.value,
            reason=transition.reason,
            at=transition.at,
        )
    return status


class ControlServicer(control_pb2_grpc.SupervisorServicer):
    """Answers the CLI; runs on the supervisor's event loop, so it may touch all state."""

    def __init__(self, supervisor: Supervisor) -> None:
        self.supervisor = supervisor

    async def Status(self, request, context):
        try:
            chosen = self.supervisor.select(list(request.locations))
        except SupervisorError as exc:
            await context.abort(grpc.StatusCode.NOT_FOUND, str(exc))
        return pb.StatusReply(
            locations=[location_status(loc) for loc in chosen],
            supervisor_pid=os.getpid(),
            workspace=str(self.supervisor.workspace.path),
        )

    async def _act(self, request, context, action: str) -> pb.ActionReply:
        try:
            chosen = self.supervisor.select(list(request.locations), request.all)
        except SupervisorError as exc:
            await context.abort(grpc.StatusCode.NOT_FOUND, str(exc))
        results = await asyncio.gather(*(self._do(loc, action) for loc in chosen))
        return pb.ActionReply(results=results)

    async def _do(self, location: Location, action: str) -> pb.ActionResult:
        from supervisor.states import State
        from supervisor.supervise import LocalLocation

        if action == "stop":
            await location.stop("stop requested")
        elif action == "start":
            if getattr(location, "launchable", True) is None:
                return pb.ActionResult(
                    location=location.name, ok=False, message="its environment is not built"
                )
            if isinstance(location, LocalLocation):
                location.reset()
            location.start()
        else:
            await location.restart()
        await wait_settled(location, location.spec.startup_timeout + 5)
        state = location.state
        ok = state in ({State.STOPPED} if action == "stop" else {State.SERVING, State.LOAD_ERROR})
        return pb.ActionResult(location=location.name, ok=ok, message=state.value)

    async def Start(self, request, context):
        return await self._act(request, context, "start")

    async def Stop(self, request, context):
        return await self._act(request, context, "stop")

    async def Restart(self, request, context):
        return await self._act(request, context, "restart")

    async def Reload(self, request, context):
        try:
            changes = await self.supervisor.reload()
        except WorkspaceError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        except SupervisorError as exc:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(exc))
        return pb.ActionReply(
            results=[pb.ActionResult(location=n, ok=ok, message=m) for n, ok, m in changes]
        )

    async def ListDefinitions(self, request, context):
        try:
            chosen = self.supervisor.select(list(request.locations), request.all)
        except SupervisorError as exc:
            await context.abort(grpc.StatusCode.NOT_FOUND, str(exc))
        replies = await asyncio.gather(*(_definitions(loc) for loc in chosen))
        return pb.DefinitionsList(locations=replies)

    async def Materialize(self, request, context):
        from supervisor import materialize

        try:
            location, selection = await materialize.resolve(
                self.supervisor, list(request.assets), request.location, request.all
            )
        except SupervisorError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        async for event in materialize.run(
            self.supervisor, self.supervisor.store, location, selection, request.upstream
        ):
            yield event

    async def CancelRun(self, request, context):
        from supervisor._proto import codeserver_pb2_grpc

        try:
            run = self.supervisor.store.get_run(request.run_id)
        except SupervisorError as exc:
            await context.abort(grpc.StatusCode.NOT_FOUND, str(exc))
        location = self.supervisor.locations.get(run["location"])
        if run["status"] != "STARTED" or location is None or location.channel is None:
            return pb.CancelRunReply(found=False)
        stub = codeserver_pb2_grpc.CodeServerStub(location.channel)
        reply = await stub.CancelRun(cs.CancelRunRequest(run_id=run["id"]), timeout=10)
        return pb.CancelRunReply(found=reply.found)

    async def Shutdown(self, request, context):
        # Answer first, then stop: the caller waits for the lock to go, not for this reply.
        asyncio.get_running_loop().call_soon(self.supervisor.request_stop, 0)
        return pb.ShutdownReply()


async def _definitions(location: Location) -> cs.DefinitionsReply:
    try:
        reply = await location.definitions()
        # The workspace's name for it, whatever the server calls itself.
        reply.location_name = location.name
        return reply
    except SupervisorError as exc:
        reply = cs.DefinitionsReply(location_name=location.name)
        reply.load_error.message = str(exc)
        return reply


async def wait_settled(location: Location, timeout: float) -> None:
    """Wait until the location reaches a state that is not on its way elsewhere."""
    from supervisor.supervise import SETTLED

    deadline = time.monotonic() + timeout
    while location.state not in SETTLED and time.monotonic() < deadline:
        await asyncio.sleep(0.02)


async def serve_control(supervisor: Supervisor, path: Path) -> grpc.aio.Server:
    """Serve the control service on PATH (mode 0600)."""
    if path.exists():
        path.unlink()
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    control_pb2_grpc.add_SupervisorServicer_to_server(ControlServicer(supervisor), server)
    old = os.umask(0o177)
    try:
        server.add_insecure_port("unix:" + str(path))
        await server.start()
    finally:
        os.umask(old)
    path.chmod(0o600)
    return server


class ControlClient:
    """The CLI's way to a running supervisor, found through the workspace file."""

    def __init__(self, workspace_file: Path, timeout: float = 30.0) -> None:
        self.workspace_file = workspace_file
        state = statefile.read_owner(statefile.state_dir_of(workspace_file)) or {}
        self.path = Path(state.get("control_socket") or statefile.control_socket(workspace_file))
        if not self.path.exists():
            raise SupervisorError(
                f"no supervisor is running for {workspace_file}; start one with"
                f" `supervisor up -w {workspace_file}`"
            )
        self.timeout = timeout
        self._channel = grpc.insecure_channel("unix:" + str(self.path), options=CHANNEL_OPTIONS)
        self._stub = control_pb2_grpc.SupervisorStub(self._channel)

    def __enter__(self) -> ControlClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self._channel.close()

    def call(self, name: str, request: Any, timeout: float | None = None) -> Any:
        """Call one control method; one clear SupervisorError for every failure."""
        try:
            return getattr(self._stub, name)(request, timeout=timeout or self.timeout)
        except grpc.RpcError as exc:
            code = exc.code() if hasattr(exc, "code") else None
            if code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND):
                raise UsageError(f"{exc.details()}") from None
            if code == grpc.StatusCode.UNAVAILABLE:
                raise SupervisorError(
                    f"no supervisor answers for {self.workspace_file} ({self.path});"
                    f" start one with `supervisor up -w {self.workspace_file}`"
                ) from None
            raise SupervisorError(f"{exc.details()}") from None

    def stream(self, name: str, request: Any) -> Any:
        """Start a server-streaming call; iterate it through `events`."""
        return getattr(self._stub, name)(request)

    def events(self, call: Any) -> Any:
        """Yield a streaming call's messages; one clear SupervisorError for every failure."""
        try:
            yield from call
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.CANCELLED:
                return
            if exc.code() in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND):
                raise UsageError(f"{exc.details()}") from None
            raise SupervisorError(f"{exc.details()}") from None
