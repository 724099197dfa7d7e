"""The dashboard's buttons: restart, stop and start a location, reload the workspace,
materialize assets. Each answers at once; the pages see what follows live."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

from aiohttp import web

from supervisor.dashboard.app import DASHBOARD
from supervisor.errors import SupervisorError
from supervisor.runs import materialize as runs
from supervisor.supervision.location import Location

ACTIONS = ("restart", "stop", "start")
ERROR_SECONDS = 5.0


async def status(request: web.Request) -> web.Response:
    """GET /api/status: the rows of the deployment page, as JSON."""
    return web.json_response(list(request.app[DASHBOARD].rows().values()))


async def error(request: web.Request) -> web.Response:
    """GET /api/locations/NAME/error: the whole of its last error; for a load error, the
    traceback its code server keeps."""
    dashboard = request.app[DASHBOARD]
    location = dashboard.everything().get(request.match_info["name"])
    if location is None:
        raise web.HTTPNotFound(text=f"no location {request.match_info['name']!r}\n")
    text = location.load_error or location.machine.last_error or ""
    if location.load_error and location.runtime != "system":
        try:
            reply = await location.definitions(ERROR_SECONDS)
        except SupervisorError:
            pass  # what the supervisor kept is all there is now
        else:
            kept = reply.load_error
            if kept.traceback:
                text = f"{kept.message}\n\n{kept.traceback}" if kept.message else kept.traceback
    return web.json_response({"location": location.name, "text": text})


async def act(request: web.Request) -> web.Response:
    """POST /api/locations/NAME/ACTION: restart, stop or start it."""
    dashboard = request.app[DASHBOARD]
    name, action = request.match_info["name"], request.match_info["action"]
    if action not in ACTIONS:
        raise web.HTTPNotFound(text=f"no action {action!r}; there are {', '.join(ACTIONS)}\n")
    location = dashboard.everything().get(name)
    if location is None:
        raise web.HTTPNotFound(text=f"no location {name!r} in this workspace\n")
    if action == "start":
        refused = location.start()
        if refused is not None:
            return web.json_response({"ok": False, "message": refused}, status=409)
        return web.json_response({"ok": True, "message": "starting"}, status=202)
    work = location.stop("stop requested from the dashboard") if action == "stop" else None
    dashboard.background(
        location.run_guarded(f"{action} from the dashboard", work or _restart(location))
    )
    return web.json_response({"ok": True, "message": f"{action} begun"}, status=202)


async def _restart(location: Location) -> None:
    location.console.line(location.name, "restart requested from the dashboard")
    await location.restart()


async def reload(request: web.Request) -> web.Response:
    """POST /api/reload: re-read the workspace; answers with what changed."""
    dashboard = request.app[DASHBOARD]
    try:
        changes = await dashboard.service.reload()
    except SupervisorError as exc:
        return web.json_response({"ok": False, "message": str(exc)}, status=422)
    return web.json_response(
        {
            "ok": all(c.ok for c in changes),
            "changes": [
                {"location": c.location, "ok": c.ok, "message": c.message} for c in changes
            ],
        }
    )


async def materialize(request: web.Request) -> web.Response:
    """POST /api/materialize {location, assets, all}: start a run; answers its id."""
    dashboard = request.app[DASHBOARD]
    try:
        body: Any = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = None
    if not isinstance(body, dict) or not isinstance(body.get("location"), str):
        return _refused("send JSON {location: NAME, assets: [KEY, ...]} or {location, all: true}")
    assets = body.get("assets") or []
    if not isinstance(assets, list) or not all(isinstance(a, str) for a in assets):
        return _refused("assets: a list of asset keys")
    store = dashboard.service.store
    try:
        location, selection = await runs.resolve(
            dashboard.service.locations, assets, body["location"], bool(body.get("all"))
        )
    except SupervisorError as exc:
        return _refused(str(exc))
    run_id = uuid.uuid4().hex
    store.create_run(location.name, selection, run_id, trigger="manual")

    async def work() -> None:
        async for _ in runs.run(store, location, selection, False, run_id=run_id):
            pass

    dashboard.background(asyncio.create_task(work(), name=f"dashboard-run-{run_id}"))
    return web.json_response({"ok": True, "run_id": run_id, "selection": selection}, status=202)


def _refused(message: str) -> web.Response:
    return web.json_response({"ok": False, "message": message}, status=422)
