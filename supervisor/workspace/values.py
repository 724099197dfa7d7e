"""Checks of single values, shared by the workspace file and the -m/-f flags.

Each raises ValueError with what is wrong and what is allowed; the caller adds where
and the value it got.
"""

from __future__ import annotations

import os
import re
import shutil
from decimal import Decimal
from pathlib import Path

from supervisor.workspace.yamlnodes import clip

MAX_SECONDS = 10**9  # larger timeouts overflow the waits that use them
MAX_COUNT = 10**9
MAX_BYTES = 2**63 - 1  # setrlimit takes a signed 64-bit value
SIZE_UNITS = {
    "B": 1,
    "KB": 10**3,
    "MB": 10**6,
    "GB": 10**9,
    "KiB": 2**10,
    "MiB": 2**20,
    "GiB": 2**30,
    "TiB": 2**40,
}
SIZE_WANTED = (
    f'a positive number of bytes or a size with a unit ({", ".join(SIZE_UNITS)}) such as "512MiB"'
)
SIZE_HELP = f"expected {SIZE_WANTED}"
_SIZE = re.compile(r"(?P<amount>[0-9]{1,30}(?:\.[0-9]{1,30})?) ?(?P<unit>[A-Za-z]+)")
MODULE_HELP = "expected a dotted module name such as my_package.defs"


def absolute_path(text: str, base: Path) -> Path:
    """TEXT as an absolute, normalized path; relative ones start at BASE, `~` is expanded."""
    if not text.strip():
        raise ValueError(f"expected a path; got {clip(repr(text))}")
    if "\0" in text:
        raise ValueError(f"expected a path without NUL characters; got {clip(repr(text))}")
    return Path(os.path.normpath(base / os.path.expanduser(text)))


def rebased_path(text: str, base: Path) -> Path:
    """TEXT as Dagster's loader reads a path: relative ones start at BASE, `~` is not
    expanded; normalized."""
    if not text.strip():
        raise ValueError(f"expected a path; got {clip(repr(text))}")
    if "\0" in text:
        raise ValueError(f"expected a path without NUL characters; got {clip(repr(text))}")
    return Path(os.path.normpath(os.path.join(base, text)))


def is_file(path: Path) -> bool:
    """Path.is_file, but False where the system refuses to look (a name too long, say)."""
    try:
        return path.is_file()
    except (OSError, ValueError):  # ENAMETOOLONG; a lone surrogate has no file name
        return False


def is_dir(path: Path) -> bool:
    """Path.is_dir, but False where the system refuses to look (a name too long, say)."""
    try:
        return path.is_dir()
    except (OSError, ValueError):
        return False


def check_module_name(text: str) -> str:
    """TEXT when it is a dotted module name such as pkg.defs."""
    if not all(part.isidentifier() for part in text.split(".")):
        raise ValueError(f"{MODULE_HELP}; got {clip(repr(text))}")
    return text


def check_identifier(text: str) -> str:
    """TEXT when it is a Python identifier (an attribute name)."""
    if not text.isidentifier():
        raise ValueError(f"expected a Python identifier such as defs; got {clip(repr(text))}")
    return text


# Long enough for any sensible name, short enough to leave room in file names built from it.
MAX_LOCATION_NAME = 100


def check_location_name(text: str) -> str:
    """TEXT when it can name a location (shown in logs and used in commands and paths)."""
    if not text.strip() or not text.isprintable():
        raise ValueError(
            f"expected a non-empty name of printable characters; got {clip(repr(text))}"
        )
    if "/" in text or ".." in text:
        raise ValueError(f"expected a name without '/' or '..'; got {clip(repr(text))}")
    if len(text) > MAX_LOCATION_NAME:
        raise ValueError(
            f"expected a name of at most {MAX_LOCATION_NAME} characters;"
            f" got one of {len(text)}: {clip(repr(text))}"
        )
    return text


def check_host(text: str) -> str:
    """TEXT when it can be a host name or address."""
    if not text or not text.isprintable() or any(c.isspace() for c in text):
        raise ValueError(
            f"expected a host name or address such as localhost; got {clip(repr(text))}"
        )
    return text


def executable_path(text: str, base: Path) -> Path:
    """An interpreter's absolute path; a bare name is looked up on PATH, as a shell would."""
    if "/" in text or text.startswith("~"):
        return absolute_path(text, base)
    found = shutil.which(text) if text.strip() and "\0" not in text else None
    if not found:
        raise ValueError(f"expected a path to a Python interpreter; {text!r} is not on PATH")
    return Path(os.path.abspath(found))


def is_python_path(text: str) -> bool:
    """True when a `python` value names an interpreter file rather than a version."""
    # "~=3.10" is a compatible-release range, "~/py/bin/python" a path.
    return "/" in text or (text.startswith("~") and not text.startswith("~="))


def python_value(text: str, base: Path) -> str:
    """The `python` value as stored: a version spec as given, a path made absolute."""
    from supervisor.pythons import PythonSpec  # discovery's module; only its parser is needed

    text = text.strip()
    if is_python_path(text):
        text = str(absolute_path(text, base))
    PythonSpec.parse(text)  # raises ValueError saying what is allowed
    return text


def parse_size(text: str) -> int:
    """A size such as "512MiB" or "1.5GB" in bytes."""
    match = _SIZE.fullmatch(text.strip())
    if not match:
        raise ValueError(f"{SIZE_HELP}; got {clip(repr(text))}")
    unit = match["unit"]
    if unit not in SIZE_UNITS:
        alike = [u for u in SIZE_UNITS if u.lower() == unit.lower()]
        hint = (
            f"; units are case-sensitive: did you mean '{match['amount']}{alike[0]}'?"
            if alike
            else ""
        )
        raise ValueError(f"{SIZE_HELP}; got {clip(repr(text))}{hint}")
    amount = Decimal(match["amount"]) * SIZE_UNITS[unit]
    if amount != amount.to_integral_value():
        raise ValueError(
            f"expected a whole number of bytes; got {clip(repr(text))} ({amount} bytes)"
        )
    return check_bytes(int(amount), clip(repr(text)))


def check_bytes(value: int, shown: str) -> int:
    """VALUE when it is a usable memory limit; SHOWN is how the value was written."""
    if value <= 0:
        raise ValueError(f"{SIZE_HELP}; got {shown}")
    if value > MAX_BYTES:
        raise ValueError(f"expected at most {MAX_BYTES} bytes; got {shown}")
    return value
