"""Paths built from names a workspace gives (location names): the one way to make them.

A name becomes one file name by encoding every character that could mean something to a
file system (`/`, a leading `.`, control characters, `%` itself), and is cut with a hash
when it would be too long; the result is then proved to stay inside its folder.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from supervisor.errors import SupervisorError

# Left as they are: letters, digits and punctuation with no meaning to a file system.
_PLAIN = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:+@=,")
# Room for a suffix (".log.3", ".pickle") within the usual 255-byte limit of a file name.
MAX_ENCODED = 200


def encode_name(name: str) -> str:
    """NAME as one safe file name; different names give different file names."""
    encoded = "".join(c if c in _PLAIN else _escape(c) for c in name)
    if encoded.startswith("."):
        encoded = "%2E" + encoded[1:]
    if not encoded:
        encoded = "%"
    if len(encoded) > MAX_ENCODED:
        digest = hashlib.sha256(name.encode()).hexdigest()[:16]
        encoded = f"{encoded[: MAX_ENCODED - 17]}~{digest}"
    return encoded


def _escape(char: str) -> str:
    return "".join(f"%{byte:02X}" for byte in char.encode("utf-8", "surrogatepass"))


def child_path(folder: Path, name: str, suffix: str = "") -> Path:
    """FOLDER/<NAME encoded><SUFFIX>, refused (SupervisorError) if it is not inside FOLDER."""
    path = folder / (encode_name(name) + suffix)
    base = os.path.realpath(folder)
    real = os.path.realpath(path)
    if os.path.dirname(real) != base:
        raise SupervisorError(f"refusing a path outside {folder} for the name {name!r}: {path}")
    return path
