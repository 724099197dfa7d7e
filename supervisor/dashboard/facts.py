"""What the dashboard shows, as plain dicts: a row per location, its process's figures, its
definitions as a graph, the environments. Reads the live locations; changes nothing."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import psutil

from supervisor._proto import codeserver_pb2 as cs
from supervisor.supervision.location import Location
from supervisor.supervision.states import State

# The colour class of each state: what a glance at the page should tell.
TONE = {
    State.SERVING: "good",
    State.LOAD_ERROR: "bad",
    State.BUILD_FAILED: "bad",
    State.FATAL: "bad",
    State.UNHEALTHY: "warn",
    State.BACKOFF: "warn",
    State.UNREACHABLE: "bad",
    State.STOPPED: "idle",
    State.STOPPING: "busy",
    State.PENDING: "busy",
    State.BUILDING: "busy",
    State.STARTING: "busy",
    State.CONNECTING: "busy",
}


def row(location: Location, warning: str | None = None) -> dict[str, Any]:
    """The state of LOCATION: what a transition changes (no process figures)."""
    machine = location.machine
    last = machine.history[-1] if machine.history else None
    state = machine.state
    return {
        "name": location.name,
        "runtime": location.runtime,
        "kind": location.spec.kind,
        "state": state.value,
        "tone": TONE.get(state, "idle"),
        "reason": last.reason if last else "",
        "since": last.at if last else None,
        "python": location.python_version,
        "env": location.env_key or "",
        "pid": location.pid,
        "address": location.address,
        "restarts": location.restarts,
        "last_error": machine.last_error or "",
        "load_error": location.load_error or "",
        "next_attempt": location.next_attempt,
        "url": location.url,
        "warning": warning or "",
    }


class Meter:
    """RSS, CPU and uptime of each location's process tree. psutil's CPU percentage is
    the share since the previous reading, so the Process objects are kept between calls;
    the trees come from one scan of the process table per reading."""

    def __init__(self) -> None:
        self._processes: dict[int, psutil.Process] = {}

    def read(self, pids: Iterable[int]) -> dict[int, dict[str, Any]]:
        children: dict[int, list[int]] = {}
        for process in psutil.process_iter(["ppid"]):
            children.setdefault(process.info["ppid"], []).append(process.pid)
        figures: dict[int, dict[str, Any]] = {}
        seen: set[int] = set()
        for pid in pids:
            tree = [p for p in map(self._process, _descendants(pid, children)) if p is not None]
            if not tree or tree[0].pid != pid:
                continue
            rss, cpu = 0, 0.0
            for process in tree:
                seen.add(process.pid)
                try:
                    with process.oneshot():
                        rss += process.memory_info().rss
                        cpu += process.cpu_percent(None)
                except psutil.Error:
                    continue
            try:
                started: float | None = tree[0].create_time()
            except psutil.Error:
                started = None
            figures[pid] = {
                "rss": rss,
                "cpu": round(cpu, 1),
                "uptime": time.time() - started if started else None,
            }
        for gone in set(self._processes) - seen:
            del self._processes[gone]
        return figures

    def _process(self, pid: int) -> psutil.Process | None:
        process = self._processes.get(pid)
        try:
            if process is None or not process.is_running():
                process = psutil.Process(pid)
                process.cpu_percent(None)  # the first reading only starts the count
                self._processes[pid] = process
        except psutil.Error:
            self._processes.pop(pid, None)
            return None
        return process


def _descendants(pid: int, children: dict[int, list[int]]) -> list[int]:
    """PID and every process under it, PID first."""
    found, queue = [], [pid]
    while queue:
        current = queue.pop()
        found.append(current)
        queue.extend(children.get(current, ()))
    return found


def definitions(reply: cs.DefinitionsReply) -> dict[str, Any]:
    """A location's definitions for its page: assets by group, the lineage graph's nodes
    and edges, resources and schedules."""
    assets = [
        {
            "key": asset.key,
            "deps": list(asset.deps),
            "group": asset.group or "default",
            "description": asset.description,
        }
        for asset in reply.assets
    ]
    groups: dict[str, list[dict[str, Any]]] = {}
    for asset in assets:
        groups.setdefault(asset["group"], []).append(asset)
    keys = {asset["key"] for asset in assets}
    edges = [
        {"from": dep, "to": asset["key"], "external": dep not in keys}
        for asset in assets
        for dep in asset["deps"]
    ]
    error = reply.load_error
    return {
        "assets": assets,
        "groups": dict(sorted(groups.items())),
        "graph": {
            "nodes": [{"key": a["key"], "group": a["group"]} for a in assets],
            "edges": edges,
        },
        "resources": list(reply.resources),
        "schedules": [
            {"name": s.name, "cron": s.cron, "targets": list(s.targets)} for s in reply.schedules
        ],
        "load_error": (
            {"message": error.message, "traceback": error.traceback}
            if error.message or error.traceback
            else None
        ),
    }
