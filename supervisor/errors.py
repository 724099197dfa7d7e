"""The errors the supervisor raises; each says what, where, the bad value and what is allowed."""

from __future__ import annotations

from collections.abc import Sequence


class SupervisorError(Exception):
    """Root of every error the CLI reports without a traceback."""

    exit_code = 1


class UsageError(SupervisorError):
    """The command line asks for something that cannot be done."""

    exit_code = 2


class WorkspaceError(SupervisorError):
    """The workspace file (or the -m/-f flags that stand in for it) is invalid: every problem."""

    exit_code = 2

    def __init__(self, problems: str | Sequence[str], source: str = "") -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        self.source = source
        if len(self.problems) == 1:
            message = self.problems[0]
        else:
            head = f"{len(self.problems)} problems"
            message = "\n".join([f"{source}: {head}" if source else head, *self.problems])
        super().__init__(message)


class CodeServerError(SupervisorError):
    """A call to a code server failed, or a code server could not start."""

    def __init__(self, location: str, call: str, address: str, reason: str) -> None:
        self.location = location
        self.call = call
        self.address = address
        self.reason = reason
        where = f"location {location!r}" if location else "code server"
        super().__init__(f"{where} ({address}): {call} failed: {reason}")


class InterpreterNotFoundError(SupervisorError):
    """No interpreter matches what a location asks for; the message lists what was found."""

    exit_code = 1


class EnvBuildError(SupervisorError):
    """An environment could not be built; names the locations that needed it."""

    def __init__(
        self, locations: tuple[str, ...] | list[str], reason: str, where: str = ""
    ) -> None:
        self.locations = tuple(locations)
        self.reason = reason
        self.where = where
        names = ", ".join(repr(name) for name in self.locations)
        plural = "s" if len(self.locations) > 1 else ""
        prefix = f"{where}: " if where else ""
        super().__init__(f"{prefix}environment of location{plural} {names}: {reason}")
