"""The errors the supervisor raises; each says what, where, the bad value and what is allowed."""

from __future__ import annotations


class SupervisorError(Exception):
    """Root of every error the CLI reports without a traceback."""

    exit_code = 1


class UsageError(SupervisorError):
    """The command line asks for something that cannot be done."""

    exit_code = 2


class CodeServerError(SupervisorError):
    """A call to a code server failed, or a code server could not start."""

    def __init__(self, location: str, call: str, address: str, reason: str) -> None:
        self.location = location
        self.call = call
        self.address = address
        self.reason = reason
        where = f"location {location!r}" if location else "code server"
        super().__init__(f"{where} ({address}): {call} failed: {reason}")
