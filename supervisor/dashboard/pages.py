"""The dashboard's pages (rendered through Jinja2 templates) and their live streams."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiohttp import web

from supervisor.dashboard import facts, live
from supervisor.dashboard.app import DASHBOARD
from supervisor.dashboard.server import Dashboard
from supervisor.envs.store import list_envs
from supervisor.errors import SupervisorError
from supervisor.runs.store import STATUSES
from supervisor.supervision.location import Location
from supervisor.supervision.logs import log_file

# A location page waits this long for the definitions of a serving location.
DEFINITIONS_SECONDS = 5.0
RUNS_SHOWN = 500
TRIGGERS = ("manual", "schedule")


def _dashboard(request: web.Request) -> Dashboard:
    return request.app[DASHBOARD]


def _page(request: web.Request, template: str, **values: Any) -> web.Response:
    dashboard = _dashboard(request)
    assert dashboard.templates is not None
    html = dashboard.templates.get_template(template).render(
        workspace=str(dashboard.service.workspace_path), now=time.time(), **values
    )
    return web.Response(text=html, content_type="text/html")


def _location(request: web.Request) -> Location:
    name = request.match_info["name"]
    location = _dashboard(request).everything().get(name)
    if location is None:
        raise web.HTTPNotFound(text=f"no location {name!r} in this workspace\n")
    return location


async def deployment(request: web.Request) -> web.Response:
    """Every location and system process: state, Python, environment, process figures."""
    dashboard = _dashboard(request)
    rows = dashboard.rows()
    figures = dashboard.hub.recent_figures()
    return _page(request, "deployment.html", rows=list(rows.values()), figures=figures)


async def location(request: web.Request) -> web.Response:
    """One location: its definitions, its lineage graph, its schedules, its log."""
    dashboard = _dashboard(request)
    found = _location(request)
    definitions: dict[str, Any] | None = None
    unavailable = ""
    if found.runtime != "system":
        try:
            reply = await found.definitions(DEFINITIONS_SECONDS)
        except SupervisorError as exc:
            unavailable = str(exc)
        else:
            definitions = facts.definitions(reply)
    ticks: dict[str, Any] = {}
    if dashboard.service.ticker is not None:
        for listed in dashboard.service.ticker.listing():
            if listed.schedule.location == found.name:
                ticks[listed.schedule.name] = {
                    "status": listed.status,
                    "next_tick": listed.next_tick,
                    "timezone": listed.schedule.timezone or "UTC",
                }
    runs = dashboard.service.store.list_runs(location=found.name, limit=10)
    return _page(
        request,
        "location.html",
        row=facts.row(found),
        definitions=definitions,
        unavailable=unavailable,
        ticks=ticks,
        runs=runs,
        filtered=False,
    )


async def runs(request: web.Request) -> web.Response:
    """The runs, newest first, by location, status and trigger."""
    dashboard = _dashboard(request)
    wanted = {key: request.query.get(key, "") for key in ("location", "status", "trigger")}
    status = wanted["status"] if wanted["status"] in STATUSES else None
    listed = dashboard.service.store.list_runs(
        location=wanted["location"] or None, status=status, limit=RUNS_SHOWN
    )
    trigger = wanted["trigger"]
    if trigger == "schedule":
        listed = [run for run in listed if run["trigger"].startswith("schedule:")]
    elif trigger:
        listed = [run for run in listed if run["trigger"] == trigger]
    return _page(
        request,
        "runs.html",
        runs=listed,
        wanted=wanted,
        statuses=STATUSES,
        triggers=TRIGGERS,
        locations=list(dashboard.service.locations),
        filtered=any(wanted.values()),
        limit=RUNS_SHOWN,
    )


def _run(request: web.Request) -> dict[str, Any]:
    try:
        return _dashboard(request).service.store.get_run(request.match_info["run_id"])
    except SupervisorError as exc:
        raise web.HTTPNotFound(text=f"{exc}\n") from None


async def run(request: web.Request) -> web.Response:
    """One run: its events (live while it runs), its steps on a timeline."""
    found = _run(request)
    return _page(request, "run.html", run=found)


async def environments(request: web.Request) -> web.Response:
    """Each built environment: Python, distributions, size, last use, its locations."""
    workspace = _dashboard(request).workspace()
    envs = await asyncio.to_thread(list_envs, workspace)
    return _page(request, "environments.html", envs=envs)


async def events(request: web.Request) -> web.StreamResponse:
    return await _dashboard(request).hub.stream(request)


async def log(request: web.Request) -> web.StreamResponse:
    found = _location(request)
    path = found.log.path if found.log is not None else None
    if path is None:
        path = log_file(_dashboard(request).workspace().state_dir, found.name)
    return await live.stream_log(request, path)


async def run_events(request: web.Request) -> web.StreamResponse:
    run_id = _run(request)["id"]
    store = _dashboard(request).service.store
    return await live.stream_run(request, lambda: store.get_run(run_id))
