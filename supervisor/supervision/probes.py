"""Asking a code server whether it lives: the standard health check, memory, heartbeats."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Protocol

from supervisor.errors import CodeServerError
from supervisor.supervision.clock import REAL_CLOCK, Clock
from supervisor.workspace import LocationSpec


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
    clock. Locations checked every INTERVAL are all checked in one turn of the event loop:
    gRPC's calls cost the supervisor a third of the CPU together that they cost spread out
    (bench/scale.py's idle CPU)."""
    return (now // interval + 1) * interval


async def watch_health(
    server: Callable[[], Probed | None],
    memory_bytes: Callable[[], int],
    spec: LocationSpec,
    clock: Clock,
    report: Callable[[str | None], None],
) -> str:
    """Check a live server by SPEC's health and memory rules until it must be killed; return
    why. Each check's outcome goes to REPORT: the problem, or None when it answered."""
    health = spec.health
    limit = spec.memory_limit
    failures = 0
    next_check = on_grid(clock.monotonic(), health.interval)
    while True:
        wait = next_check - clock.monotonic()
        await clock.sleep(MEMORY_CHECK_SECONDS if limit else max(wait, 0.0))
        if limit:
            used = memory_bytes()
            if used > limit:
                return (
                    f"memory limit exceeded: {used / MIB:.0f} MiB used, limit {limit / MIB:.0f} MiB"
                )
            if clock.monotonic() < next_check:
                continue
        next_check = on_grid(clock.monotonic(), health.interval)
        problem = await health_problem(server(), health.timeout)
        if problem is None:
            failures = 0
            report(None)
            continue
        failures += 1
        if failures >= health.failures:
            return f"health check failed {failures} times in a row ({problem}): killed as hung"
        report(problem)
