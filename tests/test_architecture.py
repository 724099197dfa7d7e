"""The package's shape: which side imports which, no import cycles, types checked by mypy.

The child side (supervisor/__init__.py, sdk/, codeserver/, _proto/) is copied alone into every
location's environment, so it must never import a host module. Among host modules an import
cycle at run time makes the import order matter; `if TYPE_CHECKING:` blocks hide such cycles
and must say why they exist. Every `# type: ignore` says why the checker is wrong there.
"""

from __future__ import annotations

import ast
import hashlib
import io
import itertools
import re
import subprocess
import sys
import tempfile
import tokenize
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "supervisor"
CHILD_PARTS = ("sdk", "codeserver", "_proto")
MYPY_TIMEOUT = 300
IGNORE = re.compile(r"#\s*type:\s*ignore\b(?P<codes>\[[^\]]*\])?(?P<rest>.*)")


def module_name(path: Path) -> str:
    """The dotted name of PATH, a file under supervisor/."""
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def is_child(module: str) -> bool:
    """True for the child side: the package itself, sdk/, codeserver/ and _proto/."""
    parts = module.split(".")
    return len(parts) == 1 or parts[1] in CHILD_PARTS


@dataclass(frozen=True)
class Import:
    """One import in MODULE of TARGET (a module of ours) at LINE; RUNTIME when it runs on import."""

    module: str
    target: str
    line: int
    runtime: bool

    def where(self) -> str:
        return f"{MODULES[self.module].relative_to(REPO)}:{self.line}"


def is_type_checking(test: ast.expr) -> bool:
    """True for `TYPE_CHECKING` and `typing.TYPE_CHECKING`."""
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    return isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"


def ours(dotted: str) -> str | None:
    """The longest existing module of ours that DOTTED names or lies in (None: not ours)."""
    parts = dotted.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in MODULES:
            return candidate
        parts.pop()
    return None


def targets(node: ast.Import | ast.ImportFrom, module: str) -> Iterator[str]:
    """The modules of ours that one import statement in MODULE loads."""
    if isinstance(node, ast.Import):
        for alias in node.names:
            if (target := ours(alias.name)) is not None:
                yield target
        return
    if node.level:
        package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
        base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
        base = f"{base}.{node.module}" if node.module else base
    else:
        base = node.module or ""
    for alias in node.names:
        # `from a import b` loads the module a.b when there is one, else a name from a.
        if (target := ours(f"{base}.{alias.name}") or ours(base)) is not None:
            yield target


def imports_of(module: str) -> list[Import]:
    """Every import of our modules in MODULE, including those in functions and TYPE_CHECKING."""
    tree = ast.parse(MODULES[module].read_text(), str(MODULES[module]))
    found: list[Import] = []

    def visit(node: ast.AST, runtime: bool) -> None:
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.extend(Import(module, t, node.lineno, runtime) for t in targets(node, module))
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            runtime = False
        elif isinstance(node, ast.If) and is_type_checking(node.test):
            for child in node.body:
                visit(child, False)
            for child in node.orelse:
                visit(child, runtime)
            return
        for child in ast.iter_child_nodes(node):
            visit(child, runtime)

    visit(tree, True)
    return found


ALL_IMPORTS = [found for module in MODULES for found in imports_of(module)]


def comments(path: Path) -> dict[int, str]:
    """The comment on each line of PATH, by line number."""
    tokens = tokenize.generate_tokens(io.StringIO(path.read_text()).readline)
    return {t.start[0]: t.string for t in tokens if t.type == tokenize.COMMENT}


def explained_above(path: Path, line: int) -> bool:
    """True when the line before LINE is a comment line with some words in it."""
    lines = path.read_text().splitlines()
    above = lines[line - 2].strip() if line >= 2 else ""
    return above.startswith("#") and len(above.lstrip("#").split()) >= 2


def cycle_in(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of GRAPH as a path that ends where it starts, or None when it has none."""
    done: set[str] = set()
    path: list[str] = []
    on_path: set[str] = set()

    def walk(node: str) -> list[str] | None:
        path.append(node)
        on_path.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt in on_path:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in done and (found := walk(nxt)) is not None:
                return found
        path.pop()
        on_path.discard(node)
        done.add(node)
        return None

    for start in sorted(graph):
        if start not in done and (found := walk(start)) is not None:
            return found
    return None


def test_the_graph_sees_the_package() -> None:
    # A parser that found nothing would pass every test below.
    assert "supervisor.codeserver.server" in MODULES and "supervisor.cli" in MODULES
    assert any(i.module == "supervisor.cli" and i.runtime for i in ALL_IMPORTS)
    assert cycle_in({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert cycle_in({"a": {"b"}, "b": set()}) is None


def test_child_side_imports_no_host_module() -> None:
    wrong = [
        f"{i.where()}: {i.module} imports {i.target}"
        for i in ALL_IMPORTS
        if is_child(i.module) and not is_child(i.target)
    ]
    assert not wrong, "the child side imports host modules:\n" + "\n".join(wrong)


def test_no_import_cycle_among_host_modules_at_run_time() -> None:
    graph: dict[str, set[str]] = {}
    lines: dict[tuple[str, str], str] = {}
    for i in ALL_IMPORTS:
        host = not is_child(i.module) and not is_child(i.target)
        if i.runtime and host and i.target != i.module:
            graph.setdefault(i.module, set()).add(i.target)
            lines.setdefault((i.module, i.target), i.where())
    cycle = cycle_in(graph)
    if cycle is not None:
        steps = "\n".join(f"  {a} -> {b}  ({lines[a, b]})" for a, b in itertools.pairwise(cycle))
        pytest.fail(f"an import cycle among host modules at run time:\n{steps}")


def test_every_type_checking_block_says_why() -> None:
    silent = []
    for module, path in MODULES.items():
        notes = comments(path)
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.If) and is_type_checking(node.test):
                said = len(notes.get(node.lineno, "").lstrip("#").split()) >= 2
                if not said and not explained_above(path, node.lineno):
                    silent.append(f"{path.relative_to(REPO)}:{node.lineno} ({module})")
    assert not silent, (
        "`if TYPE_CHECKING:` without a comment (on it or the line before) saying why:\n"
        + "\n".join(silent)
    )


def test_every_type_ignore_says_why() -> None:
    bare = []
    for path in MODULES.values():
        for line, text in comments(path).items():
            match = IGNORE.search(text)
            if match is None:
                continue
            reason = match["rest"].strip()
            justified = reason.startswith("#") and len(reason.lstrip("#").split()) >= 2
            if not match["codes"] or not (justified or explained_above(path, line)):
                bare.append(f"{path.relative_to(REPO)}:{line}: {text}")
    assert not bare, (
        "each `# type: ignore[code]` says why, after it (`  # why`) or on the line above:\n"
        + "\n".join(bare)
    )


@pytest.mark.timeout(MYPY_TIMEOUT + 30)
def test_mypy_is_clean_on_the_host_side() -> None:
    # The cache lives outside the tree, one per checkout: repeated runs take a second or two.
    key = hashlib.sha256(str(REPO).encode()).hexdigest()[:12]
    cache = Path(tempfile.gettempdir()) / f"supervisor-mypy-{key}"
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--cache-dir", str(cache)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=MYPY_TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, f"mypy (config in pyproject.toml):\n{done.stdout}{done.stderr}"
