"""Server-sent events: the deployment page hears of every state change as it happens, a
location page follows its log, a run page its events."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from supervisor.supervision.logs import tail

# A comment line this often keeps proxies and the browser from closing an idle stream.
KEEPALIVE_SECONDS = 15.0
# How often the process figures (RSS, CPU, uptime) are pushed while a page listens.
FIGURES_SECONDS = 2.0
# How often a followed log file or a run's events are looked at.
FOLLOW_SECONDS = 0.2
LOG_LINES_SHOWN = 200
QUEUE_LIMIT = 1000  # a page that stops reading is dropped, not buffered forever


def frame(event: str, data: Any) -> bytes:
    """One server-sent event."""
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


async def open_stream(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-store",
            "X-Accel-Buffering": "no",
        }
    )
    await response.prepare(request)
    return response


class Hub:
    """Pushes what changed to every deployment page listening.

    `changed()` is called on every transition. On the loop's own thread the rows are
    compared with the last ones sent at once, so a page sees every state a location passes
    through (BACKOFF for an instant restart too); from another thread, on the loop's next
    turn. Only the changed rows go out.
    """

    def __init__(
        self,
        rows: Callable[[], dict[str, dict[str, Any]]],
        figures: Callable[[], dict[str, dict[str, Any]]],
    ) -> None:
        self._rows = rows
        self._figures = figures
        self._queues: set[asyncio.Queue[bytes | None]] = set()
        self._last: dict[str, dict[str, Any]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending = False
        self._ticker: asyncio.Task[None] | None = None
        self._recent: tuple[float, dict[str, dict[str, Any]]] | None = None

    def recent_figures(self) -> dict[str, dict[str, Any]]:
        """The figures last pushed, while they are fresh; {} otherwise (a page then shows
        none until its stream brings them, at once)."""
        if self._recent is None or time.monotonic() - self._recent[0] > FIGURES_SECONDS * 1.5:
            return {}
        return self._recent[1]

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._last = self._rows()

    def changed(self) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            here = asyncio.get_running_loop() is loop
        except RuntimeError:
            here = False
        if here:
            self._flush()
        elif not self._pending:
            self._pending = True
            loop.call_soon_threadsafe(self._flush)

    def _flush(self) -> None:
        self._pending = False
        rows = self._rows()
        for name, row in rows.items():
            if self._last.get(name) != row:
                self._publish(frame("location", row))
        for name in self._last.keys() - rows.keys():
            self._publish(frame("removed", {"name": name}))
        if list(rows) != list(self._last):
            self._publish(frame("order", list(rows)))
        self._last = rows

    def _publish(self, data: bytes) -> None:
        for queue in list(self._queues):
            if queue.qsize() >= QUEUE_LIMIT:
                self._queues.discard(queue)
                queue.put_nowait(None)  # its stream ends; the page reconnects
            else:
                queue.put_nowait(data)

    async def _tick_figures(self) -> None:
        while self._queues:
            figures = await asyncio.to_thread(self._figures)
            self._recent = (time.monotonic(), figures)
            self._publish(frame("figures", figures))
            await asyncio.sleep(FIGURES_SECONDS)

    async def stream(self, request: web.Request) -> web.StreamResponse:
        """GET /events: the rows' changes and the figures, until the page goes away."""
        response = await open_stream(request)
        queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._queues.add(queue)
        if self._ticker is None or self._ticker.done():
            # Its first turn pushes the figures to this page at once.
            self._ticker = asyncio.create_task(self._tick_figures(), name="dashboard-figures")
        try:
            # What changed between the page's rendering and this stream's opening.
            for row in self._rows().values():
                await response.write(frame("location", row))
            if figures := self.recent_figures():
                await response.write(frame("figures", figures))
            while True:
                try:
                    data = await asyncio.wait_for(queue.get(), KEEPALIVE_SECONDS)
                except TimeoutError:
                    data = b": keepalive\n\n"
                if data is None:
                    break
                await response.write(data)
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self._queues.discard(queue)
        return response

    async def close(self) -> None:
        for queue in list(self._queues):
            queue.put_nowait(None)
        self._queues.clear()
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._ticker


async def follow_lines(path: Path) -> AsyncIterator[list[str]]:
    """The last lines of the log at PATH, then each batch of lines appended to it,
    following a rotation (the file replaced by a new one)."""
    yield await asyncio.to_thread(tail, path, LOG_LINES_SHOWN)
    handle = None
    inode = None
    partial = ""
    try:
        while True:
            if handle is None:
                with contextlib.suppress(OSError):
                    handle = open(path, errors="replace")  # noqa: SIM115
                    handle.seek(0, os.SEEK_END)
                    inode = os.fstat(handle.fileno()).st_ino
            if handle is not None:
                chunk = handle.read()
                if chunk:
                    partial += chunk
                    *complete, partial = partial.split("\n")
                    if complete:
                        yield complete
                    continue
                try:
                    current = path.stat().st_ino
                except OSError:
                    current = None
                if current != inode:
                    handle.close()
                    handle = None
                    if current is not None:  # a new file: read it from its start
                        handle = open(path, errors="replace")  # noqa: SIM115
                        inode = current
                    continue
            await asyncio.sleep(FOLLOW_SECONDS)
    finally:
        if handle is not None:
            handle.close()


async def stream_log(request: web.Request, path: Path) -> web.StreamResponse:
    """GET /locations/NAME/log: the location's log, live."""
    response = await open_stream(request)
    with contextlib.suppress(ConnectionResetError, asyncio.CancelledError):
        async for lines in follow_lines(path):
            await response.write(frame("lines", lines))
    return response


async def stream_run(
    request: web.Request, get_run: Callable[[], dict[str, Any]]
) -> web.StreamResponse:
    """GET /runs/ID/events: the run's events as they are recorded, then its end."""
    response = await open_stream(request)
    sent = 0
    with contextlib.suppress(ConnectionResetError, asyncio.CancelledError):
        while True:
            run = await asyncio.to_thread(get_run)
            events = run.pop("events", [])
            if len(events) > sent:
                await response.write(frame("events", events[sent:]))
                sent = len(events)
            if run["status"] != "STARTED":
                await response.write(frame("run", run))
                break
            await asyncio.sleep(FOLLOW_SECONDS)
    return response
