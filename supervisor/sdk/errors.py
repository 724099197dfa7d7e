"""The SDK's error type and the key rule shared by assets, resources and schedules."""

from __future__ import annotations

import re
from typing import Any, Iterable

# ASCII only: keys become parameter names, file names and CLI arguments.
_KEY_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")

KEY_RULE = "use letters, digits and underscores, not starting with a digit"


class DefinitionsError(Exception):
    """A code location's definitions are invalid; the message says which and why."""

    def __init__(self, message: str, problems: Iterable[str] | None = None) -> None:
        super().__init__(message)
        # Every problem found, so callers (the code server, `check`) can list them one by one.
        self.problems = tuple(problems) if problems is not None else (message,)


def key_problem(value: Any, what: str) -> str | None:
    """Return why `value` is not a valid key (described as `what`), or None if it is."""
    if not isinstance(value, str):
        return f"{what} must be a string, got {type(value).__name__} {value!r}"
    if not _KEY_RE.match(value):
        return f"{what} {value!r} is not a valid key: {KEY_RULE}"
    return None


def describe(value: Any) -> str:
    """Name a value's type and show it briefly, for error messages."""
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{type(value).__name__} {text}"
