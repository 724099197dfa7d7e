"""The CodeServer gRPC service: thin methods over the plain functions in snapshot."""

from __future__ import annotations

import os
import threading
import time
import uuid
from typing import Callable, Iterator

import grpc

from supervisor._proto import codeserver_pb2 as pb
from supervisor._proto import codeserver_pb2_grpc
from supervisor.codeserver import execution, snapshot
from supervisor.codeserver.loader import CodeTarget, LoadResult
from supervisor.codeserver.warm import WarmPool


class CodeServerServicer(codeserver_pb2_grpc.CodeServerServicer):
    """Answers calls about one loaded location."""

    def __init__(
        self,
        location_name: str,
        runtime_version: str,
        address: str,
        result: LoadResult,
        request_shutdown: Callable[[str], None],
        on_heartbeat: Callable[[], None] | None = None,
        target: CodeTarget | None = None,
        values_dir: str = "",
        warm_workers: int = 0,
        beats: Callable[[float, object], Iterator[str]] | None = None,
    ) -> None:
        self.location_name = location_name
        self.runtime_version = runtime_version
        self.address = address
        self.result = result
        self.started_at = time.time()
        self._request_shutdown = request_shutdown
        self._on_heartbeat = on_heartbeat
        self._beats = beats
        self._distributions: list[tuple[str, str]] | None = None
        self._lock = threading.Lock()
        self.target = target or CodeTarget()
        self.values_dir = values_dir
        self.runs = execution.RunRegistry()
        # Runs of a location that did not load fail at once: no worker waits for them.
        loaded = result.definitions is not None
        self.warm = WarmPool(execution.base_argv(self.target), warm_workers if loaded else 0)

    def _installed(self) -> list[tuple[str, str]]:
        with self._lock:
            if self._distributions is None:
                self._distributions = snapshot.installed_distributions()
            return self._distributions

    def Ping(self, request, context):
        return pb.PingReply(echo=request.echo, pid=os.getpid())

    def GetServerInfo(self, request, context):
        return snapshot.server_info(
            self.location_name,
            self.runtime_version,
            self.address,
            self.started_at,
            self.result,
            self._installed(),
        )

    def ListDefinitions(self, request, context):
        return snapshot.definitions_reply(self.location_name, self.result)

    def Heartbeat(self, request, context):
        if self._on_heartbeat is not None:
            self._on_heartbeat()
        return pb.HeartbeatReply()

    def Beats(self, request, context):
        if self._beats is None:
            context.abort(grpc.StatusCode.UNIMPLEMENTED, "this server sends no beats")
        for status in self._beats(request.interval, context):
            yield pb.Beat(status=status)

    def Shutdown(self, request, context):
        self._request_shutdown(
            "Shutdown called" + (": " + request.reason if request.reason else "")
        )
        return pb.ShutdownReply()

    def Materialize(self, request, context):
        run_id = request.run_id or uuid.uuid4().hex
        request = pb.MaterializeRequest(
            run_id=run_id,
            selection=request.selection,
            upstream=request.upstream,
            values_dir=request.values_dir,
        )
        # Fires when the call ends for any reason: a caller that hangs up cancels the run.
        context.add_callback(lambda: self.runs.cancel(run_id))
        yield from execution.materialize(
            request, self.target, self.location_name, self.values_dir, self.runs, self.warm
        )

    def CancelRun(self, request, context):
        return pb.CancelRunReply(found=self.runs.cancel(request.run_id))

    def Inspect(self, request, context):
        from supervisor.codeserver.facts import inspect_environment

        return inspect_environment()
