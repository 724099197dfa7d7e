"""Find Python interpreters wherever people keep them, and pick one for a location.

`PythonSpec` is what a location asks for, `PythonInfo` is what a probe observed. Each
candidate is probed once by a small script run under it; results are cached by path,
mtime and the probe's own hash, in memory and in `$XDG_CACHE_HOME/workspace-supervisor`.
"""

from supervisor.pythons.discovery import (
    PROBE_HASH,
    cache_file,
    clear_cache,
    discover,
    find_python,
    probe,
)
from supervisor.pythons.info import PythonInfo, pythons_json, pythons_table
from supervisor.pythons.spec import PythonSpec

__all__ = [
    "PROBE_HASH",
    "PythonInfo",
    "PythonSpec",
    "cache_file",
    "clear_cache",
    "discover",
    "find_python",
    "probe",
    "pythons_json",
    "pythons_table",
]
