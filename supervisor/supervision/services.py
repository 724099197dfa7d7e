"""What `up` serves beside its locations: the run store, the schedule ticker and the control
service. One module, so that `up` loads them (gRPC, protobuf, SQLite) in a worker thread
while its code servers start."""

from __future__ import annotations

from supervisor.control.server import ControlService, StatusRows, serve_control
from supervisor.runs.store import RunStore, runs_db_path
from supervisor.schedules.ticker import Ticker, materializer

__all__ = [
    "ControlService",
    "RunStore",
    "StatusRows",
    "Ticker",
    "materializer",
    "runs_db_path",
    "serve_control",
]
