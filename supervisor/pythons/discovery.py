"""Where interpreters come from: candidates on this machine, probing them, and the cache.

Each candidate is probed once by a small script run under it; results are cached by path,
mtime and the probe's own hash, in memory and in `$XDG_CACHE_HOME/workspace-supervisor`.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from packaging.version import InvalidVersion, Version

from supervisor.errors import InterpreterNotFoundError
from supervisor.pythons.info import OLDEST, PythonInfo
from supervisor.pythons.spec import PythonSpec

PROBE_TIMEOUT = 10.0
PROBE_WORKERS = 8
# Most specific first: when one real file is found twice, the earlier source names it.
SOURCES = ("pyenv", "asdf", "uv", "system", "path", "given")

# Runs under every candidate, Python 2.7 included: no f-strings, stdlib only. The path
# filter stands in for -I on 2.7, so a json.py in the working folder cannot shadow ours.
PROBE = """\
import sys
sys.path = [p for p in sys.path if p not in ("", ".")]
import json, platform
impl = getattr(sys, "implementation", None)
print(json.dumps({
    "version_info": list(sys.version_info[:5]),
    "implementation": impl.name if impl else platform.python_implementation().lower(),
    "executable": sys.executable,
    "prefix": sys.prefix,
    "base_prefix": getattr(sys, "real_prefix", getattr(sys, "base_prefix", sys.prefix)),
    "machine": platform.machine(),
}))
"""
PROBE_HASH = hashlib.sha256(PROBE.encode()).hexdigest()[:16]

_PATH_NAMES = re.compile(r"python(3(\.\d+)?)?")
_SYSTEM_NAMES = re.compile(r"python3(\.\d+)?")
_RELEASE_LEVELS = {"alpha": "a", "beta": "b", "candidate": "rc"}


# In-memory caches: path -> (mtime_ns, probe data or None), and the last discover() result.
_lock = threading.RLock()
_observed: dict[str, tuple[int, dict[str, Any] | None]] = {}
_discovered: list[PythonInfo] | None = None


def clear_cache() -> None:
    """Forget what this process has probed and discovered (the file cache stays)."""
    global _discovered
    with _lock:
        _observed.clear()
        _discovered = None


def cache_file() -> Path:
    """Where probe results persist between runs."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    root = Path(base) if os.path.isabs(base) else Path.home() / ".cache"
    return root / "workspace-supervisor" / "pythons.json"


