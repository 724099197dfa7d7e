"""The host's client of a code server; one chokepoint turns gRPC failures into CodeServerError."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import grpc

from supervisor._proto import codeserver_pb2 as pb
from supervisor._proto import codeserver_pb2_grpc, health_pb2, health_pb2_grpc
from supervisor.errors import CodeServerError

DEFAULT_TIMEOUT = 10.0
# gRPC's default reconnect back-off (about 1 s) would make every early call slow.
CHANNEL_OPTIONS = [
    ("grpc.initial_reconnect_backoff_ms", 50),
    ("grpc.min_reconnect_backoff_ms", 50),
    ("grpc.max_reconnect_backoff_ms", 500),
    ("grpc.enable_http_proxy", 0),
]


def normalize_address(address: str) -> str:
    """Turn "host:port", "PORT", a socket path or "unix:PATH" into a gRPC target."""
    address = address.strip()
    if address.startswith("unix:"):
        return address
    if address.startswith(("/", "./", "../")) or (os.sep in address and ":" not in address):
        return "unix:" + os.path.abspath(address)
    if address.isdigit():
        return "127.0.0.1:" + address
    return address


def _reason(error: grpc.RpcError, timeout: float) -> str:
    code = error.code() if hasattr(error, "code") else None
    details = error.details() if hasattr(error, "details") else str(error)
    if code == grpc.StatusCode.UNAVAILABLE:
        return f"no code server answers ({details})"
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return f"no answer within {timeout:g}s"
    name = code.name if code is not None else "ERROR"
    return f"{name}: {details}"


class CodeServerClient:
    """Calls one code server at ADDRESS on behalf of LOCATION (named in every error)."""

    def __init__(self, address: str, location: str = "", timeout: float = DEFAULT_TIMEOUT):
        self.address = normalize_address(address)
        self.location = location
        self.timeout = timeout
        self._channel = grpc.insecure_channel(self.address, options=CHANNEL_OPTIONS)
        self._stub = codeserver_pb2_grpc.CodeServerStub(self._channel)
        self._health = health_pb2_grpc.HealthStub(self._channel)

    def __enter__(self) -> CodeServerClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._channel.close()

    def _call(self, name: str, method: Any, request: Any, timeout: float | None) -> Any:
        timeout = self.timeout if timeout is None else timeout
        try:
            return method(request, timeout=timeout)
        except grpc.RpcError as error:
            raise CodeServerError(
                self.location, name, self.address, _reason(error, timeout)
            ) from None

    def ping(self, echo: str = "", timeout: float | None = None) -> pb.PingReply:
        return self._call("Ping", self._stub.Ping, pb.PingRequest(echo=echo), timeout)

    def server_info(self, timeout: float | None = None) -> pb.ServerInfo:
        return self._call(
            "GetServerInfo", self._stub.GetServerInfo, pb.GetServerInfoRequest(), timeout
        )

    def list_definitions(self, timeout: float | None = None) -> pb.DefinitionsReply:
        return self._call(
            "ListDefinitions", self._stub.ListDefinitions, pb.ListDefinitionsRequest(), timeout
        )

    def heartbeat(self, sender: str = "supervisor", timeout: float | None = None) -> None:
        self._call("Heartbeat", self._stub.Heartbeat, pb.HeartbeatRequest(sender=sender), timeout)

    def shutdown(self, reason: str = "", timeout: float | None = None) -> None:
        self._call("Shutdown", self._stub.Shutdown, pb.ShutdownRequest(reason=reason), timeout)

    def materialize(
        self,
        selection: list[str],
        upstream: bool = False,
        values_dir: str = "",
        run_id: str = "",
        timeout: float | None = None,
    ) -> Iterator[pb.RunEvent]:
        """Run the selection on the server; yield the run's events as they come."""
        request = pb.MaterializeRequest(
            run_id=run_id, selection=selection, upstream=upstream, values_dir=values_dir
        )
        try:
            yield from self._stub.Materialize(request, timeout=timeout)
        except grpc.RpcError as error:
            raise CodeServerError(
                self.location, "Materialize", self.address, _reason(error, timeout or 0)
            ) from None

    def cancel_run(self, run_id: str, timeout: float | None = None) -> bool:
        reply = self._call(
            "CancelRun", self._stub.CancelRun, pb.CancelRunRequest(run_id=run_id), timeout
        )
        return reply.found

    def inspect(self, timeout: float | None = None) -> pb.InspectReply:
        return self._call("Inspect", self._stub.Inspect, pb.InspectRequest(), timeout)

    def health(self, service: str = "", timeout: float | None = None) -> str:
        """Return the health status name ("SERVING", "NOT_SERVING", ...)."""
        reply = self._call(
            "Health.Check",
            self._health.Check,
            health_pb2.HealthCheckRequest(service=service),
            timeout,
        )
        return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)


def definitions_to_dict(reply: pb.DefinitionsReply) -> dict[str, Any]:
    """Return the JSON shape of `ls` for one location."""
    return {
        "location": reply.location_name,
        "assets": [
            {
                "key": a.key,
                "deps": list(a.deps),
                "group": a.group,
                "description": a.description,
                "resources": list(a.resources),
            }
            for a in reply.assets
        ],
        "resources": list(reply.resources),
        "schedules": [
            {
                "name": s.name,
                "cron": s.cron,
                "targets": list(s.targets),
                "description": s.description,
            }
            for s in reply.schedules
        ],
        "load_error": load_error_text(reply),
    }


def load_error_text(reply: pb.DefinitionsReply | pb.ServerInfo) -> str | None:
    """Return the load error's message and traceback as one text, or None."""
    if not reply.HasField("load_error"):
        return None
    error = reply.load_error
    return error.message + ("\n" + error.traceback if error.traceback else "")


def facts_to_dict(reply: pb.InspectReply) -> dict[str, Any]:
    """The facts of an Inspect reply as plain data, the shape `checks` works on."""
    return {
        "python": {
            "version": reply.python_version,
            "implementation": reply.implementation,
            "executable": reply.executable,
            "prefix": reply.prefix,
            "base_prefix": reply.base_prefix,
        },
        "paths": dict(reply.paths),
        "sys_path": list(reply.sys_path),
        "environ": dict(reply.environ),
        "markers": dict(reply.markers),
        "distributions": [
            {
                "name": d.name,
                "version": d.version,
                "location": d.location,
                "requires": list(d.requires),
            }
            for d in reply.distributions
        ],
        "runtime_path": reply.runtime_path,
    }
