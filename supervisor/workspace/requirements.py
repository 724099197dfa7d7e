"""Requirement strings and requirements files, read as pip reads them but stricter."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from supervisor.workspace.values import is_file

# pip's rule: `#` starts a comment at the start of a line or after whitespace.
_COMMENT = re.compile(r"(^|\s+)#.*$")
_INCLUDE = re.compile(r"(?:-r|--requirement)(?:\s*=\s*|\s+)(?P<path>\S.*)|-r(?P<glued>\S+)")


def normalize_requirement(text: str) -> str:
    """TEXT as packaging writes it back; ValueError (first line of the reason) when invalid."""
    # Here: a workspace without requirements never pays for packaging's parser.
    from packaging.requirements import Requirement

    try:
        return str(Requirement(text))
    except ValueError as exc:  # InvalidRequirement is a ValueError
        reason = str(exc).splitlines()[0] if str(exc) else "invalid requirement"
        raise ValueError(reason) from None


def add_unique(found: list[str], requirement: str) -> None:
    if requirement not in found:
        found.append(requirement)


@dataclass
class RequirementsFile:
    """The requirements a file holds (includes followed), and what was wrong, as file:line."""

    root: Path  # file names in messages are shown relative to this folder
    requirements: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def read(self, path: Path, _including: tuple[Path, ...] = ()) -> None:
        """Read PATH, and the files it includes with -r, into requirements and problems."""
        shown = self.show(path)
        try:
            text = path.read_bytes().decode("utf-8")
        except UnicodeDecodeError as exc:
            self.problems.append(f"{shown}: not UTF-8 text (byte {exc.object[exc.start]:#04x})")
            return
        except (OSError, ValueError) as exc:
            self.problems.append(f"{shown}: cannot read: {getattr(exc, 'strerror', None) or exc}")
            return
        for number, line in _logical_lines(text):
            where = f"{shown}:{number}"
            include = _INCLUDE.fullmatch(line)
            if include:
                target = path.parent / os.path.expanduser(include["path"] or include["glued"])
                target = Path(os.path.normpath(target))
                if target in (*_including, path):
                    self.problems.append(f"{where}: {self.show(target)} includes itself")
                elif not is_file(target):
                    self.problems.append(f"{where}: no such requirements file {self.show(target)}")
                else:
                    self.read(target, (*_including, path))
            elif line in ("-r", "--requirement"):
                self.problems.append(f"{where}: {line} needs a file name; got {line!r}")
            elif line.startswith("-"):
                self.problems.append(
                    f"{where}: pip option {line.split()[0]!r} is not supported here"
                    f" (only -r/--requirement FILE); got {line!r}"
                )
            else:
                try:
                    add_unique(self.requirements, normalize_requirement(line))
                except ValueError as exc:
                    self.problems.append(f"{where}: invalid requirement ({exc}); got {line!r}")

    def show(self, path: Path) -> str:
        """PATH relative to the workspace folder when it lies below it."""
        try:
            return str(path.relative_to(self.root))
        except ValueError:
            return str(path)


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """(first line number, text) per logical line: continuations joined, comments dropped."""
    lines: list[tuple[int, str]] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        # As pip does: a comment line never continues, even when it ends with a backslash.
        if raw.endswith("\\") and not _COMMENT.match(raw):
            if not pending:
                start = number
            pending.append(raw[:-1])
            continue
        if pending:
            lines.append((start, "".join([*pending, raw])))
            pending = []
        else:
            lines.append((number, raw))
    if pending:
        lines.append((start, "".join(pending)))
    stripped = [(number, _COMMENT.sub("", line).strip()) for number, line in lines]
    return [(number, line) for number, line in stripped if line]
