"""What the supervision loop of a local location needs of a process, and what its steps
return: small typed outcomes, matched by the loop, rather than tuples and sentinels."""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from supervisor.launch.process import OutputHandler, Ready


class ServerProcess(Protocol):
    """What the loop needs of one code server process (CodeServerProcess, or a fake)."""

    pid: int | None
    create_time: float | None

    @property
    def started(self) -> bool: ...
    @property
    def returncode(self) -> int | None: ...
    async def start(self, startup_timeout: float) -> Ready: ...
    async def wait(self) -> int: ...
    async def stop(self, timeout: float) -> int | None: ...
    async def kill(self) -> None: ...
    def kill_now(self) -> None: ...
    def memory_bytes(self) -> int: ...
    def tail_text(self) -> str: ...


Spawn = Callable[
    [str, list[str], Mapping[str, str], "str | None", OutputHandler, Path], ServerProcess
]


@dataclass(frozen=True)
class Started:
    """A process reported ready; SOURCE fingerprints the code it was started from."""

    process: ServerProcess
    ready: Ready
    source: str = ""


@dataclass(frozen=True)
class StartFailed:
    """A process exited or missed its deadline before it was ready."""

    reason: str


@dataclass(frozen=True)
class Ended:
    """A serving process exited, or was killed for failing its health or memory checks."""

    failed: bool
    reason: str


class Asked(enum.Enum):
    """What a person (or the supervisor) asked for while the loop waited."""

    STOP = "stop"
    HANDOVER = "handover"
