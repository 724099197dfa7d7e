"""Asking a code server whether it lives: its beats or the standard health check, its
memory, heartbeats."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from supervisor.errors import CodeServerError
from supervisor.supervision.clock import REAL_CLOCK, Clock
from supervisor.workspace import LocationSpec
from supervisor.workspace.specs import HealthSpec

# For annotations only: gRPC loads once `up` has started its servers.
if TYPE_CHECKING:
    from supervisor.control.beats import BeatStream


class Probed(Protocol):
    """What the probes call: our code server's client and Dagster's both answer these."""

    async def health(self, timeout: float) -> str: ...
    async def heartbeat(self, timeout: float) -> None: ...


MEMORY_CHECK_SECONDS = 0.5
MIB = 1024 * 1024


async def health_problem(server: Probed | None, timeout: float) -> str | None:
    """Return what is wrong with SERVER, or None when it is SERVING."""
    if server is None:
        return "no channel"
    try:
        status = await server.health(timeout)
    except CodeServerError as exc:
        return exc.reason
    return None if status == "SERVING" else status


async def send_heartbeats(
    server: Callable[[], Probed | None], period: float, clock: Clock = REAL_CLOCK
) -> None:
    """Send a Heartbeat every PERIOD seconds to whichever server SERVER() leads to."""
    while True:
        current = server()
        if current is not None:
            # A missed heartbeat is the server's problem to notice, not ours to report.
            with contextlib.suppress(CodeServerError):
                await current.heartbeat(timeout=period)
        await clock.sleep(period)


def on_grid(now: float, interval: float) -> float:
    """The first instant after NOW that is a whole number of INTERVALs of the monotonic
    clock. Locations checked every INTERVAL are all checked in one turn of the event loop,
    and gRPC's calls cost less together than spread out (bench/scale.py's idle CPU)."""
    return (now // interval + 1) * interval


async def _sleep_to_grid(clock: Clock, interval: float) -> None:
    now = clock.monotonic()
    await clock.sleep(on_grid(now, interval) - now)


async def watch_health(
    server: Callable[[], Probed | None],
    memory_bytes: Callable[[], int],
    spec: LocationSpec,
    clock: Clock,
    report: Callable[[str | None], None],
) -> str:
    """Check a live server by SPEC's health and memory rules until it must be killed; return
    why. Each health check's outcome goes to REPORT: the problem, or None when it answered."""
    watches = [asyncio.ensure_future(_watch_liveness(server, spec.health, clock, report))]
    if spec.memory_limit:
        watches.append(asyncio.ensure_future(_watch_memory(memory_bytes, spec.memory_limit, clock)))
    try:
        done, _ = await asyncio.wait(watches, return_when=asyncio.FIRST_COMPLETED)
        return done.pop().result()
    finally:
        for watch in watches:
            watch.cancel()


async def _watch_memory(memory_bytes: Callable[[], int], limit: int, clock: Clock) -> str:
    while True:
        await clock.sleep(MEMORY_CHECK_SECONDS)
        used = memory_bytes()
        if used > limit:
            return f"memory limit exceeded: {used / MIB:.0f} MiB used, limit {limit / MIB:.0f} MiB"


async def _watch_liveness(
    server: Callable[[], Probed | None],
    health: HealthSpec,
    clock: Clock,
    report: Callable[[str | None], None],
) -> str:
    """Every health.interval, a sign of life: a beat of the server's Beats stream where it
    sends them (ours), else a Health.Check. health.failures missed in a row: killed as hung."""
    failures = 0
    stream: BeatStream | None = None
    owner: Probed | None = None  # whose stream it is
    checks_only = False  # the server sends no beats (Dagster's, or of another runtime)
    try:
        while True:
            current = server()
            if stream is not None and owner is not current:
                stream.cancel()  # of a channel since replaced
                stream = None
            opens = getattr(current, "beats", None) if not checks_only else None
            if opens is None:
                await _sleep_to_grid(clock, health.interval)
                problem = await health_problem(server(), health.timeout)
            else:
                # A beat is due at once on a new stream, else at the interval's next multiple.
                wait = health.timeout if stream is None else health.interval + health.timeout
                if stream is None:
                    stream, owner = opens(health.interval), current
                try:
                    status = await stream.next(wait)
                    problem = None if status == "SERVING" else status
                except CodeServerError as exc:
                    problem, checks_only = exc.reason, stream.unimplemented
                    stream = None
                    if checks_only:
                        continue
                if problem is not None or stream is None:
                    # The next try waits for the grid, like a check would.
                    await _sleep_to_grid(clock, health.interval)
            if problem is None:
                failures = 0
                report(None)
                continue
            failures += 1
            if failures >= health.failures:
                return f"health check failed {failures} times in a row ({problem}): killed as hung"
            report(problem)
    finally:
        if stream is not None:
            stream.cancel()
