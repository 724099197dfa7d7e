"""What a location's code is made of, as one fingerprint: `reload` restarts a location whose
source changed even when its workspace entry did not, and `up --watch` reloads on a change.

The source is every Python file under the location's code folders (its file's folder and
its working directory), less what is not the user's code: environments, caches and hidden
folders. A fingerprint is a hash of their paths, sizes and modification times: a stat per
file, never a read.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from supervisor.workspace import LocationSpec

# Folders that hold no code of the location's own (environments, caches, our state).
SKIPPED = frozenset(
    {"__pycache__", "node_modules", "site-packages", "envs", "venv", "build", "dist"}
)
SUFFIXES = (".py", ".pyi")
# A code folder larger than this is watched only in part; enough for any real location.
MAX_FILES = 20_000


def code_folders(spec: LocationSpec) -> list[Path]:
    """The folders whose Python files are this location's code (none for remote ones): a
    file's own folder first, then the working directory (they differ when Dagster's rules
    put the working directory in the current folder)."""
    if spec.is_remote:
        return []
    found: list[Path] = []
    for folder in (
        spec.python_file.parent if spec.python_file is not None else None,
        spec.working_directory,
    ):
        if folder is not None and folder not in found:
            found.append(folder)
    return found


def fingerprint(spec: LocationSpec) -> str:
    """A hash of the location's source files as they are now ("" when it has none here)."""
    folders = code_folders(spec)
    if not folders:
        return ""
    digest = hashlib.sha256()
    seen = 0
    for root, dirs, files in (entry for folder in folders for entry in os.walk(folder)):
        # Sorted, so that the walk and so the hash do not depend on the directory order.
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in SKIPPED)
        for name in sorted(files):
            if not name.endswith(SUFFIXES):
                continue
            path = os.path.join(root, name)
            try:
                info = os.stat(path)
            except OSError:
                continue
            digest.update(f"{path}\0{info.st_size}\0{info.st_mtime_ns}\n".encode())
            seen += 1
            if seen >= MAX_FILES:
                return digest.hexdigest()
    if spec.python_file is not None and not str(spec.python_file).endswith(SUFFIXES):
        try:
            info = spec.python_file.stat()
            digest.update(f"{spec.python_file}\0{info.st_size}\0{info.st_mtime_ns}".encode())
        except OSError:
            pass
    return digest.hexdigest()
