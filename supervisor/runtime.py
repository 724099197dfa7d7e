"""The child runtime: the files of the package that run inside every location's environment.

They are copied into each environment's site-packages as the package `supervisor`,
and their content hash is part of the environment key.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from functools import cache
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
# The child side, and nothing of the host's.
CHILD_PARTS = ("__init__.py", "sdk", "codeserver", "_proto")


def runtime_files() -> list[Path]:
    """Return the child runtime's source files, relative to the package folder, sorted."""
    files: list[Path] = []
    for part in CHILD_PARTS:
        path = PACKAGE_DIR / part
        if path.is_file():
            files.append(Path(part))
        else:
            files.extend(
                p.relative_to(PACKAGE_DIR)
                for p in path.rglob("*.py")
                if "__pycache__" not in p.parts
            )
    return sorted(files)


@cache
def runtime_hash() -> str:
    """Return a hash of the runtime's file names and contents."""
    digest = hashlib.sha256()
    for rel in runtime_files():
        digest.update(str(rel).encode() + b"\0")
        digest.update((PACKAGE_DIR / rel).read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def install_runtime(site_packages: Path) -> Path:
    """Copy the runtime into SITE_PACKAGES/supervisor, replacing any older copy atomically."""
    target = site_packages / "supervisor"
    staging = Path(tempfile.mkdtemp(prefix=".supervisor-runtime-", dir=site_packages))
    try:
        for rel in runtime_files():
            dest = staging / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(PACKAGE_DIR / rel, dest)
        (staging / "RUNTIME_HASH").write_text(runtime_hash() + "\n")
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=".supervisor-old-", dir=site_packages))
            os.replace(target, old / "supervisor")
            shutil.rmtree(old, ignore_errors=True)
        os.replace(staging, target)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return target
