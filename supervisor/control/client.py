"""The CLI's client of a running `up`'s control service; one place maps its errors."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc

from supervisor._proto_host import control_pb2_grpc
from supervisor.control.codeserver import CHANNEL_OPTIONS
from supervisor.errors import SupervisorError, UsageError
from supervisor.supervision import statefile


class ControlClient:
    """The CLI's way to a running supervisor, found through the workspace file."""

    def __init__(self, workspace_file: Path, timeout: float = 30.0) -> None:
        self.workspace_file = workspace_file
        state = statefile.read_owner(statefile.state_dir_of(workspace_file)) or {}
        self.path = Path(state.get("control_socket") or statefile.control_socket(workspace_file))
        if not self.path.exists():
            raise SupervisorError(
                f"no supervisor is running for {workspace_file}; start one with"
                f" `supervisor up -w {workspace_file}`"
            )
        self.timeout = timeout
        self._channel = grpc.insecure_channel("unix:" + str(self.path), options=CHANNEL_OPTIONS)
        self._stub = control_pb2_grpc.SupervisorStub(self._channel)

    def __enter__(self) -> ControlClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self._channel.close()

    def call(self, name: str, request: Any, timeout: float | None = None) -> Any:
        """Call one control method; one clear SupervisorError for every failure."""
        try:
            return getattr(self._stub, name)(request, timeout=timeout or self.timeout)
        except grpc.RpcError as exc:
            raise self._error(exc, streaming=False) from None

    def stream(self, name: str, request: Any) -> Any:
        """Start a server-streaming call; iterate it through `events`."""
        return getattr(self._stub, name)(request)

    def events(self, call: Any) -> Iterator[Any]:
        """Yield a streaming call's messages; one clear SupervisorError for every failure."""
        try:
            yield from call
        except grpc.RpcError as exc:
            if _code(exc) == grpc.StatusCode.CANCELLED:
                return
            raise self._error(exc, streaming=True) from None

    def _error(self, exc: grpc.RpcError, streaming: bool) -> SupervisorError:
        """The one translation of a failed call to the control service."""
        code = _code(exc)
        details = exc.details() if hasattr(exc, "details") else str(exc)
        if code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND):
            return UsageError(str(details))
        if code == grpc.StatusCode.UNAVAILABLE and streaming:
            return SupervisorError(
                f"the supervisor of {self.workspace_file} went away during the call ({details})"
            )
        if code == grpc.StatusCode.UNAVAILABLE:
            return SupervisorError(
                f"no supervisor answers for {self.workspace_file} ({self.path});"
                f" start one with `supervisor up -w {self.workspace_file}`"
            )
        return SupervisorError(str(details))


def _code(exc: grpc.RpcError) -> grpc.StatusCode | None:
    return exc.code() if hasattr(exc, "code") else None
