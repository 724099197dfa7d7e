"""Asking a code server whether it lives: the standard health check, and heartbeats."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import grpc

from supervisor._proto import codeserver_pb2 as pb
from supervisor._proto import codeserver_pb2_grpc, health_pb2, health_pb2_grpc


async def health_problem(channel: grpc.aio.Channel | None, timeout: float) -> str | None:
    """Return what is wrong with the server behind CHANNEL, or None when it is SERVING."""
    if channel is None:
        return "no channel"
    stub = health_pb2_grpc.HealthStub(channel)
    try:
        reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=timeout)
    except grpc.RpcError as exc:
        code = exc.code() if hasattr(exc, "code") else None
        if code == grpc.StatusCode.DEADLINE_EXCEEDED:
            return f"no answer within {timeout:g}s"
        return f"{code.name if code else 'error'}: {exc.details()}"
    if reply.status != health_pb2.HealthCheckResponse.SERVING:
        return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    return None


async def send_heartbeats(channel: Callable[[], grpc.aio.Channel | None], period: float) -> None:
    """Send a Heartbeat every PERIOD seconds to whichever server CHANNEL() leads to."""
    while True:
        current = channel()
        if current is not None:
            stub = codeserver_pb2_grpc.CodeServerStub(current)
            with contextlib.suppress(grpc.RpcError):
                await stub.Heartbeat(pb.HeartbeatRequest(sender="supervisor"), timeout=period)
        await asyncio.sleep(period)
