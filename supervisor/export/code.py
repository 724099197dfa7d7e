"""Which files of a location go into its image, and where they land there.

The image holds the location's folder (its `working_directory`, or the folder of its
`python_file`, as the supervisor runs it) at /app, less what is never code: version control,
caches, virtual environments (any folder holding a `pyvenv.cfg`), the supervisor's state and
environments, and the output of any export (a folder holding EXPORT_MARKER). Symlinked
files are copied as files; symlinked folders are left out (they may point anywhere, or at
themselves) and said so.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from supervisor.errors import SupervisorError, UsageError
from supervisor.workspace import LocationSpec, WorkspaceSpec

APP_DIR = PurePosixPath("/app")
# Folder names that never hold a location's code.
SKIPPED_FOLDERS = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        "__pycache__",
        ".supervisor",
        ".venv",
        "venv",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".tox",
        ".nox",
        "node_modules",
    }
)
SKIPPED_SUFFIXES = (".pyc", ".pyo")
# Written into every export's output folder first, so that no export copies another's output
# (nor its own) into an image, and the tags of both exports see the same files.
EXPORT_MARKER = ".supervisor-export"


@dataclass(frozen=True)
class CodeLayout:
    """A location's code as its image holds it."""

    folder: Path  # the local folder that becomes APP_DIR
    files: tuple[PurePosixPath, ...]  # relative to FOLDER, sorted
    left_out: tuple[str, ...]  # symlinked folders and dangling links, relative to FOLDER
    size: int  # bytes of FILES

    def digest(self) -> str:
        """A hash of the file names and contents."""
        hashed = hashlib.sha256()
        for rel in self.files:
            hashed.update(str(rel).encode() + b"\0")
            hashed.update((self.folder / rel).read_bytes() + b"\0")
        return hashed.hexdigest()

    def copy_to(self, target: Path) -> None:
        """Copy FILES into TARGET (made here), keeping their relative paths and modes."""
        target.mkdir(parents=True, exist_ok=True)
        for rel in self.files:
            dest = target / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(self.folder / rel, dest)


def code_folder(workspace: WorkspaceSpec, location: LocationSpec) -> Path:
    """The folder the location runs in: the one that becomes /app."""
    if location.working_directory is not None:
        return location.working_directory
    if location.python_file is not None:
        return location.python_file.parent
    return workspace.root


def python_file_in_image(workspace: WorkspaceSpec, location: LocationSpec) -> str | None:
    """Where the location's python_file is inside the image (None for module kinds)."""
    if location.python_file is None:
        return None
    folder = code_folder(workspace, location)
    try:
        rel = location.python_file.resolve().relative_to(folder.resolve())
    except ValueError:
        raise SupervisorError(
            f"{location.where} location {location.name!r}: its python_file"
            f" {location.python_file} is outside its working_directory {folder}; an image"
            " holds that folder only: set working_directory to a folder that holds both"
        ) from None
    return str(APP_DIR / PurePosixPath(rel.as_posix()))


def mark_output(folder: Path) -> None:
    """Make FOLDER (and its parents) and mark it as an export's output."""
    folder.mkdir(parents=True, exist_ok=True)
    marker = folder / EXPORT_MARKER
    if not marker.exists():
        marker.write_text("made by `supervisor export`; never copied into an image\n")


def collect_code(workspace: WorkspaceSpec, location: LocationSpec) -> CodeLayout:
    """The files of LOCATION's folder that go into its image."""
    folder = code_folder(workspace, location)
    if not folder.is_dir():
        raise SupervisorError(
            f"{location.where} location {location.name!r}: no such folder {folder}"
        )
    if (folder / EXPORT_MARKER).exists():
        raise UsageError(
            f"location {location.name!r}: its folder {folder} is an export's output folder;"
            " export into a folder beside or below it (-o), not into the folder itself"
        )
    skipped = {os.path.realpath(p) for p in (workspace.envs_dir, workspace.state_dir)}
    files: list[PurePosixPath] = []
    left_out: list[str] = []
    size = 0
    for root, dirs, names in os.walk(folder):
        here = Path(root)
        kept = []
        for name in sorted(dirs):
            path = here / name
            if name in SKIPPED_FOLDERS or (path / "pyvenv.cfg").exists():
                continue
            if (path / EXPORT_MARKER).exists():
                continue
            if os.path.realpath(path) in skipped:
                continue
            if path.is_symlink():
                left_out.append(f"{path.relative_to(folder)} (a symlinked folder)")
                continue
            kept.append(name)
        dirs[:] = kept
        for name in sorted(names):
            path = here / name
            if name.endswith(SKIPPED_SUFFIXES):
                continue
            if not path.is_file():  # a dangling link, a socket, a FIFO
                left_out.append(f"{path.relative_to(folder)} (not a regular file)")
                continue
            files.append(PurePosixPath(path.relative_to(folder).as_posix()))
            size += path.stat().st_size
    return CodeLayout(folder, tuple(sorted(files)), tuple(left_out), size)
