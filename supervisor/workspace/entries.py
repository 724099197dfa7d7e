"""Dagster's entry kinds, read with Dagster's meaning (its loader in dagster 1.13).

- Names: python_file -> the file's base name (`repo.py`), python_module and python_package ->
  the module or package name, each with `:ATTRIBUTE` when an attribute is given;
  autoload_defs_module -> the module name; grpc_server -> `grpc:HOST:PORT` or
  `grpc:HOST:SOCKET`. An empty location_name counts as none, as in Dagster.
- python_file: relative_path and working_directory start at the workspace file's folder;
  working_directory defaults to it, except in the short form (`python_file: repo.py`), which
  Dagster runs from the current folder.
- python_module, python_package, autoload_defs_module: working_directory is relative to the
  folder the supervisor runs in, and defaults to it, because that is where Dagster's code
  server resolves it; a warning says so when that folder is not the workspace file's.
- executable_path: `~` expanded; a bare name is looked up on PATH and a relative path starts at
  the current folder, as Dagster's subprocess does. Whether it exists is checked before
  anything starts, not when the file is read.
- grpc_server: the socket path is relative to the current folder, host defaults to localhost,
  `ssl: true` connects with TLS, additional_metadata is kept (shown by `status`).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from yaml import YAMLError
from yaml.nodes import MappingNode, Node, ScalarNode

from supervisor.workspace import values
from supervisor.workspace.readers import INVALID, Fields, Reader
from supervisor.workspace.yamlnodes import (
    BOOL,
    Problems,
    child,
    describe,
    is_str,
    mapping_items,
    scalar,
    to_python,
)

TARGET_KEYS = {
    "python_module": "module_name",
    "python_file": "relative_path",
    "python_package": "package_name",
    "autoload_defs_module": "module_name",
}
CODE_KEYS = ("attribute", "working_directory", "location_name", "executable_path")
GRPC_KEYS = ("host", "port", "socket", "location_name", "ssl", "additional_metadata")
OUR_KEYS = (
    "python",
    "requirements",
    "env",
    "startup_timeout",
    "drain_timeout",
    "heartbeat_timeout",
    "memory_limit",
    "health",
    "restart",
    "builder",
    "runtime",
    "standby",
)
REMOTE_OUR_KEYS = ("health",)  # the rest shape a process we start, and we start none for it
ENVIRONMENT_KEYS = ("python", "requirements", "builder")  # what executable_path replaces
# Dagster's keys per local kind: autoload_defs_module takes no attribute.
CODE_KEYS_OF = {
    kind: tuple(k for k in CODE_KEYS if not (kind == "autoload_defs_module" and k == "attribute"))
    for kind in TARGET_KEYS
}
WHY_CWD = "as Dagster resolves it"


class EntryReader(Reader):
    """Reads the mapping of one entry of each kind into the fields of a LocationSpec."""

    def __init__(self, root: Path, problems: Problems, cwd: Path) -> None:
        super().__init__(root, problems)
        self.cwd = cwd  # the folder the supervisor runs in

    # python_module, python_file, python_package, autoload_defs_module.

    def local_keys(
        self, kind: str, node: Node, path: str
    ) -> tuple[dict[str, tuple[Node, str, str]], Fields] | None:
        """Dagster's keys of a local entry (key -> node, text, key path) and ours; None when
        the entry is not even of the right shape."""
        target_key = TARGET_KEYS[kind]
        code_keys = CODE_KEYS_OF[kind]
        ours = Fields()
        given: dict[str, tuple[Node, str, str]] = {}
        if is_str(node):
            given[target_key] = (node, node.value, path)
        elif isinstance(node, MappingNode):
            items = self.mapping(node, path)
            for name, (key, value) in items.items():
                vpath = child(path, name)
                if name == target_key or name in code_keys:
                    text = self.dagster_string(value, vpath)
                    if text is not INVALID:
                        given[name] = (value, text, vpath)
                elif name in OUR_KEYS:
                    self.our_key(name, value, vpath, ours)
                else:
                    self.unknown(key, path, name, (target_key, *code_keys, *OUR_KEYS))
            if target_key not in items:
                self.expected(node, path, f"a mapping with {target_key}")
        else:
            noun = "a file path" if kind == "python_file" else f"a {target_key.replace('_', ' ')}"
            self.expected(node, path, f"{noun} or a mapping with {target_key}")
            return None
        return given, ours

    def local_targets(
        self, kind: str, given: dict[str, tuple[Node, str, str]], terse: bool
    ) -> dict[str, Any]:
        """The checked values of Dagster's keys, under the names of LocationSpec's fields.

        TERSE: the entry is the short form (`python_file: repo.py`)."""
        spec: dict[str, Any] = {}
        target_key = TARGET_KEYS[kind]
        for name, (node, text, vpath) in given.items():
            if name == target_key and kind == "python_file":
                spec["python_file"] = self.check(node, vpath, values.rebased_path, text, self.root)
            elif name == target_key:
                spec["module_name"] = self.check(node, vpath, values.check_module_name, text)
            elif name == "attribute":
                spec["attribute"] = self.check(node, vpath, values.check_identifier, text)
            elif name == "location_name" and text:  # an empty one is none, as in Dagster
                spec["name"] = self.check(node, vpath, values.check_location_name, text)
            elif name == "working_directory":
                spec["working_directory"] = self.folder(kind, node, vpath, text)
            elif name == "executable_path":
                spec["executable_path"] = self.executable(node, vpath, text)
        if "working_directory" not in spec:
            # Dagster's quirk: the short form of python_file has no working_directory, so its
            # code server imports from the current folder, as for the module kinds.
            spec["working_directory"] = self.folder("" if terse else kind, None, "", None)
        if "name" not in spec and target_key in given:
            spec["name"] = default_local_name(kind, given[target_key][1], spec.get("attribute"))
        return spec

    def folder(self, kind: str, node: Node | None, path: str, text: str | None) -> Any:
        """The working directory of an entry: see the module's docstring for the rule."""
        base = self.root if kind == "python_file" else self.cwd
        if not text or node is None:
            found = base
        else:
            found = self.check(node, path, values.rebased_path, text, base)
        if kind == "python_file" or found is INVALID or self.cwd == self.root:
            return found
        if not os.path.isabs(text or ""):
            written = f"working_directory {text!r}" if text else "no working_directory"
            self.warn(
                node if node is not None else self.entry_line,
                path or child(self.entry_path, "working_directory"),
                f"{written}: imports from {found}, relative to the current folder {WHY_CWD};"
                f" the workspace file's folder is {self.root}; run the supervisor there, or give"
                " an absolute working_directory",
            )
        return found

    def executable(self, node: Node, path: str, text: str) -> Any:
        """executable_path as Dagster runs it: `~` expanded, a bare name found on PATH when
        it is there (kept as written when not: that is reported before anything starts)."""
        if not text.strip() or "\0" in text:
            return self.expected(node, path, "the path of a Python interpreter")
        expanded = os.path.expanduser(text)
        if "/" not in expanded:
            found = shutil.which(expanded)
            return Path(os.path.abspath(found)) if found else Path(expanded)
        if not os.path.isabs(expanded) and self.cwd != self.root:
            self.warn(
                node,
                path,
                f"{text!r} starts at the current folder {self.cwd} {WHY_CWD}, not at the"
                f" workspace file's folder {self.root}",
            )
        return values.rebased_path(expanded, self.cwd)

    # grpc_server.

    def remote_keys(
        self, node: MappingNode, path: str
    ) -> tuple[dict[str, Any], Fields, dict[str, Any]]:
        """Dagster's keys of a grpc_server mapping (as spec fields), ours, and the keys given."""
        ours = Fields()
        spec: dict[str, Any] = {"host": "localhost"}
        items = self.mapping(node, path)
        elsewhere = {*OUR_KEYS, *CODE_KEYS, *TARGET_KEYS.values()} - set(REMOTE_OUR_KEYS)
        for name, (key, value) in items.items():
            vpath = child(path, name)
            if name == "port":
                spec["port"] = self.port(value, vpath)
            elif name == "ssl":
                spec["ssl"] = self.flag(value, vpath)
            elif name == "additional_metadata":
                spec["metadata"] = self.metadata(value, vpath)
            elif name in ("host", "socket", "location_name"):
                text = self.dagster_string(value, vpath)
                if text is INVALID:
                    spec[name] = INVALID
                elif name == "host":
                    spec["host"] = (
                        self.check(value, vpath, values.check_host, text)
                        if text
                        else (
                            "localhost"  # an empty host is none, as in Dagster
                        )
                    )
                elif name == "location_name":
                    if text:
                        spec["name"] = self.check(value, vpath, values.check_location_name, text)
                else:
                    spec["socket_as_written"] = text
                    spec["socket"] = self.socket(value, vpath, text)
            elif name in REMOTE_OUR_KEYS:
                self.our_key(name, value, vpath, ours)
            elif name in elsewhere:
                self.report(
                    key,
                    vpath,
                    f"a grpc_server location runs elsewhere; {name} has no effect;"
                    f" got {describe(value)}",
                )
            else:
                self.unknown(key, path, name, (*GRPC_KEYS, *REMOTE_OUR_KEYS))
        return spec, ours, items

    def socket(self, node: Node, path: str, text: str) -> Any:
        found = self.check(node, path, values.rebased_path, text, self.cwd)
        if found is not INVALID and not os.path.isabs(text) and self.cwd != self.root:
            self.warn(
                node,
                path,
                f"{text!r} is {found}, relative to the current folder {WHY_CWD}, not to the"
                f" workspace file's folder {self.root}",
            )
        return INVALID if found is INVALID else str(found)

    def flag(self, node: Node, path: str) -> Any:
        if isinstance(node, ScalarNode) and node.tag == BOOL:
            return bool(scalar(node))
        return self.expected(node, path, "true or false")

    def metadata(self, node: Node, path: str) -> Any:
        """additional_metadata: any mapping (Dagster's Permissive), kept as sorted pairs of
        strings; values that are not strings are kept as JSON."""
        if not isinstance(node, MappingNode):
            return self.expected(node, path, "a mapping such as {team: data}")
        try:
            data = to_python(node)
        except (YAMLError, RecursionError, ValueError) as exc:
            reason = getattr(exc, "problem", None) or type(exc).__name__
            return self.expected(node, path, f"a mapping of plain values ({reason})")
        if not isinstance(data, dict):
            return self.expected(node, path, "a mapping such as {team: data}")
        pairs = []
        for key, value in data.items():
            text = value if isinstance(value, str) else json.dumps(value, default=str)
            pairs.append((str(key), text))
        return tuple(sorted(pairs))

    # Helpers.

    entry_line: int = 0  # the line and key path of the entry being read, for warnings
    entry_path: str = ""

    def mapping(self, node: MappingNode, path: str) -> dict[str, tuple[Node, Node]]:
        return mapping_items(node, path, self.problems)

    def warn(self, node: Node | int | None, path: str, message: str) -> None:
        self.problems.warn(node, path, message)


def default_local_name(kind: str, target: str, attribute: str | None) -> str:
    """The name Dagster gives an unnamed entry whose target is TARGET (as written)."""
    base = os.path.basename(target) if kind == "python_file" else target
    return f"{base}:{attribute}" if attribute and kind != "autoload_defs_module" else base


def default_grpc_name(host: str, port: int | None, socket: str | None) -> str:
    """The name Dagster gives an unnamed grpc_server entry (the socket as written)."""
    return f"grpc:{host}:{socket if socket else port}"