def _load_cache() -> dict[str, dict[str, Any]]:
    try:
        data = json.loads(cache_file().read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("probe") != PROBE_HASH:
        return {}
    entries = data.get("entries")
    return entries if isinstance(entries, dict) else {}


def _save_cache(entries: dict[str, dict[str, Any]]) -> None:
    """Write ENTRIES (those whose file still exists) atomically: readers never see half."""
    path, tmp = cache_file(), ""
    keep = {p: e for p, e in entries.items() if os.path.exists(p)}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(
            "w", dir=path.parent, prefix=".pythons-", delete=False
        ) as f:
            tmp = f.name
            json.dump({"probe": PROBE_HASH, "entries": keep}, f, indent=1, sort_keys=True)
        os.replace(tmp, path)
    except OSError:  # the cache only saves time; a read-only home must not stop discovery
        with contextlib.suppress(OSError):
            if tmp:
                os.unlink(tmp)


def _mtime(path: str) -> int | None:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return None


def _run_probe(path: str) -> dict[str, Any] | None:
    """Run PROBE under PATH; None when it fails, hangs or prints something else."""
    out = None
    for flags in (["-I"], ["-E", "-s"]):  # Python 2.7 has no -I
        try:
            out = subprocess.run(
                [path, *flags, "-c", PROBE],
                capture_output=True,
                text=True,
                timeout=PROBE_TIMEOUT,
                stdin=subprocess.DEVNULL,
            )
        except (OSError, subprocess.SubprocessError):
            return None
        if out.returncode == 0 or "-I" not in out.stderr:
            break
    if out is None or out.returncode != 0:
        return None
    try:
        data = json.loads(out.stdout.strip().splitlines()[-1])
        major, minor, micro, level, serial = data.pop("version_info")
        tag = "" if level == "final" else f"{_RELEASE_LEVELS.get(level, level)}{serial}"
        data["version"] = Version(f"{major}.{minor}.{micro}{tag}").public
    except (ValueError, IndexError, KeyError, TypeError, AttributeError):
        return None
    return data if _valid(data) else None


def _to_info(path: str, data: dict[str, Any], source: str) -> PythonInfo | None:
    try:
        return PythonInfo(path=path, source=source, **data)
    except TypeError:  # a cache entry of another shape
        return None


def _valid(data: object) -> bool:
    """Whether DATA is probe output this version understands (a cache may hold anything)."""
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        return False
    info = _to_info("", data, "given")
    try:
        return info is not None and bool(Version(info.version).release)
    except InvalidVersion:
        return False


def _probe_all(paths: list[str], refresh: bool) -> dict[str, dict[str, Any] | None]:
    """Probe data for each of PATHS, starting a subprocess only where no cache knows it."""
    with _lock:
        disk = _load_cache()
        results: dict[str, dict[str, Any] | None] = {}
        todo: list[tuple[str, int]] = []
        for path in paths:
            mtime = _mtime(path)
            if mtime is None:
                results[path] = None
                continue
            remembered = _observed.get(path)
            entry = disk.get(path)
            if refresh:
                todo.append((path, mtime))
            elif remembered and remembered[0] == mtime:
                results[path] = remembered[1]
            elif (
                isinstance(entry, dict)
                and entry.get("mtime_ns") == mtime
                and _valid(entry.get("info"))
            ):
                results[path] = entry["info"]
                _observed[path] = (mtime, entry["info"])
            else:
                todo.append((path, mtime))
        if not todo:
            return results
        with ThreadPoolExecutor(min(PROBE_WORKERS, len(todo))) as pool:
            probed = list(pool.map(_run_probe, [path for path, _ in todo]))
        for (path, mtime), data in zip(todo, probed, strict=True):
            results[path] = data
            _observed[path] = (mtime, data)
            # Failures stay in memory only: a broken interpreter may be mended without its
            # file changing, and a remembered failure would hide it for good.
            if data is not None:
                disk[path] = {"mtime_ns": mtime, "info": data}
            else:
                disk.pop(path, None)
        _save_cache(disk)
        return results


def probe(path: str | Path, source: str = "given") -> PythonInfo | None:
    """Probe one interpreter (cached); None when it fails or times out."""
    found = os.path.abspath(os.path.expanduser(str(path)))
    data = _probe_all([found], refresh=False)[found]
    return None if data is None else _to_info(found, data, source)


def _candidates() -> dict[str, str]:
    """Every path worth probing, with where it was found (most specific source kept)."""
    found: dict[str, str] = {}

    def add(path: str, source: str) -> None:
        path = os.path.abspath(path)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            known = found.get(path)
            if known is None or SOURCES.index(source) < SOURCES.index(known):
                found[path] = source

    home = Path.home()
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        # pyenv's and asdf's shims fail for every version but the selected one.
        if not folder or "shims" in Path(folder).parts or not os.path.isdir(folder):
            continue
        for name in sorted(os.listdir(folder)):
            if _PATH_NAMES.fullmatch(name):
                add(os.path.join(folder, name), "path")
    pyenv = os.environ.get("PYENV_ROOT") or str(home / ".pyenv")
    for path in glob.glob(os.path.join(pyenv, "versions", "*", "bin", "python")):
        add(path, "pyenv")
    asdf = os.environ.get("ASDF_DATA_DIR") or str(home / ".asdf")
    for path in glob.glob(os.path.join(asdf, "installs", "python", "*", "bin", "python")):
        add(path, "asdf")
    data_home = os.environ.get("XDG_DATA_HOME") or str(home / ".local" / "share")
    uv = os.environ.get("UV_PYTHON_INSTALL_DIR") or os.path.join(data_home, "uv", "python")
    for path in glob.glob(os.path.join(uv, "*", "bin", "python3")):
        add(path, "uv")
    for folder in ("/usr/bin", "/usr/local/bin"):
        for path in glob.glob(os.path.join(folder, "python3*")):
            if _SYSTEM_NAMES.fullmatch(os.path.basename(path)):
                add(path, "system")
    return found


def _preference(info: PythonInfo) -> tuple[bool, int, int, str]:
    """Sort key among paths to one real file: base over venv, source, then the longer name."""
    return (info.is_venv, SOURCES.index(info.source), -len(os.path.basename(info.path)), info.path)


def discover(refresh: bool = False) -> list[PythonInfo]:
    """Every interpreter found, one per real file, newest first."""
    global _discovered
    with _lock:
        if _discovered is not None and not refresh:
            return list(_discovered)
        candidates = _candidates()
        observed = _probe_all(list(candidates), refresh)
        best: dict[str, PythonInfo] = {}
        for path, source in candidates.items():
            data = observed.get(path)
            info = None if data is None else _to_info(path, data, source)
            if info is None:
                continue
            real = os.path.realpath(path)
            if real not in best or _preference(info) < _preference(best[real]):
                best[real] = info
        infos = sorted(best.values(), key=_preference)
        infos.sort(key=lambda i: Version(i.version), reverse=True)
        _discovered = infos
        return list(infos)


def find_python(spec: PythonSpec | str | None) -> PythonInfo:
    """The interpreter SPEC asks for: newest matching patch that can host a location."""
    if spec is None:
        info = probe(sys.executable)
        if info is None:
            raise InterpreterNotFoundError(
                f"the supervisor's own Python {sys.executable} failed its probe"
            )
        return info
    if isinstance(spec, str):
        spec = PythonSpec.parse(spec)
    if spec.path is not None:
        info = probe(spec.path)
        if info is None:
            raise InterpreterNotFoundError(
                f"python {spec.raw!r}: {spec.path} is not a working Python interpreter"
            )
        if not info.can_host:
            raise InterpreterNotFoundError(
                f"python {spec.raw!r}: {info.path} is Python {info.version};"
                f" locations need {OLDEST} or later"
            )
        return info
    found = discover()
    matching = [i for i in found if i.satisfies(spec)]
    hostable = sorted(
        (i for i in matching if i.can_host), key=lambda i: Version(i.version).is_prerelease
    )
    if hostable:
        return hostable[0]
    raise InterpreterNotFoundError(_not_found_message(spec, matching, found))


def _not_found_message(
    spec: PythonSpec, matching: list[PythonInfo], found: list[PythonInfo]
) -> str:
    if matching:
        versions = ", ".join(i.version for i in matching)
        lines = [f"python {spec.raw!r}: only Python {versions} matches; locations need {OLDEST}+"]
    else:
        lines = [f"no Python interpreter matches python {spec.raw!r}"]
    if found:
        lines.append("found:")
        lines += [f"  {i.version:<10} {i.path}{'' if i.can_host else ' (too old)'}" for i in found]
    else:
        lines.append("found none (looked on PATH, in pyenv, asdf, uv's store, /usr/bin and so on)")
    lines.append(
        "interpreters are not downloaded: install one (pyenv, asdf, uv, the system's packages)"
        " or give python: the path of one"
    )
    return "\n".join(lines)
