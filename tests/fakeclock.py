"""A fake clock for the supervision loop and the ticker: time moves only when a test says so."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable


class FakeClock:
    """Time that moves only when the test says so; sleepers wake in deadline order."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self.on_sleep: Callable[[], None] = lambda: None  # told of every new sleeper
        self.slept = asyncio.Event()  # set whenever something starts to wait

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        future = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.now + seconds, next(self._order), future))
        self.slept.set()
        self.on_sleep()
        await future

    async def wait(self, event: asyncio.Event, timeout: float) -> bool:
        if event.is_set():
            return True
        sleeper = asyncio.ensure_future(self.sleep(timeout))
        waiter = asyncio.ensure_future(event.wait())
        done, _ = await asyncio.wait({sleeper, waiter}, return_when=asyncio.FIRST_COMPLETED)
        sleeper.cancel()
        waiter.cancel()
        return waiter in done

    def pending(self) -> list[float]:
        """Deadlines of the sleepers still waiting, relative to now."""
        return sorted(d - self.now for d, _, f in self._sleepers if not f.done())

    async def advance(self, seconds: float) -> None:
        """Move time on by SECONDS, waking every sleeper due by then, in order."""
        target = self.now + seconds
        while self._sleepers and self._sleepers[0][0] <= target:
            deadline, _, future = heapq.heappop(self._sleepers)
            self.now = max(self.now, deadline)
            if not future.done():
                future.set_result(None)
                await asyncio.sleep(0)
        self.now = target
        await asyncio.sleep(0)

    async def advance_to(self, target: float, deadline: float) -> None:
        """Move time on to TARGET, waking every sleeper due by then, in order, each time
        until the woken one waits again (at most DEADLINE seconds of real time)."""
        while self._sleepers and self._sleepers[0][0] <= target:
            due, _, future = heapq.heappop(self._sleepers)
            self.now = max(self.now, due)
            if not future.done():
                self.slept.clear()
                future.set_result(None)
                await asyncio.wait_for(self.slept.wait(), deadline)
        self.now = target
