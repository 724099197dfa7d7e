"""What a probe observed: `PythonInfo`, whether it satisfies a spec, and how it is shown."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any

from packaging.version import Version

from supervisor.pythons.spec import PythonSpec
from supervisor.render import table

# The oldest Python the child side runs on.
MIN_HOST_VERSION = (3, 8)
OLDEST = ".".join(map(str, MIN_HOST_VERSION))


@dataclass(frozen=True)
class PythonInfo:
    """One interpreter as its probe saw it, and where discovery found it."""

    path: str  # as found, not symlink-resolved: a venv's python must keep its own path
    version: str
    implementation: str
    source: str
    executable: str = ""
    prefix: str = ""
    base_prefix: str = ""
    machine: str = ""

    @property
    def version_tuple(self) -> tuple[int, int, int]:
        """(major, minor, micro), prerelease tags dropped."""
        major, minor, micro = (*Version(self.version).release, 0, 0)[:3]
        return (major, minor, micro)

    @property
    def can_host(self) -> bool:
        """Whether a location can run on it (the child side needs 3.8 or later)."""
        return self.version_tuple[:2] >= MIN_HOST_VERSION

    @property
    def is_venv(self) -> bool:
        """Whether this is a virtual environment's interpreter rather than a base one."""
        return os.path.normpath(self.prefix) != os.path.normpath(self.base_prefix)

    def satisfies(self, spec: PythonSpec) -> bool:
        """Whether this interpreter is what SPEC asks for."""
        if spec.path is not None:
            wanted = os.path.abspath(spec.path)
            return wanted == self.path or os.path.realpath(wanted) == os.path.realpath(self.path)
        if spec.implementation and spec.implementation != self.implementation:
            return False
        # A prerelease matches ("3.14" finds 3.14.0rc1); find_python prefers final releases.
        return spec.specifier is None or spec.specifier.contains(self.version, prereleases=True)


def pythons_table(infos: list[PythonInfo]) -> str:
    """A table of VERSION IMPL SOURCE PATH; those that cannot host a location are marked."""
    if not infos:
        return "no Python interpreters found"
    rows = [
        (
            i.version,
            i.implementation,
            i.source,
            i.path,
            "" if i.can_host else f"(cannot host: older than {OLDEST})",
        )
        for i in infos
    ]
    return table(("VERSION", "IMPL", "SOURCE", "PATH", ""), rows)


def pythons_json(infos: list[PythonInfo]) -> list[dict[str, Any]]:
    """The shape of `supervisor pythons --json`: one object per interpreter."""
    return [{**asdict(i), "can_host": i.can_host, "is_venv": i.is_venv} for i in infos]
