"""The restart policy as pure decisions on an injected clock: no sleeping, no threads."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Literal

from supervisor.workspace.specs import RestartSpec

Action = Literal["restart", "stop", "fatal"]


@dataclass(frozen=True)
class Decision:
    """What to do about an exit; `delay` is seconds to wait before a restart."""

    action: Action
    delay: float
    reason: str


def _seconds(value: float) -> str:
    # "2.0s" reads as a duration; keep more digits only where one decimal would lie.
    return f"{value:.1f}s" if round(value, 1) == value else f"{value:g}s"


class RestartTracker:
    """Decides, exit by exit, whether one location restarts, when, or gives up."""

    def __init__(self, rules: RestartSpec) -> None:
        self.rules = rules
        self.restarts = 0  # restarts decided over the location's life, for status
        self._started_at: float | None = None
        self._last_delay: float | None = None  # None: the next restart is immediate
        self._recent: deque[float] = deque()  # times of restarts decided within the window

    def on_started(self, now: float) -> None:
        """A process of this location started at `now`."""
        self._started_at = now

    def on_exit(self, now: float, failed: bool, served: bool = True) -> Decision:
        """The process exited at `now`; `failed` is a non-zero exit, a signal or a kill.

        `served` is False for a start that never became ready (an exit, a signal, the
        startup deadline): however long it took, that was no stable run, so the back-off
        goes on growing.
        """
        rules = self.rules
        ran = None if self._started_at is None else now - self._started_at
        self._started_at = None
        if rules.policy == "never":
            return Decision("stop", 0.0, "policy never")
        if rules.policy == "on-failure" and not failed:
            return Decision("stop", 0.0, "exited cleanly (policy on-failure)")

        if served and ran is not None and ran >= rules.stable_after:
            self._last_delay = None  # it ran long enough: the crash loop, if any, is over
        while self._recent and now - self._recent[0] >= rules.window:
            self._recent.popleft()
        if rules.max_restarts is not None and len(self._recent) >= rules.max_restarts:
            if rules.max_restarts == 0:
                return Decision("fatal", 0.0, "no restarts allowed (max_restarts 0)")
            return Decision(
                "fatal",
                0.0,
                f"{len(self._recent)} restarts within {rules.window:g}s "
                f"(max_restarts {rules.max_restarts})",
            )

        delay = self._next_delay()
        self._last_delay = delay
        self._recent.append(now)
        self.restarts += 1
        if delay == 0:
            return Decision("restart", 0.0, f"restart {self.restarts} at once")
        return Decision(
            "restart", delay, f"restart {self.restarts} in {_seconds(delay)} (back-off)"
        )

    def on_unhealthy(self, now: float) -> Decision:
        """A hung process was killed at `now`: that counts as a failed exit."""
        return self.on_exit(now, failed=True)

    def reset(self) -> None:
        """Forget back-off and recent restarts (a manual start); `restarts` keeps counting."""
        self._started_at = None
        self._last_delay = None
        self._recent.clear()

    def _next_delay(self) -> float:
        # Doubling the previous delay (not initial * 2**n) cannot overflow in a long loop.
        rules = self.rules
        if self._last_delay is None:
            return 0.0
        if self._last_delay == 0:
            return min(rules.backoff_initial, rules.backoff_max)
        return min(self._last_delay * 2, rules.backoff_max)
