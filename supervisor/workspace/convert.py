"""The one converter from YAML nodes to a WorkspaceSpec; every problem is kept with its place."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

from yaml.nodes import MappingNode, Node, SequenceNode

from supervisor.workspace.entries import (
    CODE_KEYS,
    ENVIRONMENT_KEYS,
    GRPC_KEYS,
    OUR_KEYS,
    REMOTE_OUR_KEYS,
    TARGET_KEYS,
    EntryReader,
    default_grpc_name,
)
from supervisor.workspace.readers import INVALID, Fields
from supervisor.workspace.specs import (
    KINDS,
    DagsterSpec,
    HealthSpec,
    LocationSpec,
    RestartSpec,
    UiSpec,
    WorkspaceSpec,
)
from supervisor.workspace.ui_block import UiBlockReader
from supervisor.workspace.yamlnodes import (
    child,
    describe,
    is_null,
    is_str,
    line_of,
    mapping_items,
)

TOP_KEYS = ("load_from", "defaults", "envs_dir", "dagster", "ui")
MERGED_KEYS = ("env", "health", "restart")  # mappings that merge key-wise over defaults
NO_ENTRIES = "has no load_from entries; add some, such as load_from: [{python_module: my_module}]"
ENTRY_EXAMPLE = "an entry such as {python_module: my_module}"


class Converter(EntryReader, UiBlockReader):
    """Turns the nodes of one workspace file into specs, collecting every problem."""

    # The file as a whole.

    def workspace(self, node: Node | None, path: Path) -> WorkspaceSpec:
        """The spec of a whole file; raises WorkspaceError listing every problem."""
        self.source = path
        envs_dir, envs_dir_line = self.root / "envs", 0
        defaults = Fields()
        dagster = DagsterSpec()
        ui = UiSpec()
        entries, prefix = None, ""
        if isinstance(node, MappingNode):
            items = mapping_items(node, "", self.problems)
            # A misspelt load_from gets its did-you-mean; "no entries" on top would be noise.
            misspelt = difflib.get_close_matches(
                "load_from", [n for n in items if n != "load_from"]
            )
            for name, (key, _) in items.items():
                if name in KINDS:
                    self.report(key, name, f"entries go in a list: load_from: [{{{name}: ...}}]")
                elif name in OUR_KEYS:
                    self.report(key, name, "put it under defaults: or inside an entry")
                elif name not in TOP_KEYS:
                    self.unknown(key, "", name, TOP_KEYS)
            if "envs_dir" in items:
                envs_dir = self.path(items["envs_dir"][1], "envs_dir", envs_dir)
                envs_dir_line = items["envs_dir"][1].start_mark.line + 1
            if "dagster" in items:
                dagster = self.dagster_block(items["dagster"][1])
            if "ui" in items:
                ui = self.ui_block(items["ui"][1])
            if "defaults" in items:
                defaults = self.defaults(items["defaults"][1], "defaults")
            if "load_from" in items:
                entries, prefix = items["load_from"][1], "load_from"
            elif not misspelt:
                self.report(node, "", NO_ENTRIES)
        elif isinstance(node, SequenceNode):
            entries = node
        elif node is None or is_null(node):
            self.report(0, "", NO_ENTRIES)
        else:
            self.expected(node, "", "a mapping with load_from (or a list of entries)")
        located: list[tuple[LocationSpec, str]] = []
        if entries is not None:
            if not isinstance(entries, SequenceNode) or not entries.value:
                self.expected(
                    entries, prefix, "a list of entries such as - python_module: my_module"
                )
            else:
                for index, item in enumerate(entries.value):
                    found = self.entry(item, child(prefix, index), defaults)
                    if found is not None:
                        located.append(found)
        self.check_names(located)
        self.problems.raise_if_any()
        return WorkspaceSpec(
            path,
            envs_dir,
            tuple(spec for spec, _ in located),
            envs_dir_line,
            files=(path,),
            cwd=self.cwd,
            warnings=self.problems.rendered_warnings(),
            dagster=dagster,
            ui=ui,
        )

    def defaults(self, node: Node, path: str) -> Fields:
        into = Fields()
        if is_null(node):
            return into
        if not isinstance(node, MappingNode):
            self.expected(node, path, 'a mapping of defaults such as {python: "3.11"}')
            return into
        for name, (key, value) in mapping_items(node, path, self.problems).items():
            if name in OUR_KEYS:
                self.our_key(name, value, child(path, name), into)
            else:
                self.unknown(key, path, name, OUR_KEYS)
        if "restart" in into.values:
            self.check_backoff(
                into.values["restart"], into.nodes["restart"], child(path, "restart")
            )
        return into

    def entry(self, node: Node, path: str, defaults: Fields) -> tuple[LocationSpec, str] | None:
        """One load_from entry as a spec and its key path; None when it cannot be named."""
        if not isinstance(node, MappingNode):
            self.expected(node, path, ENTRY_EXAMPLE)
            return None
        items = mapping_items(node, path, self.problems)
        kinds = [name for name in items if name in KINDS]
        if len(kinds) > 1:
            self.report(
                items[kinds[1]][0],
                path,
                f"expected exactly one of {', '.join(KINDS)}; got {' and '.join(kinds)}",
            )
            return None
        if not items:
            self.expected(node, path, ENTRY_EXAMPLE)
        belongs_inside = {*OUR_KEYS, *CODE_KEYS, *GRPC_KEYS, *TARGET_KEYS.values()}
        for name, (key, value) in items.items():
            if kinds and name in belongs_inside:
                self.report(
                    key,
                    child(path, name),
                    f"put {name} inside the {kinds[0]} mapping, beside its other keys;"
                    f" got {describe(value)}",
                )
            elif name not in KINDS:
                self.unknown(key, path, name, KINDS)
        if not kinds:
            return None
        kind = kinds[0]
        kpath = child(path, kind)
        value = items[kind][1]
        self.entry_line, self.entry_path = line_of(node), kpath
        if kind == "grpc_server":
            spec = self.remote(value, kpath, line_of(node), defaults)
        else:
            spec = self.local(kind, value, kpath, line_of(node), defaults)
        return None if spec is None else (spec, kpath)

    def check_names(self, located: list[tuple[LocationSpec, str]]) -> None:
        first: dict[str, tuple[LocationSpec, str]] = {}
        for spec, path in located:
            if spec.name not in first:
                first[spec.name] = (spec, path)
                continue
            other, other_path = first[spec.name]
            self.report(
                spec.line,
                path,
                f"duplicate location name, also used at line {other.line} ({other_path});"
                f" set location_name to tell them apart; got {spec.name!r}",
            )

    # The four kinds of entry.

    def local(
        self, kind: str, node: Node, path: str, line: int, defaults: Fields
    ) -> LocationSpec | None:
        """A python_module, python_file, python_package or autoload_defs_module entry."""
        read = self.local_keys(kind, node, path)
        if read is None:
            return None
        given, ours = read
        spec = self.local_targets(kind, given, terse=is_str(node))
        if "executable_path" in given:
            for name in ENVIRONMENT_KEYS:
                if name in ours.nodes:
                    self.report(
                        ours.nodes[name],
                        child(path, name),
                        f"executable_path runs that interpreter as is, so {name} cannot apply;"
                        f" remove one of them; got {describe(ours.nodes[name])}",
                    )
        if INVALID in (spec.get("name", INVALID), spec.get("module_name"), spec.get("python_file")):
            return None  # unnamed, or named after a bad target: no duplicate check to make
        merged = self.merge(defaults, ours, path)
        if "executable_path" in spec:  # an interpreter used as is: nothing to pick or install
            for name in ENVIRONMENT_KEYS:
                merged.pop(name, None)
        spec = {name: value for name, value in spec.items() if value is not INVALID}
        return self.build(kind, line, spec, merged)

    def remote(self, node: Node, path: str, line: int, defaults: Fields) -> LocationSpec | None:
        """A grpc_server entry: a code server that someone else runs."""
        if not isinstance(node, MappingNode):
            self.expected(node, path, "a mapping with host and port (or socket)")
            return None
        spec, ours, items = self.remote_keys(node, path)
        if ("port" in items) == ("socket" in items):
            got = "both" if "port" in items else "neither"
            self.report(node, path, f"expected exactly one of port and socket; got {got}")
            return None
        written = spec.pop("socket_as_written", None)
        if spec.get("ssl") and "socket" in items:
            self.report(
                items["ssl"][1],
                child(path, "ssl"),
                "TLS applies to a host and port; a Unix socket is local: remove ssl or use port",
            )
            return None
        if INVALID in (spec["host"], spec.get("port"), spec.get("socket"), spec.get("name")):
            return None
        spec.setdefault("name", default_grpc_name(spec["host"], spec.get("port"), written))
        merged = {k: v for k, v in self.merge(defaults, ours, path).items() if k in REMOTE_OUR_KEYS}
        spec = {name: value for name, value in spec.items() if value is not INVALID}
        return self.build("grpc_server", line, spec, merged)

    def merge(self, defaults: Fields, ours: Fields, path: str) -> dict[str, Any]:
        """Our keys of an entry over the defaults; env, health and restart merge key-wise."""
        merged = dict(defaults.values)
        for name, value in ours.values.items():
            merged[name] = {**merged.get(name, {}), **value} if name in MERGED_KEYS else value
        if "restart" in ours.values:
            self.check_backoff(merged["restart"], ours.nodes["restart"], child(path, "restart"))
        return merged

    def build(
        self, kind: str, line: int, spec: dict[str, Any], merged: dict[str, Any]
    ) -> LocationSpec:
        merged = dict(merged)
        requirements, requirements_file = merged.pop("requirements", ((), None))
        env = tuple(sorted(merged.pop("env", {}).items()))
        health = HealthSpec(**merged.pop("health", {}))
        restart = RestartSpec(**merged.pop("restart", {}))
        return LocationSpec(
            kind=kind,
            line=line,
            source=self.source,
            **spec,
            **merged,
            requirements=requirements,
            requirements_file=requirements_file,
            env=env,
            health=health,
            restart=restart,
        )
