"""The supervision loop's clock, injected so that its restart and back-off behaviour can be
replayed on a fake clock in tests as well as run on real time."""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Clock(Protocol):
    """Time as the supervision loop sees it."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back: for deadlines and back-off."""
        ...

    def time(self) -> float:
        """Wall-clock seconds since the epoch: for the times transitions record."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Let SECONDS pass."""
        ...

    async def wait(self, event: asyncio.Event, timeout: float) -> bool:
        """Wait for EVENT at most TIMEOUT seconds; True when it was set."""
        ...


class RealClock:
    """The machine's clocks and the event loop's timers."""

    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    async def wait(self, event: asyncio.Event, timeout: float) -> bool:
        if event.is_set():
            return True
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except asyncio.TimeoutError:
            return False
        return True


REAL_CLOCK = RealClock()
