"""A location's warm standby (`standby: true`): a second code server, started and loaded
beside the one that serves but sent no calls, that takes over the moment the active one
dies, or when a restart finds the code unchanged. Another is then started in the background.

A standby that fails to start or to load its code is reported on the location's console and
log, and never used: the location then restarts cold, as without one.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from supervisor.supervision.clock import Clock
from supervisor.supervision.outcomes import ServerProcess, Started, StartFailed

# Given what to call with its process as soon as it exists, start a standby server.
StartStandby = Callable[[Callable[[ServerProcess], None]], Awaitable[Started | StartFailed]]


class Standby:
    """At most one standby server of a location, starting or ready."""

    def __init__(
        self,
        start: StartStandby,
        report: Callable[[str], None],
        clock: Clock,
        stop_timeout: float,
    ) -> None:
        self._start = start
        self._report = report
        self._clock = clock
        self._stop_timeout = stop_timeout
        self._task: asyncio.Task[Started | StartFailed] | None = None
        self.process: ServerProcess | None = None  # while one is starting or ready
        self.source = ""  # the code the starting or ready one was started from
        self._ending: set[asyncio.Task[None]] = set()  # discarded ones, stopping

    def prepare(self, source: str, delay: float = 0.0) -> None:
        """Have a standby of the code SOURCE: start one (after DELAY seconds) unless one of
        that code is starting or ready; one of other code goes."""
        if self._task is not None and self.source == source:
            return
        self.discard()
        self.source = source
        self._task = asyncio.create_task(self._begin(delay), name="standby")

    async def _begin(self, delay: float) -> Started | StartFailed:
        if delay > 0:
            await self._clock.sleep(delay)
        outcome = await self._start(self._registered)
        if isinstance(outcome, StartFailed):
            self.process = None
            self._report(f"the standby is not used: {outcome.reason}")
        else:
            self._report(f"standby ready (pid {outcome.ready.pid})")
        return outcome

    def _registered(self, process: ServerProcess) -> None:
        self.process = process

    def take(self, source: str | None = None) -> Started | None:
        """The ready standby (of the code SOURCE, when given), now the location's own; None
        when none is ready."""
        task = self._task
        if task is None or not task.done() or task.cancelled() or task.exception() is not None:
            return None
        outcome = task.result()
        if not isinstance(outcome, Started) or outcome.process.returncode is not None:
            return None
        if source is not None and outcome.source != source:
            return None
        self._task, self.process = None, None
        return outcome

    def discard(self) -> None:
        """Stop the standby, starting or ready, in the background."""
        task, process = self._task, self.process
        self._task, self.process = None, None
        if task is not None:
            task.cancel()
        if process is not None:
            ending = asyncio.create_task(self._end(process), name="standby-stop")
            self._ending.add(ending)
            ending.add_done_callback(self._ending.discard)

    async def _end(self, process: ServerProcess) -> None:
        with contextlib.suppress(Exception):
            if process.started and process.returncode is None:
                await process.stop(self._stop_timeout)

    async def stop(self) -> None:
        """Stop the standby and wait until it is down."""
        task, process = self._task, self.process
        self._task, self.process = None, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if process is not None:
            await self._end(process)
        if self._ending:
            await asyncio.gather(*self._ending, return_exceptions=True)
