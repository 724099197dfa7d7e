"""The top-level `ui:` block: where `up` serves the supervisor's own dashboard.

ui: false                           # no dashboard
ui:
  host: 127.0.0.1                   # beyond loopback, every request needs the token
  port: 3030                        # 0: a free port
  enabled: true
  token_file: .supervisor-ui-token  # the token, read from this file (relative to this one)
"""

from __future__ import annotations

from typing import Any

from yaml.nodes import MappingNode, Node, ScalarNode

from supervisor.workspace import values
from supervisor.workspace.dagster_block import DagsterBlockReader, loopback
from supervisor.workspace.readers import INVALID
from supervisor.workspace.specs import DEFAULT_UI_HOST, DEFAULT_UI_PORT, UiSpec
from supervisor.workspace.yamlnodes import (
    BOOL,
    INT,
    child,
    is_null,
    is_str,
    line_of,
    mapping_items,
    scalar,
)

UI_KEYS = ("host", "port", "enabled", "token_file")


class UiBlockReader(DagsterBlockReader):
    """Reads the `ui:` block (mixed into the workspace converter)."""

    def ui_block(self, node: Node, path: str = "ui") -> UiSpec:
        line = line_of(node)
        if is_null(node):
            return UiSpec(line=line)
        if isinstance(node, ScalarNode) and node.tag == BOOL:
            return UiSpec(enabled=bool(scalar(node)), line=line)
        if not isinstance(node, MappingNode):
            self.expected(node, path, "false, or a mapping with any of " + ", ".join(UI_KEYS))
            return UiSpec(line=line)
        found: dict[str, Any] = {"line": line}
        for name, (key, value) in mapping_items(node, path, self.problems).items():
            vpath = child(path, name)
            if name == "enabled":
                if isinstance(value, ScalarNode) and value.tag == BOOL:
                    found["enabled"] = bool(scalar(value))
                else:
                    self.expected(value, vpath, "true or false")
            elif name == "host":
                if is_str(value) and value.value.strip():
                    found["host"] = value.value.strip()
                    if not loopback(found["host"]):
                        self.problems.warn(
                            value,
                            vpath,
                            f"the dashboard listens on {found['host']}, beyond this machine;"
                            " every request then needs its token",
                        )
                else:
                    self.expected(value, vpath, f"a host name or address ({DEFAULT_UI_HOST})")
            elif name == "port":
                if isinstance(value, ScalarNode) and value.tag == INT:
                    number = self.number(value)
                    if 0 <= number <= 65535:
                        found["port"] = int(number)
                        continue
                self.expected(
                    value,
                    vpath,
                    f"a port from 1 to 65535, or 0 for a free one (default {DEFAULT_UI_PORT})",
                )
            elif name == "token_file":
                if is_str(value) and value.value.strip():
                    token_file = self.check(
                        value, vpath, values.absolute_path, value.value, self.root
                    )
                    if token_file is not INVALID:
                        found["token_file"] = token_file
                else:
                    self.expected(value, vpath, "a path relative to the workspace file")
            else:
                self.unknown(key, path, name, UI_KEYS)
        return UiSpec(**found)
