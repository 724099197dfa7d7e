"""What a location asks for: `PythonSpec` and its parser."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from packaging.specifiers import InvalidSpecifier, SpecifierSet

IMPLEMENTATIONS = ("cpython", "pypy", "graalpy")

_SPEC_HELP = (
    'expected a version such as "3.11", a range such as ">=3.10,<3.12", an implementation'
    ' and version such as "cpython3.11", or a path to an interpreter'
)
_BARE_VERSION = re.compile(r"\d+(\.\d+){0,2}")
_PREFIXED = re.compile(r"(?P<impl>[a-z]+)(?P<rest>.*)", re.IGNORECASE)


@dataclass(frozen=True)
class PythonSpec:
    """An interpreter a location asks for: implementation and version range, or a path."""

    raw: str
    implementation: str | None
    specifier: SpecifierSet | None
    path: Path | None

    @classmethod
    def parse(cls, text: str) -> PythonSpec:
        """Parse "3.9", "3.12.1", ">=3.10,<3.12", "cpython3.11", "python3", or a path."""
        raw = text.strip()
        # "~=3.10" is a compatible-release range, "~/py/bin/python" a path.
        if "/" in raw or (raw.startswith("~") and not raw.startswith("~=")):
            return cls(raw, None, None, Path(os.path.expanduser(raw)))
        implementation, rest = None, raw
        match = _PREFIXED.fullmatch(raw)
        if match:
            implementation, rest = match["impl"].lower(), match["rest"].strip()
            if implementation == "python":
                implementation = None
            elif implementation not in IMPLEMENTATIONS:
                known = ", ".join(IMPLEMENTATIONS)
                extra = f" (implementations: {known}, or python for any)" if rest else ""
                raise ValueError(f"{_SPEC_HELP}{extra}; got {text!r}")
        if not rest:
            if match:  # "cpython" or "python" alone: any version
                return cls(raw, implementation, None, None)
            raise ValueError(f"{_SPEC_HELP}; got {text!r}")
        if _BARE_VERSION.fullmatch(rest):
            # "3" and "3.9" mean any release in that series; "3.12.1" means exactly that.
            pinned = rest if rest.count(".") == 2 else rest + ".*"
            return cls(raw, implementation, SpecifierSet("==" + pinned), None)
        try:
            specifier = SpecifierSet(rest)
        except InvalidSpecifier:
            raise ValueError(f"{_SPEC_HELP}; got {text!r}") from None
        if not len(specifier):
            raise ValueError(f"{_SPEC_HELP}; got {text!r}")
        return cls(raw, implementation, specifier, None)

    def __str__(self) -> str:
        return self.raw
