"""The client of a real Dagster code server (`dagster api grpc`), on the supervisor's loop.

Dagster's calls carry its serialized JSON ("serdes": objects as {"__class__": ..., ...});
the host has no dagster, so the few shapes read here are read as plain JSON and turned into
our own messages: a location's snapshot becomes the DefinitionsReply that `ls` shows for
every location, ours or Dagster's. Errors are CodeServerErrors, as for our own servers.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import grpc

from supervisor._proto import codeserver_pb2 as pb
from supervisor._proto_host import dagster_api_pb2 as api
from supervisor._proto_host import dagster_api_pb2_grpc as api_grpc
from supervisor.control.codeserver import AsyncCalls, normalize_address, rpc_error
from supervisor.errors import CodeServerError

# The job Dagster makes of all assets, which nobody defined.
IMPLICIT_JOBS = ("__ASSET_JOB",)
SNAPSHOT_TIMEOUT = 60.0


class AsyncDagsterServer(AsyncCalls):
    """Calls the Dagster code server behind CHANNEL (errors name LOCATION and ADDRESS)."""

    def __init__(self, channel: grpc.aio.Channel, location: str, address: str) -> None:
        super().__init__(channel, location, address)
        self._stub = api_grpc.DagsterApiStub(channel)

    async def ping(self, timeout: float) -> None:
        await self._call("Ping", self._stub.Ping, api.PingRequest(echo="supervisor"), timeout)

    async def health(self, timeout: float) -> str:
        """The standard health check, and a Ping: Dagster's health service always says
        SERVING while its process lives, the Ping shows that it still answers calls."""
        status = await super().health(timeout)
        if status == "SERVING":
            await self.ping(timeout)
        return status

    async def heartbeat(self, timeout: float) -> None:
        """Keep a server started with `--heartbeat` alive."""
        request = api.PingRequest(echo="supervisor")
        await self._call("Heartbeat", self._stub.Heartbeat, request, timeout)

    async def server_id(self, timeout: float) -> str:
        reply = await self._call("GetServerId", self._stub.GetServerId, api.Empty(), timeout)
        return str(reply.server_id)

    async def _repositories(self, timeout: float) -> dict[str, Any]:
        """ListRepositories' answer: Dagster's response, or its SerializableErrorInfo."""
        reply = await self._call(
            "ListRepositories", self._stub.ListRepositories, api.ListRepositoriesRequest(), timeout
        )
        return self._json("ListRepositories", reply.serialized_list_repositories_response_or_error)

    async def load_error(self, timeout: float) -> str | None:
        """Dagster's error when the location's code did not load; None when it did."""
        answer = await self._repositories(timeout)
        return None if _is_response(answer) else error_text(answer)

    async def list_definitions(self, timeout: float = SNAPSHOT_TIMEOUT) -> pb.DefinitionsReply:
        """The location's definitions in our shape (its load error when it did not load)."""
        answer = await self._repositories(timeout)
        if not _is_response(answer):
            return pb.DefinitionsReply(
                location_name=self.location, runtime="dagster", load_error=load_error_from(answer)
            )
        reply = pb.DefinitionsReply(location_name=self.location, runtime="dagster")
        for symbol in answer.get("repository_symbols") or []:
            data = await self._repository(str(symbol.get("repository_name", "")), timeout)
            merge_repository(reply, data)
        return reply

    async def _repository(self, name: str, timeout: float) -> dict[str, Any]:
        """The snapshot of repository NAME (Dagster streams it in chunks)."""
        origin = repository_origin(self.location, self.address, name)
        request = api.ExternalRepositoryRequest(
            serialized_repository_python_origin=json.dumps(origin)
        )
        chunks: list[str] = []
        try:
            call = self._stub.StreamingExternalRepository(request, timeout=timeout)
            async for event in call:
                chunks.append(event.serialized_external_repository_chunk)
        except grpc.RpcError as error:
            raise rpc_error(
                error, self.location, "StreamingExternalRepository", self.address, timeout
            ) from None
        except asyncio.CancelledError:
            raise self.closed_under("StreamingExternalRepository") from None
        data = self._json("StreamingExternalRepository", "".join(chunks))
        if data.get("__class__") == "ExternalRepositoryErrorData":
            raise CodeServerError(
                self.location,
                "StreamingExternalRepository",
                self.address,
                error_text(data.get("error") or {}),
            )
        return data

    async def current_runs(self, timeout: float) -> list[str]:
        """The ids of the runs the server is executing."""
        reply = await self._call("GetCurrentRuns", self._stub.GetCurrentRuns, api.Empty(), timeout)
        data = self._json("GetCurrentRuns", reply.serialized_current_runs)
        return [str(run_id) for run_id in data.get("current_runs") or []]

    async def shutdown(self, timeout: float) -> None:
        """Ask the server to stop once its runs are done (it exits by itself after)."""
        reply = await self._call("ShutdownServer", self._stub.ShutdownServer, api.Empty(), timeout)
        result = self._json("ShutdownServer", reply.serialized_shutdown_server_result)
        if result.get("success") is False:
            why = error_text(result.get("serializable_error_info") or {})
            raise CodeServerError(self.location, "ShutdownServer", self.address, why)

    def _json(self, call: str, text: str) -> dict[str, Any]:
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise CodeServerError(
                self.location, call, self.address, f"not Dagster's JSON: {text[:200]!r}"
            )
        return data


