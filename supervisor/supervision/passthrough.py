"""A stable address in front of a Dagster location's code servers: a gRPC pass-through.

A Dagster server cannot hand its Unix socket to a successor (a new socket renamed over the
old path vanished when the old server exited), and TCP with SO_REUSEPORT, which works (two
servers on one port, the old one drained), would give up the socket's 0600 permissions for a
loopback port any local user can reach. So the supervisor serves the location's one address
itself, on a private Unix socket, and forwards every call as raw bytes to whichever server is
current: a restart or a reload switches the target at once, calls in flight finish on the
server they started on, and a client holding the address (a Dagster webserver) never sees
the change. Methods are forwarded by name; those that stream their answer are listed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import grpc

# Dagster's server-streaming calls (dagster 1.13's api.DagsterApi) and the health Watch; every
# other method is forwarded as unary. Dagster has no client-streaming calls.
STREAMING = frozenset(
    {
        "/api.DagsterApi/StreamingPing",
        "/api.DagsterApi/ExternalPartitionSetExecutionParams",
        "/api.DagsterApi/StreamingExternalRepository",
        "/api.DagsterApi/ExternalScheduleExecution",
        "/api.DagsterApi/ExternalSensorExecution",
        "/grpc.health.v1.Health/Watch",
    }
)


# How long a call waits for a server while one is coming up (a start, a back-off).
HOLD_SECONDS = 10.0


def _identity(data: bytes) -> bytes:
    return data


def _status_of(error: grpc.RpcError) -> tuple[grpc.StatusCode, str]:
    code = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
    details = error.details() if hasattr(error, "details") else str(error)
    return code, details or ""


class PassThrough:
    """Serves ADDRESS (a Unix socket path) and forwards each call to `target()`'s channel.

    While there is none and `coming()` says one is on its way, a call waits for it (up to
    HOLD_SECONDS, and its own deadline); `notify()` says a new one is there."""

    def __init__(
        self,
        socket_path: Path,
        target: Callable[[], grpc.aio.Channel | None],
        coming: Callable[[], bool] = lambda: False,
    ) -> None:
        self.socket_path = socket_path
        self.address = "unix:" + str(socket_path)
        self._handler = _Handler(target, coming)
        self._server: grpc.aio.Server | None = None

    def notify(self) -> None:
        """A server is current now: wake the calls waiting for one."""
        self._handler.arrived.set()
        self._handler.arrived = asyncio.Event()

    async def start(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()
        server = grpc.aio.server()
        server.add_generic_rpc_handlers((self._handler,))
        old = os.umask(0o177)  # the socket file: 0600 (in a 0700 folder), as every one of ours
        try:
            server.add_insecure_port(self.address)
            await server.start()
        finally:
            os.umask(old)
        self._server = server

    async def stop(self, grace: float = 1.0) -> None:
        if self._server is not None:
            await self._server.stop(grace)
            self._server = None
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()


class _Handler(grpc.GenericRpcHandler):
    def __init__(
        self, channel: Callable[[], grpc.aio.Channel | None], coming: Callable[[], bool]
    ) -> None:
        self._channel = channel
        self._coming = coming
        self.arrived = asyncio.Event()

    def service(self, handler_call_details: Any) -> grpc.RpcMethodHandler[bytes, bytes]:
        method = str(handler_call_details.method)
        if method in STREAMING:
            return grpc.unary_stream_rpc_method_handler(
                self._streaming(method), request_deserializer=None, response_serializer=None
            )
        return grpc.unary_unary_rpc_method_handler(
            self._unary(method), request_deserializer=None, response_serializer=None
        )

    async def _current(self, context: grpc.aio.ServicerContext[bytes, bytes]) -> grpc.aio.Channel:
        """The current server's channel; the call fails UNAVAILABLE while there is none (once
        it has waited for one that is coming up)."""
        deadline = time.monotonic() + HOLD_SECONDS
        channel = self._channel()
        while channel is None and self._coming():
            left = deadline - time.monotonic()
            own = context.time_remaining()
            if own is not None:
                left = min(left, own - 0.1)
            if left <= 0:
                break
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.arrived.wait(), left)
            channel = self._channel()
        if channel is None:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "no code server is serving")
        return channel

    def _unary(self, method: str) -> Callable[[bytes, grpc.aio.ServicerContext[bytes, bytes]], Any]:
        async def forward(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
            channel = await self._current(context)
            call = channel.unary_unary(
                method, request_serializer=_identity, response_deserializer=_identity
            )
            try:
                reply: bytes = await call(
                    request,
                    timeout=context.time_remaining(),
                    metadata=_passed_on(context),
                )
            except grpc.RpcError as error:
                await context.abort(*_status_of(error))
            return reply

        return forward

    def _streaming(
        self, method: str
    ) -> Callable[[bytes, grpc.aio.ServicerContext[bytes, bytes]], AsyncIterator[bytes]]:
        async def forward(
            request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]
        ) -> AsyncIterator[bytes]:
            channel = await self._current(context)
            call = channel.unary_stream(
                method, request_serializer=_identity, response_deserializer=_identity
            )
            try:
                async for reply in call(
                    request,
                    timeout=context.time_remaining(),
                    metadata=_passed_on(context),
                ):
                    yield reply
            except grpc.RpcError as error:
                await context.abort(*_status_of(error))

        return forward


def _passed_on(context: grpc.aio.ServicerContext[bytes, bytes]) -> list[tuple[str, str | bytes]]:
    """The caller's metadata, less what gRPC sets itself on every call."""
    return [
        (key, value)
        for key, value in context.invocation_metadata() or ()
        if not key.startswith(("grpc-", ":")) and key != "user-agent"
    ]
