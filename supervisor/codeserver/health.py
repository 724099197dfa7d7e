"""The standard gRPC health service, served from our own copy of its .proto."""

from __future__ import annotations

import threading
import time
from typing import Callable, Iterator

import grpc

from supervisor._proto import health_pb2, health_pb2_grpc

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
SERVICE_UNKNOWN = health_pb2.HealthCheckResponse.SERVICE_UNKNOWN

# How often a Watch stream looks whether its client has gone; only Watch waits.
_WATCH_RECHECK_SECONDS = 1.0
MIN_BEAT_SECONDS = 0.05


class HealthServicer(health_pb2_grpc.HealthServicer):
    """Check and Watch over a map of service name -> status ("" is the whole server)."""

    def __init__(self) -> None:
        self._statuses: dict[str, int] = {}
        self._changed = threading.Condition()
        self._beating: set[threading.Event] = set()  # one per Beats call, set to end it
        self._closed = False
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

    def beats(self, interval: float, context) -> Iterator[str]:
        """The whole server's status name: at once, then at every whole multiple of INTERVAL
        on the monotonic clock (the supervisor's clock too: the beats of all its servers come
        in one turn of its loop), until the call ends. Each beat is a sign of life."""
        interval = max(interval, MIN_BEAT_SECONDS)
        ended = threading.Event()
        context.add_callback(ended.set)
        with self._changed:
            if self._closed:
                return
            self._beating.add(ended)
        try:
            while context.is_active():
                if self.on_check is not None:
                    self.on_check()
                with self._changed:
                    status = self._statuses.get("", SERVICE_UNKNOWN)
                yield health_pb2.HealthCheckResponse.ServingStatus.Name(status)
                now = time.monotonic()
                if ended.wait((now // interval + 1) * interval - now):
                    return
        finally:
            with self._changed:
                self._beating.discard(ended)
                self._changed.notify_all()

    def close(self, timeout: float = 1.0) -> None:
        """End every Beats call, now and to come, and wait up to TIMEOUT for them to end: a
        stopping server waits for no stream, and cuts none (gRPC logs a cut one)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            self._closed = True
            for ended in self._beating:
                ended.set()
            while self._beating and time.monotonic() < deadline:
                self._changed.wait(deadline - time.monotonic())