def _is_response(answer: dict[str, Any]) -> bool:
    return answer.get("__class__") != "SerializableErrorInfo"


def _error_chain(error: dict[str, Any]) -> list[dict[str, Any]]:
    """A SerializableErrorInfo and its causes (or contexts), outermost first."""
    chain: list[dict[str, Any]] = []
    current: Any = error
    while isinstance(current, dict) and len(chain) < 10:
        chain.append(current)
        current = current.get("cause") or current.get("context")
    return chain


def _message(error: dict[str, Any]) -> str:
    return str(error.get("message") or error.get("cls_name") or "error").strip()


def _stack(error: dict[str, Any]) -> str:
    return "".join(str(line) for line in error.get("stack") or []).rstrip()


def error_text(error: dict[str, Any]) -> str:
    """A SerializableErrorInfo as text: its message, its stack, then its causes."""
    parts: list[str] = []
    for depth, current in enumerate(_error_chain(error)):
        if depth:
            parts.append("\nThe above was caused by:")
        parts += [_message(current), _stack(current)]
    return "\n".join(p for p in parts if p)


def load_error_from(error: dict[str, Any]) -> pb.LoadError:
    """Our LoadError for Dagster's SerializableErrorInfo: its message, followed by the
    innermost cause's (Dagster wraps the user's exception in DagsterUserCodeLoadError), and
    the stacks of the whole chain as the traceback."""
    chain = _error_chain(error) or [{}]
    message = _message(chain[0])
    if len(chain) > 1:
        message += "\ncaused by: " + _message(chain[-1])
    traceback: list[str] = []
    for depth, current in enumerate(chain):
        if depth:
            traceback += ["", "The above was caused by:", _message(current)]
        traceback.append(_stack(current))
    return pb.LoadError(message=message, traceback="\n".join(traceback).strip("\n"))


def asset_key(key: Any) -> str:
    """An AssetKey ({"path": [...]}) as one string, its parts joined with "/"."""
    if isinstance(key, dict):
        return "/".join(str(part) for part in key.get("path") or [])
    return str(key)


def repository_origin(location: str, address: str, repository: str) -> dict[str, Any]:
    """The serdes JSON of the remote origin of REPOSITORY that the server at ADDRESS serves."""
    address = normalize_address(address)
    host, port, socket = "localhost", None, None
    if address.startswith("unix:"):
        socket = address[len("unix:") :]
    else:
        host, _, text = address.rpartition(":")
        port = int(text) if text.isdigit() else None
        host = host.strip("[]") or "localhost"
    return {
        "__class__": "ExternalRepositoryOrigin",
        "repository_location_origin": {
            "__class__": "GrpcServerRepositoryLocationOrigin",
            "host": host,
            "location_name": location,
            "port": port,
            "socket": socket,
        },
        "repository_name": repository,
    }


def definitions_from_repository(location_name: str, data: dict[str, Any]) -> pb.DefinitionsReply:
    """Our DefinitionsReply for one repository snapshot (Dagster's ExternalRepositoryData)."""
    reply = pb.DefinitionsReply(location_name=location_name, runtime="dagster")
    merge_repository(reply, data)
    return reply


def merge_repository(reply: pb.DefinitionsReply, data: dict[str, Any]) -> None:
    """Add one repository snapshot (ExternalRepositoryData) to REPLY."""
    for node in data.get("external_asset_graph_data") or []:
        if node.get("is_source") or node.get("is_virtual"):
            continue
        reply.assets.add(
            key=asset_key(node.get("asset_key")),
            deps=[asset_key(d.get("upstream_asset_key")) for d in node.get("dependencies") or []],
            group=str(node.get("group_name") or ""),
            description=str(node.get("description") or node.get("op_description") or ""),
            resources=[str(r) for r in node.get("required_top_level_resources") or []],
        )
    for job in data.get("external_pipeline_datas") or []:
        name = str(job.get("name", ""))
        if name and name not in IMPLICIT_JOBS:
            reply.jobs.append(name)
    for schedule in data.get("external_schedule_datas") or []:
        reply.schedules.add(
            name=str(schedule.get("name", "")),
            cron=_cron(schedule.get("cron_schedule")),
            description=str(schedule.get("description") or ""),
            timezone=str(schedule.get("execution_timezone") or ""),
            targets=[str(schedule.get("pipeline_name") or schedule.get("job_name") or "")],
            default_status=_status(schedule.get("default_status")),
        )
    for sensor in data.get("external_sensor_datas") or []:
        reply.sensors.append(str(sensor.get("name", "")))
    for resource in data.get("external_resource_data") or []:
        name = str(resource.get("name", ""))
        if resource.get("is_top_level") is False:  # nested inside another resource
            continue
        if name and name not in reply.resources and name != "io_manager":
            reply.resources.append(name)


def _cron(value: Any) -> str:
    if isinstance(value, list):
        return "; ".join(str(v) for v in value)
    return str(value or "")


def _status(value: Any) -> str:
    """Dagster's DefaultScheduleStatus enum ({"__enum__": "DefaultScheduleStatus.RUNNING"})."""
    if isinstance(value, dict):
        value = value.get("__enum__", "")
    text = str(value or "STOPPED")
    return text.rsplit(".", 1)[-1]
