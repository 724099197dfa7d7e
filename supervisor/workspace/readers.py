"""Readers of single values in a workspace file: each checks a node and reports what is wrong."""

from __future__ import annotations

import contextlib
import difflib
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from supervisor.workspace import values
from supervisor.workspace.requirements import RequirementsFile, add_unique, normalize_requirement
from supervisor.workspace.specs import BUILDERS, RESTART_POLICIES, RUNTIMES, RestartSpec
from supervisor.workspace.yamlnodes import (
    BOOL,
    FLOAT,
    INT,
    Problems,
    child,
    describe,
    is_null,
    is_str,
    kind_of,
    mapping_items,
    scalar,
)

INVALID: Any = object()  # a value already reported: its field keeps the default
RESTART_DEFAULTS = {f.name: f.default for f in fields(RestartSpec)}
_NUMBERS = (INT, FLOAT)


@dataclass
class Fields:
    """Our keys as read from one mapping (an entry or defaults), with their nodes."""

    values: dict[str, Any] = field(default_factory=dict)
    nodes: dict[str, Node] = field(default_factory=dict)


class Reader:
    """Reports problems at nodes, and reads our keys and Dagster's scalar values."""

    def __init__(self, root: Path, problems: Problems) -> None:
        self.root = root  # the workspace file's folder: relative paths start here
        self.problems = problems

    # Reporting: each returns INVALID so that a reader can `return self.report(...)`.

    def report(self, node: Node | int | None, path: str, message: str) -> Any:
        self.problems.add(node, path, message)
        return INVALID

    def expected(self, node: Node, path: str, wanted: str) -> Any:
        return self.report(node, path, f"expected {wanted}; got {describe(node)}")

    def check(self, node: Node, path: str, func: Callable[..., Any], *args: Any) -> Any:
        """FUNC(*ARGS), or its ValueError reported at NODE."""
        try:
            return func(*args)
        except ValueError as exc:
            return self.report(node, path, str(exc))

    def unknown(self, key: Node, path: str, name: str, allowed: Sequence[str]) -> None:
        close = difflib.get_close_matches(name, allowed, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"allowed keys: {', '.join(allowed)}"
        self.report(key, child(path, name), f"unknown key; {hint}")

    # Dagster's values.

    def dagster_string(self, node: Node, path: str) -> Any:
        """A string, or Dagster's `{env: VAR}` form read from the environment."""
        if is_str(node):
            return node.value
        from_env = self.from_env(node, path)
        return self.expected(node, path, "a string") if from_env is None else from_env

    def from_env(self, node: Node, path: str) -> Any:
        """The value of `{env: VAR}`; None when NODE is not of that form."""
        if not (
            isinstance(node, MappingNode)
            and len(node.value) == 1
            and is_str(node.value[0][0])
            and node.value[0][0].value == "env"
        ):
            return None
        var = node.value[0][1]
        vpath = child(path, "env")
        if not is_str(var) or not var.value:
            return self.expected(var, vpath, "the name of an environment variable")
        if var.value not in os.environ:
            return self.report(var, vpath, f"environment variable {var.value} is not set")
        return os.environ[var.value]

    def port(self, node: Node, path: str) -> Any:
        wanted = "a port number from 1 to 65535"
        if isinstance(node, ScalarNode) and node.tag == INT:
            number = self.number(node)
            return int(number) if 1 <= number <= 65535 else self.expected(node, path, wanted)
        text = self.from_env(node, path)
        if text is None:
            return self.expected(node, path, wanted)
        if text is INVALID:
            return INVALID
        if text.isascii() and text.isdigit() and len(text) <= 5 and 1 <= int(text) <= 65535:
            return int(text)
        return self.report(node, path, f"expected {wanted}; got {text!r} from the environment")

    def ssl(self, node: Node, path: str) -> None:
        if isinstance(node, ScalarNode) and node.tag == BOOL:
            if scalar(node):
                self.report(node, path, "TLS to code servers is not supported; use ssl: false")
        else:
            self.expected(node, path, "false (TLS to code servers is not supported)")

    def path(self, node: Node, path: str, default: Path) -> Path:
        """A path relative to the workspace file's folder, made absolute."""
        if not is_str(node):
            self.expected(node, path, "a path relative to the workspace file")
            return default
        found = self.check(node, path, values.absolute_path, node.value, self.root)
        return default if found is INVALID else found

    # Our keys.

    def our_key(self, name: str, node: Node, path: str, into: Fields) -> None:
        """Read our key NAME into INTO (when valid); remember its node for later messages."""
        reader: Callable[[Node, str], Any] = {
            "python": self.python,
            "requirements": self.requirements,
            "env": self.env,
            "startup_timeout": self.seconds,
            "drain_timeout": self.seconds,
            "heartbeat_timeout": self.seconds,
            "memory_limit": self.memory,
            "health": self.health,
            "restart": self.restart,
            "builder": self.builder,
            "runtime": self.runtime,
            "standby": self.flag,
        }[name]
        into.nodes[name] = node
        value = reader(node, path)
        if value is not INVALID:
            into.values[name] = value

    def python(self, node: Node, path: str) -> Any:
        if isinstance(node, ScalarNode) and node.tag in _NUMBERS:
            # The classic trap: YAML reads 3.10 as the float 3.1.
            return self.report(
                node,
                path,
                f"expected a version string; got {describe(node)} (YAML reads {node.value} as"
                f' a number); write the version as a string: python: "{node.value}"',
            )
        if not is_str(node):
            return self.expected(node, path, 'a version such as "3.11" or an interpreter path')
        return self.check(node, path, values.python_value, node.value, self.root)

    def requirements(self, node: Node, path: str) -> Any:
        """(normalized requirements, the requirements file or None)."""
        if isinstance(node, SequenceNode):
            found: list[str] = []
            for index, item in enumerate(node.value):
                ipath = child(path, index)
                if not is_str(item):
                    self.expected(item, ipath, 'a requirement string such as "pandas==1.5.3"')
                    continue
                try:
                    add_unique(found, normalize_requirement(item.value))
                except ValueError as exc:
                    self.report(item, ipath, f"invalid requirement ({exc}); got {describe(item)}")
            return tuple(found), None
        wanted = "a list of requirements (PEP 508) or the path of a requirements file"
        if not is_str(node):
            return self.expected(node, path, wanted)
        file = self.check(node, path, values.absolute_path, node.value, self.root)
        if file is INVALID:
            return INVALID
        if not values.is_file(file):
            hint = ""
            with contextlib.suppress(ValueError):
                normalize_requirement(node.value)  # a lone requirement where a list was meant?
                hint = f"; to list one requirement write requirements: [{node.value!r}]"
            return self.report(
                node, path, f"expected {wanted}; no file at {file}; got {describe(node)}{hint}"
            )
        reader = RequirementsFile(self.root)
        reader.read(file)
        for problem in reader.problems:
            self.report(node, path, problem)
        return (tuple(reader.requirements), file) if not reader.problems else INVALID

    def env(self, node: Node, path: str) -> Any:
        if not isinstance(node, MappingNode):
            return self.expected(node, path, "a mapping of variable names to strings")
        found: dict[str, str] = {}
        for name, (key, value) in mapping_items(node, path, self.problems).items():
            vpath = child(path, name)
            if not name or "=" in name or "\0" in name:
                self.report(key, vpath, f"expected a variable name without '='; got {name!r}")
            elif isinstance(value, ScalarNode) and value.tag in (*_NUMBERS, BOOL):
                self.report(
                    value,
                    vpath,
                    f"expected a string; got {kind_of(value)} {describe(value)};"
                    f' quote it: {name}: "{value.value}"',
                )
            elif not is_str(value) or "\0" in value.value:
                self.expected(value, vpath, "a string")
            else:
                found[name] = value.value
        return found

    def number(self, node: Node) -> float:
        """NODE's numeric value; NaN when it is not a number, ±inf when too long to read."""
        if not isinstance(node, ScalarNode) or node.tag not in _NUMBERS:
            return math.nan
        try:
            return scalar(node)  # type: ignore[return-value]  # _NUMBERS tags read as int or float
        except ValueError:
            return -math.inf if node.value.lstrip().startswith("-") else math.inf

    def seconds(self, node: Node, path: str) -> Any:
        number = self.number(node)
        if not number > 0:  # NaN too
            return self.expected(node, path, "a positive number of seconds")
        if number > values.MAX_SECONDS:
            return self.expected(node, path, f"at most {values.MAX_SECONDS} seconds")
        return float(number)

    def count(self, node: Node, path: str, minimum: int) -> Any:
        wanted = "a positive integer" if minimum > 0 else "a non-negative integer"
        if not isinstance(node, ScalarNode) or node.tag != INT or not self.number(node) >= minimum:
            return self.expected(node, path, wanted)
        if self.number(node) > values.MAX_COUNT:
            return self.expected(node, path, f"at most {values.MAX_COUNT}")
        return int(self.number(node))

    def memory(self, node: Node, path: str) -> Any:
        if is_null(node):
            return None
        if isinstance(node, ScalarNode) and node.tag == INT:
            number = self.number(node)
            if math.isinf(number):
                return self.expected(node, path, f"at most {values.MAX_BYTES} bytes")
            return self.check(node, path, values.check_bytes, int(number), node.value)
        if is_str(node):
            return self.check(node, path, values.parse_size, node.value)
        return self.expected(node, path, values.SIZE_WANTED)

    def health(self, node: Node, path: str) -> Any:
        return self.nested(
            node,
            path,
            {
                "interval": self.seconds,
                "timeout": self.seconds,
                "failures": lambda n, p: self.count(n, p, 1),
            },
        )

    def restart(self, node: Node, path: str) -> Any:
        return self.nested(
            node,
            path,
            {
                "policy": self.policy,
                "max_restarts": self.max_restarts,
                "window": self.seconds,
                "backoff_initial": self.seconds,
                "backoff_max": self.seconds,
                "stable_after": self.seconds,
            },
        )

    def nested(self, node: Node, path: str, readers: dict[str, Callable[[Node, str], Any]]) -> Any:
        """A mapping of sub-keys (health, restart), each read by its reader."""
        if not isinstance(node, MappingNode):
            return self.expected(node, path, f"a mapping with any of {', '.join(readers)}")
        found: dict[str, Any] = {}
        for name, (key, value) in mapping_items(node, path, self.problems).items():
            if name not in readers:
                self.unknown(key, path, name, tuple(readers))
                continue
            read = readers[name](value, child(path, name))
            if read is not INVALID:
                found[name] = read
        return found

    def policy(self, node: Node, path: str) -> Any:
        if is_str(node) and node.value in RESTART_POLICIES:
            return node.value
        return self.expected(node, path, f"one of {', '.join(RESTART_POLICIES)}")

    def builder(self, node: Node, path: str) -> Any:
        if is_str(node) and node.value in BUILDERS:
            return node.value
        return self.expected(node, path, f"one of {', '.join(BUILDERS)}")

    def runtime(self, node: Node, path: str) -> Any:
        if is_str(node) and node.value in RUNTIMES:
            return node.value
        return self.expected(node, path, f"one of {', '.join(RUNTIMES)}")

    def flag(self, node: Node, path: str) -> Any:
        if isinstance(node, ScalarNode) and node.tag == BOOL:
            return bool(scalar(node))
        return self.expected(node, path, "true or false")

    def max_restarts(self, node: Node, path: str) -> Any:
        return None if is_null(node) else self.count(node, path, 0)

    def check_backoff(self, restart: dict[str, Any], node: Node, path: str) -> None:
        """Back-off must grow from backoff_initial up to backoff_max, not shrink."""
        merged = {**RESTART_DEFAULTS, **restart}
        initial, cap = merged["backoff_initial"], merged["backoff_max"]
        if initial > cap:
            self.report(
                node,
                path,
                "expected backoff_initial no larger than backoff_max;"
                f" got backoff_initial {initial:g} and backoff_max {cap:g}",
            )
