"""The host's clients of a code server, blocking and asyncio; one function (`rpc_error`) turns
every gRPC failure of a call to a code server into a CodeServerError, with one wording."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import grpc

from supervisor._proto import codeserver_pb2 as pb
from supervisor._proto import codeserver_pb2_grpc, health_pb2, health_pb2_grpc
from supervisor.control.beats import BeatStream
from supervisor.errors import CodeServerError, SupervisorError

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


@dataclass(frozen=True)
class TlsSettings:
    """Connect with TLS, trusting ROOT_CERTIFICATES (PEM), or the system's roots when None."""

    root_certificates: bytes | None = None

    @classmethod
    def from_ca_file(cls, path: str | os.PathLike[str] | None) -> TlsSettings:
        """TLS trusting the PEM certificates in PATH, or the system's roots when PATH is None."""
        if path is None:
            return cls()
        try:
            with open(path, "rb") as handle:
                data = handle.read()
        except OSError as exc:
            raise SupervisorError(
                f"TLS CA file {os.fspath(path)}: cannot read it: {exc.strerror or exc}"
            ) from None
        if b"-----BEGIN CERTIFICATE-----" not in data:
            raise SupervisorError(
                f"TLS CA file {os.fspath(path)}: not a PEM certificate"
                " (no '-----BEGIN CERTIFICATE-----')"
            )
        return cls(data)

    def credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(root_certificates=self.root_certificates)


def _check_tls_target(target: str, tls: TlsSettings | None) -> None:
    if tls is not None and target.startswith("unix:"):
        raise SupervisorError(
            f"TLS applies to TCP addresses (HOST:PORT) only, not to the Unix socket {target}"
        )


def open_channel(address: str, tls: TlsSettings | None = None) -> grpc.Channel:
    """A blocking channel to the code server at ADDRESS, with TLS when TLS is given."""
    target = normalize_address(address)
    _check_tls_target(target, tls)
    if tls is None:
        return grpc.insecure_channel(target, options=CHANNEL_OPTIONS)
    return grpc.secure_channel(target, tls.credentials(), options=CHANNEL_OPTIONS)


# A channel with a connection of its own. By default gRPC shares one connection (a
# subchannel, with its reconnect back-off) among every channel to an address in the
# process, so a fresh channel to a server that was away would wait out the back-off the
# old ones built up (up to max_reconnect_backoff_ms, plus jitter).
OWN_CONNECTION = [("grpc.use_local_subchannel_pool", 1)]


def aio_channel(
    address: str, tls: TlsSettings | None = None, own_connection: bool = False
) -> grpc.aio.Channel:
    """A channel on the running event loop to the code server at ADDRESS (TLS when given);
    OWN_CONNECTION: one that shares no connection (nor its back-off) with other channels."""
    target = normalize_address(address)
    _check_tls_target(target, tls)
    options = CHANNEL_OPTIONS + (OWN_CONNECTION if own_connection else [])
    if tls is None:
        return grpc.aio.insecure_channel(target, options=options)
    return grpc.aio.secure_channel(target, tls.credentials(), options=options)


def rpc_reason(error: grpc.RpcError, timeout: float | None) -> str:
    """Say why a call failed, in the words every error about a code server uses."""
    code = error.code() if hasattr(error, "code") else None
    details = error.details() if hasattr(error, "details") else str(error)
    if code == grpc.StatusCode.UNAVAILABLE and "handshake failed" in str(details).lower():
        return f"the TLS handshake failed ({details})"
    if code == grpc.StatusCode.UNAVAILABLE:
        return f"no code server answers ({details})"
    if code == grpc.StatusCode.DEADLINE_EXCEEDED and timeout:
        return f"no answer within {timeout:g}s"
    name = code.name if code is not None else "ERROR"
    return f"{name}: {details}"


def rpc_error(
    error: grpc.RpcError,
    location: str,
    call: str,
    address: str,
    timeout: float | None,
    tls: TlsSettings | None = None,
) -> CodeServerError:
    """The one translation of a failed call to a code server."""
    reason = rpc_reason(error, timeout)
    details = (error.details() if hasattr(error, "details") else "") or ""
    # A TLS server drops a plaintext client's connection at once, and gRPC says only that.
    if tls is None and not address.startswith("unix:") and "socket closed" in details.lower():
        reason += "; if that server serves TLS, connect with TLS"
    return CodeServerError(location, call, address, reason)


class CodeServerClient:
    """Calls one code server at ADDRESS on behalf of LOCATION (named in every error)."""

    def __init__(
        self,
        address: str,
        location: str = "",
        timeout: float = DEFAULT_TIMEOUT,
        tls: TlsSettings | None = None,
    ):
        self.address = normalize_address(address)
        self.location = location
        self.timeout = timeout
        self.tls = tls
        self._channel = open_channel(self.address, tls)
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
            raise rpc_error(error, self.location, name, self.address, timeout, self.tls) from None

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
            raise rpc_error(
                error, self.location, "Materialize", self.address, timeout, self.tls
            ) from None

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


