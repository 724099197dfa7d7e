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

# While a remote server is away, probe at this share of the health interval.
AWAY_PROBE_SHARE = 0.2


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
            away = self.state not in (State.SERVING, State.LOAD_ERROR)
            if away:
                # A fresh channel each time: an old one would wait out gRPC's reconnect
                # back-off, and the server's return would be seen late.
                await self._reopen()
            problem = await health_problem(self._channel, health.timeout)
            if problem is None:
                if away:
                    await self._refresh()
            else:
                self.pid = None
                self.move(State.UNREACHABLE, f"{self.address}: {problem}", error=True)
            # While away, look more often (a probe that is refused costs little), so that
            # a return is seen well within one interval.
            await asyncio.sleep(
                AWAY_PROBE_SHARE * health.interval if away or problem else health.interval
            )

    async def _reopen(self) -> None:
        old, self._channel = (
            self._channel,
            grpc.aio.insecure_channel(self.address, options=CHANNEL_OPTIONS),
        )
        if old is not None:
            await old.close()

    async def _refresh(self) -> None:
        """Read the server's definitions again: a new server may bring new code.

        Ping and ListDefinitions are cheap; GetServerInfo lists installed distributions
        (slow on a server's first call), so it fills in the Python version afterwards.
        """
        assert self._channel is not None
        stub = codeserver_pb2_grpc.CodeServerStub(self._channel)
        timeout = self.spec.health.timeout * 5
        try:
            ping = await stub.Ping(pb.PingRequest(), timeout=timeout)
            reply = await stub.ListDefinitions(pb.ListDefinitionsRequest(), timeout=timeout)
        except grpc.RpcError as exc:
            reason = f"{self.address}: answers health checks but not calls: {exc.details()}"
            self.move(State.UNREACHABLE, reason, error=True)
            return
        self.definitions_cache = reply
        self.pid = ping.pid
        if reply.HasField("load_error"):
            self.load_error = reply.load_error.message
            self.move(State.LOAD_ERROR, reply.load_error.message, error=True)
        else:
            self.load_error = None
            self.move(State.SERVING, f"answering at {self.address} (pid {ping.pid})")
        self._identify = asyncio.create_task(self._read_identity(stub, timeout))

    async def _read_identity(
        self, stub: codeserver_pb2_grpc.CodeServerStub, timeout: float
    ) -> None:
        with contextlib.suppress(grpc.RpcError):
            info = await stub.GetServerInfo(pb.GetServerInfoRequest(), timeout=timeout)
            self.python_version = info.python_version
            self.on_change()

    def _report(self, transition: Transition) -> None:
        self.console.line(self.name, f"[{transition.to_state.value}] {transition.reason}")
        self.on_change()
