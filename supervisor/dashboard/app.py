"""The dashboard's web application: its routes, templates, static files, and the checks
every request passes (the token beyond loopback, the Host header, same-origin actions)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import jinja2
from aiohttp import web

# For annotations only: server.py imports this module, so the import goes one way.
if TYPE_CHECKING:
    from supervisor.dashboard.server import Dashboard

HERE = Path(__file__).parent
STATIC = HERE / "static"
TEMPLATES = HERE / "templates"
TOKEN_COOKIE = "supervisor_dashboard_token"
# Actions are POSTs carrying this header: a page of another site cannot send it without
# a CORS preflight, which is never answered, so it cannot press the buttons.
ACTION_HEADER = "X-Supervisor-Dashboard"
DASHBOARD: web.AppKey[Dashboard] = web.AppKey("dashboard")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def static_digest() -> str:
    """A hash of every static file: it is in their URLs, so they may be cached for good."""
    digest = hashlib.sha256()
    for path in sorted(STATIC.rglob("*")):
        if path.is_file():
            digest.update(str(path.relative_to(STATIC)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def templates(static_prefix: str) -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=jinja2.select_autoescape(("html",)),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.globals["static"] = lambda name: f"{static_prefix}/{name}"
    environment.globals["query"] = lambda **kwargs: urlencode(
        {k: v for k, v in kwargs.items() if v}
    )
    from supervisor.dashboard import formats

    environment.filters.update(formats.FILTERS)
    return environment


def _allowed_hosts(dashboard: Dashboard) -> set[str] | None:
    """The Host headers a loopback dashboard answers (a DNS-rebinding page sends its own
    name); None beyond loopback, where the token is the guard."""
    if dashboard.token is not None:
        return None
    port = dashboard.port
    return {f"{name}:{port}" for name in ("127.0.0.1", "localhost", "[::1]", dashboard.host)}


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    dashboard = request.app[DASHBOARD]
    hosts = _allowed_hosts(dashboard)
    if hosts is not None and request.host not in hosts:
        raise web.HTTPMisdirectedRequest(text=f"this dashboard does not answer for {request.host}")
    token = dashboard.token
    if token is not None:
        given = request.query.get("token")
        if given is not None and hmac.compare_digest(given, token):
            # Into a cookie, out of the address bar (and of the history).
            query = {k: v for k, v in request.query.items() if k != "token"}
            target = request.path + ("?" + urlencode(query) if query else "")
            moved = web.HTTPSeeOther(target)
            moved.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="Strict")
            raise moved
        offered = request.cookies.get(TOKEN_COOKIE) or _bearer(request)
        if offered is None or not hmac.compare_digest(offered, token):
            raise web.HTTPUnauthorized(
                text="this dashboard needs its token: open the address `supervisor up` printed"
                " (…/?token=…), or send Authorization: Bearer TOKEN\n"
            )
    if request.method == "POST":
        origin = request.headers.get("Origin")
        if request.headers.get(ACTION_HEADER) != "1" or (
            origin is not None and origin != f"{request.scheme}://{request.host}"
        ):
            raise web.HTTPForbidden(text="actions come from the dashboard's own pages\n")
    response = await handler(request)
    if request.path.startswith("/static/"):
        response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
    elif "Cache-Control" not in response.headers:
        response.headers["Cache-Control"] = "no-store"
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    return response


def _bearer(request: web.Request) -> str | None:
    value = request.headers.get("Authorization", "")
    return value[7:] if value.startswith("Bearer ") else None


def make_app(dashboard: Dashboard) -> web.Application:
    from supervisor.dashboard import actions, pages

    app = web.Application(middlewares=[guard])
    app[DASHBOARD] = dashboard
    prefix = f"/static/{static_digest()}"
    dashboard.templates = templates(prefix)
    routes: list[Any] = [
        web.get("/", pages.deployment),
        web.get("/locations/{name}", pages.location),
        web.get("/runs", pages.runs),
        web.get("/runs/{run_id}", pages.run),
        web.get("/environments", pages.environments),
        web.get("/events", pages.events),
        web.get("/locations/{name}/log", pages.log),
        web.get("/runs/{run_id}/events", pages.run_events),
        web.get("/api/status", actions.status),
        web.get("/api/locations/{name}/error", actions.error),
        web.post("/api/locations/{name}/{action}", actions.act),
        web.post("/api/reload", actions.reload),
        web.post("/api/materialize", actions.materialize),
    ]
    app.add_routes(routes)
    app.router.add_static(prefix, STATIC, append_version=False)
    return app