class AsyncCalls:
    """What every client of a code server on the supervisor's event loop shares: the one
    error translation, and the standard health check (ours and Dagster's serve it)."""

    def __init__(
        self,
        channel: grpc.aio.Channel,
        location: str,
        address: str,
        tls: TlsSettings | None = None,
    ) -> None:
        """TLS: what CHANNEL was opened with (`aio_channel(address, tls)`), for the errors."""
        self.location = location
        self.address = address
        self.tls = tls
        self._health = health_pb2_grpc.HealthStub(channel)

    async def _call(self, name: str, method: Any, request: Any, timeout: float) -> Any:
        try:
            return await method(request, timeout=timeout)
        except grpc.RpcError as error:
            raise self.failed(error, name, timeout) from None
        except asyncio.CancelledError:
            raise self.closed_under(name) from None

    def failed(self, error: grpc.RpcError, call: str, timeout: float | None) -> CodeServerError:
        """The error to raise for a CALL that failed with ERROR."""
        return rpc_error(error, self.location, call, self.address, timeout, self.tls)

    def closed_under(self, call: str) -> BaseException:
        """A call cancelled by its channel's close (the server went away, and its location
        closed the channel) is a failed call; a cancellation of our own task stays one.
        Python 3.10 cannot tell the two apart (no Task.cancelling): it keeps the cancel."""
        task = asyncio.current_task()
        cancelling = getattr(task, "cancelling", None)
        if cancelling is None or cancelling():
            return asyncio.CancelledError()
        why = "the channel closed under the call: the server went away"
        return CodeServerError(self.location, call, self.address, why)

    async def health(self, timeout: float) -> str:
        """The standard health check's status name ("SERVING", "NOT_SERVING", ...)."""
        request = health_pb2.HealthCheckRequest()
        reply = await self._call("Health.Check", self._health.Check, request, timeout)
        return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))


class AsyncCodeServer(AsyncCalls):
    """Calls, on the supervisor's event loop, the code server of ours behind CHANNEL."""

    def __init__(
        self,
        channel: grpc.aio.Channel,
        location: str,
        address: str,
        tls: TlsSettings | None = None,
    ) -> None:
        super().__init__(channel, location, address, tls)
        self._stub = codeserver_pb2_grpc.CodeServerStub(channel)

    async def ping(self, timeout: float = DEFAULT_TIMEOUT) -> pb.PingReply:
        return await self._call("Ping", self._stub.Ping, pb.PingRequest(), timeout)

    async def server_info(self, timeout: float = DEFAULT_TIMEOUT) -> pb.ServerInfo:
        request = pb.GetServerInfoRequest()
        return await self._call("GetServerInfo", self._stub.GetServerInfo, request, timeout)

    async def list_definitions(self, timeout: float = DEFAULT_TIMEOUT) -> pb.DefinitionsReply:
        request = pb.ListDefinitionsRequest()
        return await self._call("ListDefinitions", self._stub.ListDefinitions, request, timeout)

    async def inspect(self, timeout: float = DEFAULT_TIMEOUT) -> pb.InspectReply:
        return await self._call("Inspect", self._stub.Inspect, pb.InspectRequest(), timeout)

    async def cancel_run(self, run_id: str, timeout: float = DEFAULT_TIMEOUT) -> bool:
        request = pb.CancelRunRequest(run_id=run_id)
        reply = await self._call("CancelRun", self._stub.CancelRun, request, timeout)
        return bool(reply.found)

    async def heartbeat(self, timeout: float) -> None:
        request = pb.HeartbeatRequest(sender="supervisor")
        await self._call("Heartbeat", self._stub.Heartbeat, request, timeout)

    def beats(self, interval: float) -> BeatStream:
        """Open a Beats stream: the server's health at once, then every INTERVAL seconds."""
        return BeatStream(self, self._stub.Beats(pb.BeatsRequest(interval=interval)))

    async def materialize(self, request: pb.MaterializeRequest) -> AsyncIterator[pb.RunEvent]:
        """Run a selection on the server; yield the run's events as they come."""
        call = self._stub.Materialize(request)
        try:
            async for event in call:
                yield event
        except grpc.RpcError as error:
            raise rpc_error(
                error, self.location, "Materialize", self.address, None, self.tls
            ) from None
        except asyncio.CancelledError:
            raise self.closed_under("Materialize") from None


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
        "jobs": list(reply.jobs),
        "sensors": list(reply.sensors),
        "runtime": reply.runtime or "supervisor",
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
