"""The standard gRPC health service, served from our own copy of its .proto."""

from __future__ import annotations

import threading
from typing import Callable, Iterator

import grpc

from supervisor._proto import health_pb2, health_pb2_grpc

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
SERVICE_UNKNOWN = health_pb2.HealthCheckResponse.SERVICE_UNKNOWN

# How often a Watch stream looks whether its client has gone; only Watch waits.
_WATCH_RECHECK_SECONDS = 1.0


class HealthServicer(health_pb2_grpc.HealthServicer):
    """Check and Watch over a map of service name -> status ("" is the whole server)."""

    def __init__(self) -> None:
        self._statuses: dict[str, int] = {}
        self._changed = threading.Condition()
        # A health check is a sign of life from whoever watches us, like a Heartbeat.
        self.on_check: Callable[[], None] | None = None

    def set(self, service: str, status: int) -> None:
        """Set one service's status and wake every watcher."""
        with self._changed:
            self._statuses[service] = status
            self._changed.notify_all()

    def set_all(self, status: int) -> None:
        """Set every known service's status (used when the server stops)."""
        with self._changed:
            for service in self._statuses:
                self._statuses[service] = status
            self._changed.notify_all()

    def Check(self, request, context):
        if self.on_check is not None:
            self.on_check()
        with self._changed:
            status = self._statuses.get(request.service)
        if status is None:
            context.abort(grpc.StatusCode.NOT_FOUND, "unknown service " + repr(request.service))
        return health_pb2.HealthCheckResponse(status=status)

    def Watch(self, request, context) -> Iterator[health_pb2.HealthCheckResponse]:
        last = None
        while context.is_active():
            with self._changed:
                status = self._statuses.get(request.service, SERVICE_UNKNOWN)
                if status == last:
                    self._changed.wait(_WATCH_RECHECK_SECONDS)
                    continue
            last = status
            yield health_pb2.HealthCheckResponse(status=status)
