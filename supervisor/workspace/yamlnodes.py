"""YAML as nodes with line numbers: composing, checking tags and keys, reading scalars.

PyYAML's constructors build Python objects and forget where each came from, keep the
last of duplicate keys, and honour arbitrary tags; composing to nodes keeps every
line number and lets us refuse what a workspace file has no business containing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from supervisor.errors import WorkspaceError

_CORE = "tag:yaml.org,2002:"
STR, INT, FLOAT, BOOL, NULL = (_CORE + t for t in ("str", "int", "float", "bool", "null"))
SEQ, MAP, MERGE, TIMESTAMP = (_CORE + t for t in ("seq", "map", "merge", "timestamp"))
# Dates resolve implicitly (`2024-01-01`), so they are allowed as nodes and refused as values.
ALLOWED_TAGS = frozenset({STR, INT, FLOAT, BOOL, NULL, SEQ, MAP, MERGE, TIMESTAMP})
# Longer ints are nonsense here, and Python refuses to parse ints past 4300 digits anyway.
MAX_INT_TEXT = 40
_PREVIEW = 60
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_\-]+")
_CONSTRUCTOR = yaml.constructor.SafeConstructor()


@dataclass(frozen=True)
class Problem:
    """One thing wrong, where it is."""

    line: int  # 1-based; 0 when there is no line to point at
    path: str  # key path such as load_from[1].python_module.restart.policy
    message: str

    def render(self, source: str) -> str:
        where = f"{source}:{self.line}" if self.line else source
        return f"{where} {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


@dataclass
class Problems:
    """Collects every problem so that they can be reported together."""

    source: str  # the file name as the user gave it
    items: list[Problem] = field(default_factory=list)
    # Things that load but may not mean what the writer thinks (shown, never fatal).
    warnings: list[Problem] = field(default_factory=list)
    # Nodes already refused as a whole (a bad tag): saying more about them is noise.
    refused: set[int] = field(default_factory=set)

    def add(self, where: Node | int | None, path: str, message: str) -> None:
        if isinstance(where, Node) and id(where) in self.refused:
            return
        line = where if isinstance(where, int) else line_of(where)
        self.items.append(Problem(line, path, message))

    def warn(self, where: Node | int | None, path: str, message: str) -> None:
        line = where if isinstance(where, int) else line_of(where)
        self.warnings.append(Problem(line, path, message))

    def rendered_warnings(self) -> tuple[str, ...]:
        return tuple(p.render(self.source) for p in self.warnings)

    def raise_if_any(self) -> None:
        if self.items:
            ordered = sorted(self.items, key=lambda p: p.line)  # stable: same line keeps order
            raise WorkspaceError([p.render(self.source) for p in ordered], self.source)


def to_python(node: Node) -> Any:
    """The plain Python value of NODE (a checked tree: safe tags only)."""
    return _CONSTRUCTOR.construct_object(node, deep=True)


def line_of(node: Node | None) -> int:
    return node.start_mark.line + 1 if node is not None and node.start_mark else 0


def child(path: str, key: str | int) -> str:
    """The key path of KEY (a mapping key or a list index) below PATH."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    if not _PLAIN_KEY.fullmatch(key):
        return f"{path}[{clip(repr(key))}]"
    return f"{path}.{key}" if path else key


def clip(text: str, limit: int = _PREVIEW) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def compose(text: str, problems: Problems) -> Node | None:
    """Parse TEXT into its root node; bad syntax raises WorkspaceError with line and column."""
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        what = exc.problem or "syntax error"
        if exc.context and what.startswith("but "):  # "expected one document", "but found two"
            what = f"{exc.context}, {what}"
        elif exc.context and exc.context_mark and exc.context_mark is not mark:
            what += f" ({exc.context} at line {exc.context_mark.line + 1})"
        where = f"{problems.source}:{mark.line + 1}:{mark.column + 1}" if mark else problems.source
        # Nothing after a syntax error is trustworthy: this one problem is the report.
        raise WorkspaceError(f"{where}: invalid YAML: {what}", problems.source) from None
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        character = chr(exc.character) if isinstance(exc.character, int) else exc.character
        raise WorkspaceError(
            f"{problems.source}:{line}: invalid YAML: character {character!r} is not allowed",
            problems.source,
        ) from None
    except RecursionError:
        raise WorkspaceError(
            f"{problems.source}: invalid YAML: nested too deeply", problems.source
        ) from None
    except yaml.YAMLError as exc:
        raise WorkspaceError(f"{problems.source}: invalid YAML: {exc}", problems.source) from None


