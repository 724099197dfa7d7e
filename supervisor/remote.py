"""Supervise a remote location (grpc_server): never started here, only health-checked.

CONNECTING until the first answer, then SERVING (or LOAD_ERROR when the remote
server reports one) and UNREACHABLE when it stops answering; it comes back on
its own, with its definitions read again, once the server answers again.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

import grpc

from supervisor._proto import codeserver_pb2 as pb
from supervisor._proto import codeserver_pb2_grpc
from supervisor.client import CHANNEL_OPTIONS
from supervisor.errors import CodeServerError
from supervisor.logs import Console
from supervisor.probes import health_problem
from supervisor.states import State, StateMachine, Transition
from supervisor.workspace import LocationSpec


def remote_address(spec: LocationSpec) -> str:
    if spec.socket:
        return "unix:" + spec.socket
    return f"{spec.host}:{spec.port}"


class RemoteLocation:
    """A code server that runs elsewhere, watched over gRPC."""

    def __init__(self, spec: LocationSpec, console: Console, on_change: Callable[[], None]):
        self.spec = spec
        self.name = spec.name
        self.machine = StateMachine(remote=True, name=spec.name)
        self.console = console
        self.on_change = on_change
        self.address = remote_address(spec)
        self.process = None
        self.load_error: str | None = None
        self.python_version = ""
        self.pid: int | None = None
        self.definitions_cache: pb.DefinitionsReply | None = None
        self._channel: grpc.aio.Channel | None = None
        self._task: asyncio.Task[None] | None = None
        self.machine.add_listener(self._report)

    @property
    def channel(self) -> grpc.aio.Channel | None:
        """The channel to use for calls: none while the server is away (fail at once)."""
        return self._channel if self.state in (State.SERVING, State.LOAD_ERROR) else None

    @property
    def state(self) -> State:
        return self.machine.state

    def move(self, to: State, reason: str, error: bool = False) -> None:
        if self.machine.state is not to:
            self.machine.move(to, reason, time.time(), error=error)

    def start(self, launchable: object = None) -> None:
        if self._task is not None and not self._task.done():
            return
        self._channel = grpc.aio.insecure_channel(self.address, options=CHANNEL_OPTIONS)
        self.move(State.CONNECTING, f"connecting to {self.address}")
        self._task = asyncio.create_task(self._watch(), name=f"remote-{self.name}")

    async def stop(self, reason: str = "stop requested") -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._channel is not None:
            await self._channel.close()
            self._channel = None
        self.move(State.STOPPED, reason)

    async def restart(self) -> None:
        await self.stop("restart requested")
        self.start()

    async def definitions(self, timeout: float = 10.0) -> pb.DefinitionsReply:
        if self.state not in (State.SERVING, State.LOAD_ERROR) or self._channel is None:
            # Fail at once: a call to a server known to be away would only wait for its timeout.
            raise CodeServerError(
                self.name,
                "ListDefinitions",
                self.address,
                f"the remote code server is {self.state.value}: {self.machine.last_error or ''}",
            )
        stub = codeserver_pb2_grpc.CodeServerStub(self._channel)
        try:
            reply = await stub.ListDefinitions(pb.ListDefinitionsRequest(), timeout=timeout)
        except grpc.RpcError as exc:
            raise CodeServerError(
                self.name, "ListDefinitions", self.address, str(exc.details())
            ) from None
        self.definitions_cache = reply
        return reply

    async def _watch(self) -> None:
        health = self.spec.health
        while True:
            problem = await health_problem(self._channel, health.timeout)
            if problem is None:
                if self.state not in (State.SERVING, State.LOAD_ERROR):
                    await self._refresh()
            else:
                self.pid = None
                self.move(State.UNREACHABLE, f"{self.address}: {problem}", error=True)
            await asyncio.sleep(health.interval)

    async def _refresh(self) -> None:
        """Read the server's identity and definitions again: a new server may bring new code."""
        assert self._channel is not None
        stub = codeserver_pb2_grpc.CodeServerStub(self._channel)
        try:
            info = await stub.GetServerInfo(
                pb.GetServerInfoRequest(), timeout=self.spec.health.timeout * 5
            )
            self.definitions_cache = await stub.ListDefinitions(
                pb.ListDefinitionsRequest(), timeout=self.spec.health.timeout * 5
            )
        except grpc.RpcError as exc:
            self.move(
                State.UNREACHABLE, f"answers health checks but not calls: {exc.details()}", True
            )
            return
        self.pid = info.pid
        self.python_version = info.python_version
        if info.HasField("load_error"):
            self.load_error = info.load_error.message
            self.move(State.LOAD_ERROR, info.load_error.message, error=True)
        else:
            self.load_error = None
            self.move(State.SERVING, f"answering at {self.address} (pid {info.pid})")

    def _report(self, transition: Transition) -> None:
        self.console.line(self.name, f"[{transition.to_state.value}] {transition.reason}")
        self.on_change()
