"""Watching one live server of a local location until something ends the watch: its exit,
its health or memory checks, or a request (stop, hand over). Heartbeats go out meanwhile
where the server needs them."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from supervisor.launch.process import describe_exit
from supervisor.supervision.clock import Clock
from supervisor.supervision.outcomes import Asked, Ended, ServerProcess
from supervisor.supervision.probes import Probed, send_heartbeats, watch_health
from supervisor.workspace import LocationSpec

# How often a live server gets a Heartbeat, as a share of its heartbeat timeout.
HEARTBEATS_PER_TIMEOUT = 3


@dataclass
class Watch:
    """What a watch needs of its location: its rules, how to reach the server, what may
    end the watch, and where each health check's outcome goes."""

    spec: LocationSpec
    clock: Clock
    server: Callable[[], Probed | None]
    wake: asyncio.Event  # a stop (or another start) was asked for
    handover: asyncio.Event  # a zero-downtime restart was asked for
    wanted: Callable[[], bool]  # whether the location should still run
    report: Callable[[str | None], None]  # a health check's problem, or None once it answers
    heartbeats: bool  # send Heartbeats whatever the health interval (Dagster's server)

    async def until_it_ends(self, process: ServerProcess) -> Ended | Asked:
        exit_task = asyncio.create_task(process.wait())
        health = watch_health(self.server, process.memory_bytes, self.spec, self.clock, self.report)
        health_task = asyncio.create_task(health)
        wake_task = asyncio.create_task(self.wake.wait())
        handover_task = asyncio.create_task(self.handover.wait())
        helpers = []
        spec = self.spec
        rare = spec.health.interval * HEARTBEATS_PER_TIMEOUT > spec.heartbeat_timeout
        if rare or self.heartbeats:
            # Our server counts health checks as heartbeats, so only checks too rare for that
            # need these; Dagster's counts only its Heartbeat call.
            period = spec.heartbeat_timeout / HEARTBEATS_PER_TIMEOUT
            helpers.append(asyncio.create_task(send_heartbeats(self.server, period, self.clock)))
        try:
            done, _ = await asyncio.wait(
                {exit_task, health_task, wake_task, handover_task},
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            for task in (health_task, wake_task, handover_task, *helpers):
                task.cancel()
            # Its Beats stream ends before the server is told to stop.
            await asyncio.gather(health_task, return_exceptions=True)
        if exit_task in done:
            code = exit_task.result()
            return Ended(code != 0, f"code server {describe_exit(code)}{process.tail_text()}")
        if health_task in done:
            reason = health_task.result()
            await process.kill()
            return Ended(True, reason)
        exit_task.cancel()
        if handover_task in done and self.wanted():
            return Asked.HANDOVER
        return Asked.STOP
