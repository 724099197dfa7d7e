"""`up --watch`: reload when the workspace file or a location's source changes."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

from supervisor.errors import SupervisorError
from supervisor.supervision.clock import Clock
from supervisor.supervision.logs import Console
from supervisor.supervision.sources import fingerprint
from supervisor.workspace import WorkspaceSpec

# For annotations only: the control service loads after `up` has started its servers.
if TYPE_CHECKING:
    from supervisor.control.server import ChangeLike

# How often the files are looked at, and how long a change must hold still.
WATCH_INTERVAL_SECONDS = 0.5
WATCH_DEBOUNCE_SECONDS = 0.3


def snapshot(workspace: WorkspaceSpec) -> tuple[object, ...]:
    """What `--watch` compares: the workspace files and every local location's source."""
    files: list[tuple[int, int] | None] = []
    if not workspace.from_flags:
        for path in workspace.files or [workspace.path]:
            try:
                info = path.stat()
            except OSError:
                files.append(None)
            else:
                files.append((info.st_size, info.st_mtime_ns))
    return (*files, *(fingerprint(spec) for spec in workspace.locations))


async def watch_files(
    workspace: Callable[[], WorkspaceSpec],
    clock: Clock,
    console: Console,
    reload: Callable[[], Awaitable[Sequence[ChangeLike]]],
) -> None:
    """Reload when the files change, once the change has settled (an editor's save, a
    checkout, are several writes in a row). WORKSPACE gives the current workspace (a reload
    replaces it)."""

    def look() -> tuple[object, ...]:
        return snapshot(workspace())

    last = await asyncio.to_thread(look)
    while True:
        await clock.sleep(WATCH_INTERVAL_SECONDS)
        now = await asyncio.to_thread(look)
        if now == last:
            continue
        while True:
            await clock.sleep(WATCH_DEBOUNCE_SECONDS)
            settled = await asyncio.to_thread(look)
            if settled == now:
                break
            now = settled
        console.event("files changed: reloading")
        try:
            changes = await reload()
        except SupervisorError as exc:
            console.event(f"reload failed, everything goes on as it was: {exc}")
        else:
            for change in changes:
                if change.message != "unchanged":
                    console.line(change.location, f"reload: {change.message}")
        # What the reload saw counts as seen, whatever it did with it.
        last = await asyncio.to_thread(look)
