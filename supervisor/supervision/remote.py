"""Supervise a remote location (grpc_server): never started here, only health-checked.

CONNECTING until the first answer, then SERVING (or LOAD_ERROR when the remote
server reports one) and UNREACHABLE when it stops answering; it comes back on
its own, with its definitions read again, once the server answers again.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import grpc

from supervisor._proto import codeserver_pb2 as pb
from supervisor.control.codeserver import AsyncCodeServer, TlsSettings, aio_channel
from supervisor.errors import CodeServerError
from supervisor.supervision.clock import REAL_CLOCK, Clock
from supervisor.supervision.location import DEFINITIONS_TIMEOUT, UP, Location
from supervisor.supervision.logs import Console
from supervisor.supervision.probes import health_problem
from supervisor.supervision.states import State
from supervisor.workspace import LocationSpec

# While a remote server is away, probe at this share of the health interval.
AWAY_PROBE_SHARE = 0.2


def remote_address(spec: LocationSpec) -> str:
    if spec.socket:
        return "unix:" + spec.socket
    return f"{spec.host}:{spec.port}"


class RemoteLocation(Location):
    """A code server that runs elsewhere, watched over gRPC."""

    def __init__(
        self,
        spec: LocationSpec,
        console: Console,
        on_change: Callable[[], None],
        clock: Clock = REAL_CLOCK,
    ) -> None:
        super().__init__(spec, console, on_change, remote=True, clock=clock)
        self._address = remote_address(spec)
        # ssl: true trusts the system's roots (GRPC_DEFAULT_SSL_ROOTS_FILE_PATH overrides them).
        self._tls = TlsSettings() if spec.ssl else None
        self._python_version = ""
        self._pid: int | None = None
        self.definitions_cache: pb.DefinitionsReply | None = None
        self._channel: grpc.aio.Channel | None = None
        self._task: asyncio.Task[None] | None = None
        self._identify: asyncio.Task[None] | None = None

    @property
    def channel(self) -> grpc.aio.Channel | None:
        """The channel to use for calls: none while the server is away (fail at once)."""
        return self._channel if self.state in UP else None

    @property
    def address(self) -> str:
        return self._address

    @property
    def pid(self) -> int | None:
        return self._pid

    @property
    def python_version(self) -> str:
        return self._python_version

    async def bring_up(self) -> None:
        self.start()

    def start(self) -> str | None:
        if self._task is not None and not self._task.done():
            return None
        self._channel = aio_channel(self._address, self._tls)
        self.move(State.CONNECTING, f"connecting to {self._address}")
        self._task = self.run_guarded("watching the remote code server", self._watch())
        return None

    async def stop(self, reason: str = "stop requested") -> None:
        for task in (self._task, self._identify):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._task = self._identify = None
        if self._channel is not None:
            await self._channel.close()
            self._channel = None
        self.move(State.STOPPED, reason)

    async def restart(self) -> None:
        await self.stop("restart requested")
        self.start()

    async def definitions(self, timeout: float = DEFINITIONS_TIMEOUT) -> pb.DefinitionsReply:
        reply = await super().definitions(timeout)
        self.definitions_cache = reply
        return reply

    async def _watch(self) -> None:
        health = self.spec.health
        while True:
            away = self.state not in UP
            if away:
                # A fresh channel each time, with a connection of its own: an old one (or
                # a shared connection) would wait out gRPC's reconnect back-off, and the
                # server's return would be seen up to half a second late.
                await self._reopen()
            problem = await health_problem(self._server(), health.timeout)
            if problem is None:
                if away:
                    await self._refresh()
            else:
                self._pid = None
                self.move(State.UNREACHABLE, f"{self._address}: {problem}", error=True)
            # While away, look more often (a probe that is refused costs little), so that
            # a return is seen well within one interval.
            await self.clock.sleep(
                AWAY_PROBE_SHARE * health.interval if away or problem else health.interval
            )

    def _server(self) -> AsyncCodeServer | None:
        channel = self._channel
        client = None if channel is None else self.client_for(channel)
        return client if isinstance(client, AsyncCodeServer) else None

    async def _reopen(self) -> None:
        old, self._channel = (
            self._channel,
            aio_channel(self._address, self._tls, own_connection=True),
        )
        if old is not None:
            await old.close()

    async def _refresh(self) -> None:
        """Read the server's definitions again: a new server may bring new code.

        Ping and ListDefinitions are cheap; GetServerInfo lists installed distributions
        (slow on a server's first call), so it fills in the Python version afterwards.
        """
        server = self._server()
        assert server is not None, "refreshed only right after a probe on a fresh channel"
        timeout = self.spec.health.timeout * 5
        try:
            ping = await server.ping(timeout)
            reply = await server.list_definitions(timeout)
        except CodeServerError as exc:
            reason = f"{self._address}: answers health checks but not calls: {exc.reason}"
            self.move(State.UNREACHABLE, reason, error=True)
            return
        self.definitions_cache = reply
        self._pid = ping.pid
        if reply.HasField("load_error"):
            self.load_error = reply.load_error.message
            self.move(State.LOAD_ERROR, reply.load_error.message, error=True)
        else:
            self.load_error = None
            self.move(State.SERVING, f"answering at {self._address} (pid {ping.pid})")
        self._identify = asyncio.create_task(self._read_identity(server, timeout))

    async def _read_identity(self, server: AsyncCodeServer, timeout: float) -> None:
        # Only for status; a server that does not say is shown without a Python version.
        with contextlib.suppress(CodeServerError):
            info = await server.server_info(timeout)
            self._python_version = info.python_version
            self.report_change()