def check_tree(root: Node, problems: Problems) -> None:
    """Refuse non-standard tags and duplicate keys anywhere, each node once (aliases share)."""
    seen: set[int] = set()
    stack: list[tuple[Node, str]] = [(root, "")]
    while stack:
        node, path = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if node.tag not in ALLOWED_TAGS:
            problems.add(
                node,
                path,
                f"tag {show_tag(node.tag)} is not allowed; use plain YAML values "
                "(strings, numbers, booleans, null, lists and mappings)",
            )
            problems.refused.add(id(node))
            continue
        below: list[tuple[Node, str]] = []
        if isinstance(node, MappingNode):
            first: dict[tuple[str, str], Node] = {}
            for key, value in node.value:
                if isinstance(key, ScalarNode):
                    name = (key.tag, key.value)
                    if name in first:
                        problems.add(
                            key,
                            child(path, key.value),
                            f"duplicate key (first at line {line_of(first[name])})",
                        )
                    first.setdefault(name, key)
                below.append((key, path))
                below.append((value, child(path, key.value) if is_str(key) else path))
        elif isinstance(node, SequenceNode):
            below.extend((item, child(path, i)) for i, item in enumerate(node.value))
        stack.extend(reversed(below))  # popped in file order, so problems come in file order


def show_tag(tag: str) -> str:
    return "!!" + tag[len(_CORE) :] if tag.startswith(_CORE) else tag


def is_str(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.tag == STR


def is_null(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.tag == NULL


def scalar(node: ScalarNode) -> object:
    """The Python value of a plain scalar; ValueError when it cannot be read."""
    if node.tag == STR:
        return node.value
    if node.tag == INT:
        if len(node.value) > MAX_INT_TEXT:
            raise ValueError("integer too large")
        return _CONSTRUCTOR.construct_yaml_int(node)
    if node.tag == FLOAT:
        return _CONSTRUCTOR.construct_yaml_float(node)
    if node.tag == BOOL:
        return _CONSTRUCTOR.construct_yaml_bool(node)
    if node.tag == NULL:
        return None
    raise ValueError(f"a {show_tag(node.tag)} value")


def describe(node: Node, depth: int = 2) -> str:
    """A short, safe rendering of NODE for `got ...` (Python-like repr, clipped)."""
    if isinstance(node, ScalarNode):
        if node.tag in (STR, FLOAT, BOOL, NULL):
            try:
                return clip(repr(scalar(node)))
            except ValueError:
                pass
        return clip(node.value)
    if depth <= 0:
        return "{...}" if isinstance(node, MappingNode) else "[...]"
    if isinstance(node, MappingNode):
        parts = [f"{describe(k, 0)}: {describe(v, depth - 1)}" for k, v in node.value[:3]]
        more = ", ..." if len(node.value) > 3 else ""
        return clip("{" + ", ".join(parts) + more + "}")
    if isinstance(node, SequenceNode):
        parts = [describe(item, depth - 1) for item in node.value[:3]]
        more = ", ..." if len(node.value) > 3 else ""
        return clip("[" + ", ".join(parts) + more + "]")
    return "?"


def kind_of(node: Node) -> str:
    """A word for what NODE is, for messages."""
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    return {
        STR: "a string",
        INT: "a number",
        FLOAT: "a number",
        BOOL: "a boolean",
        NULL: "null",
        TIMESTAMP: "a date",
    }.get(node.tag, "a value")


def mapping_items(
    node: MappingNode, path: str, problems: Problems, _active: frozenset[int] = frozenset()
) -> dict[str, tuple[Node, Node]]:
    """The string keys of NODE with their key and value nodes, `<<` merges applied.

    Explicit keys win over merged ones, as YAML specifies. Duplicates were reported by
    check_tree; the first one is kept.
    """
    active = _active | {id(node)}
    items: dict[str, tuple[Node, Node]] = {}
    merged: dict[str, tuple[Node, Node]] = {}
    for key, value in node.value:
        if key.tag == MERGE:
            _merge_into(merged, value, path, problems, active)
        elif not is_str(key):
            problems.add(
                key,
                path,
                f"keys must be strings (quote it); got {kind_of(key)} {describe(key)}",
            )
        else:
            items.setdefault(key.value, (key, value))
    for name, pair in merged.items():
        items.setdefault(name, pair)
    return items


def _merge_into(
    merged: dict[str, tuple[Node, Node]],
    value: Node,
    path: str,
    problems: Problems,
    active: frozenset[int],
) -> None:
    sources = value.value if isinstance(value, SequenceNode) else [value]
    for source in sources:
        if not isinstance(source, MappingNode):
            problems.add(
                source, path, f"<< merges mappings only; got {kind_of(source)} {describe(source)}"
            )
        elif id(source) in active:
            problems.add(source, path, "<< merges a mapping into itself")
        else:
            for name, pair in mapping_items(source, path, problems, active).items():
                merged.setdefault(name, pair)
