"""The top-level `dagster:` block: whether and where Dagster's webserver and daemon run.

dagster: false                      # run neither
dagster:
  webserver: {host: 127.0.0.1, port: 3000}   # or false; port 0: a free port
  daemon: true
  version: "1.13.28"                # dagster in their environment: a version or a specifier
  python: "3.11"                    # their interpreter; the supervisor's own when absent
"""

from __future__ import annotations

import ipaddress
from typing import Any

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from yaml.nodes import MappingNode, Node, ScalarNode

from supervisor.workspace.readers import INVALID, Reader
from supervisor.workspace.specs import DEFAULT_WEBSERVER_HOST, DEFAULT_WEBSERVER_PORT, DagsterSpec
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

BLOCK_KEYS = ("webserver", "daemon", "version", "python")
WEBSERVER_KEYS = ("host", "port")
VERSION_WANTED = 'a dagster version in quotes ("1.13.28") or a specifier (">=1.13,<1.14")'


def dagster_version_specifier(text: str) -> str:
    """TEXT as a specifier: a bare version pins it ("1.13.28" -> "==1.13.28"); ValueError
    when it is neither."""
    text = text.strip()
    candidate = text if text[:1] in "<>=!~" else "==" + text
    try:
        SpecifierSet(candidate)
    except InvalidSpecifier:
        raise ValueError(f"expected {VERSION_WANTED}; got {text!r}") from None
    return candidate


class DagsterBlockReader(Reader):
    """Reads the `dagster:` block (mixed into the workspace converter)."""

    def dagster_block(self, node: Node, path: str = "dagster") -> DagsterSpec:
        line = line_of(node)
        if is_null(node):
            return DagsterSpec(line=line)
        if isinstance(node, ScalarNode) and node.tag == BOOL:
            on = bool(scalar(node))
            return DagsterSpec(webserver=on, daemon=on, line=line)
        if not isinstance(node, MappingNode):
            self.expected(node, path, "false, or a mapping with any of " + ", ".join(BLOCK_KEYS))
            return DagsterSpec(line=line)
        found: dict[str, Any] = {"line": line}
        for name, (key, value) in mapping_items(node, path, self.problems).items():
            vpath = child(path, name)
            if name == "webserver":
                found.update(self._webserver(value, vpath))
            elif name == "daemon":
                if isinstance(value, ScalarNode) and value.tag == BOOL:
                    found["daemon"] = bool(scalar(value))
                else:
                    self.expected(value, vpath, "true or false")
            elif name == "version":
                if is_str(value):
                    spec = self.check(value, vpath, dagster_version_specifier, value.value)
                    if spec is not INVALID:
                        found["version"] = spec
                else:
                    self.expected(value, vpath, VERSION_WANTED)
            elif name == "python":
                python = self.python(value, vpath)
                if python is not INVALID:
                    found["python"] = python
            else:
                self.unknown(key, path, name, BLOCK_KEYS)
        return DagsterSpec(**found)

    def _webserver(self, node: Node, path: str) -> dict[str, Any]:
        if isinstance(node, ScalarNode) and node.tag == BOOL:
            return {"webserver": bool(scalar(node))}
        if not isinstance(node, MappingNode):
            self.expected(node, path, "false, or a mapping with host and port")
            return {}
        found: dict[str, Any] = {}
        for name, (key, value) in mapping_items(node, path, self.problems).items():
            vpath = child(path, name)
            if name == "host":
                if is_str(value) and value.value.strip():
                    found["host"] = value.value.strip()
                    if not loopback(found["host"]):
                        self.problems.warn(
                            value,
                            vpath,
                            f"the Dagster webserver listens on {found['host']}, beyond this"
                            " machine; it asks no password, so whoever reaches it can run the"
                            " workspace's code",
                        )
                else:
                    self.expected(
                        value, vpath, f"a host name or address ({DEFAULT_WEBSERVER_HOST})"
                    )
            elif name == "port":
                port = self.webserver_port(value, vpath)
                if port is not INVALID:
                    found["port"] = port
            else:
                self.unknown(key, path, name, WEBSERVER_KEYS)
        return found

    def webserver_port(self, node: Node, path: str) -> Any:
        """A port from 0 (a free one) to 65535."""
        if isinstance(node, ScalarNode) and node.tag == INT:
            number = self.number(node)
            if 0 <= number <= 65535:
                return int(number)
        return self.expected(
            node,
            path,
            f"a port from 1 to 65535, or 0 for a free one (default {DEFAULT_WEBSERVER_PORT})",
        )


def loopback(host: str) -> bool:
    """True when HOST is this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
