"""Build one environment: locked per key, made in a temporary folder, renamed into place last.

An interrupted build leaves only a temporary folder, which nothing ever uses and
`env gc` removes. A finished environment holds `manifest.json`, written just
before the rename, so its presence alone marks a usable environment.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from supervisor import tools
from supervisor.envs import pip
from supervisor.envs.keys import EnvRequest
from supervisor.envs.run import run_tool
from supervisor.errors import EnvBuildError
from supervisor.private import open_private_text
from supervisor.render import iso_utc
from supervisor.runtime import install_runtime, runtime_hash

MANIFEST = "manifest.json"
LOCKS = ".locks"
TEMP_PREFIX = ".tmp-"
# What uv says of a step it finished ("Resolved 5 packages in 20ms"): shown when watched.
UV_SUMMARIES = ("Resolved", "Prepared", "Installed", "Uninstalled", "Audited", "Built")
# Live progress of a build: first after this long, then every TICK_SECONDS.
TICK_FIRST_SECONDS = 1.0
TICK_SECONDS = 3.0
COMPILE_TIMEOUT_SECONDS = 120.0  # compiling the runtime's bytecode: well under a second

Progress = Callable[[str], None]


@dataclass(frozen=True)
class BuiltEnv:
    """An environment that exists: where, its interpreter, and how it came to be."""

    path: Path
    key: str
    hit: bool
    seconds: float

    @property
    def python(self) -> Path:
        return self.path / "bin" / "python"

    def manifest(self) -> dict[str, Any]:
        return json.loads((self.path / MANIFEST).read_text())


def lookup(envs_dir: Path, request: EnvRequest) -> BuiltEnv | None:
    """Return the built environment for REQUEST, or None; costs a stat, no subprocess."""
    started = time.monotonic()
    path = envs_dir / request.name
    manifest = path / MANIFEST
    if not manifest.is_file():
        return None
    with contextlib.suppress(OSError):
        os.utime(manifest)  # its mtime is the environment's "last used"
    return BuiltEnv(path, request.key, True, time.monotonic() - started)


def ensure_env(
    envs_dir: Path,
    request: EnvRequest,
    progress: Progress | None = None,
    lock_timeout: float = 900.0,
    live: Progress | None = None,
) -> BuiltEnv:
    """Return REQUEST's environment, building it if needed; EnvBuildError names the locations.

    PROGRESS hears what happens (a line per step); LIVE, given only where a person watches
    a terminal, also hears how a build goes while it runs (elapsed time, packages)."""
    found = lookup(envs_dir, request)
    if found is not None:
        return found
    say = progress or (lambda _: None)
    envs_dir.mkdir(parents=True, exist_ok=True)
    with _key_lock(envs_dir, request, lock_timeout, say):
        # Another process may have finished the same build while we waited.
        found = lookup(envs_dir, request)
        if found is not None:
            return found
        _remove_dead_builds(envs_dir, request, say)
        return _build(envs_dir, request, say, live)


def _remove_dead_builds(envs_dir: Path, request: EnvRequest, say: Progress) -> None:
    """Remove what interrupted builds of REQUEST left (a killed `up`, say). Called with the
    key's lock held: no build of this key runs anywhere else, so each such folder is dead."""
    for path in envs_dir.glob(f"{TEMP_PREFIX}{request.name}-*"):
        say(f"removing {path.name}, left by an interrupted build")
        shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def _key_lock(envs_dir: Path, request: EnvRequest, timeout: float, say: Progress) -> Iterator[None]:
    locks = envs_dir / LOCKS
    locks.mkdir(exist_ok=True)
    with open_private_text(locks / f"{request.name}.lock", "a+") as handle:
        deadline = time.monotonic() + timeout
        told = False
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not told:
                    say(f"waiting for another build of {request.name}")
                    told = True
                if time.monotonic() > deadline:
                    raise EnvBuildError(
                        request.locations,
                        f"another build of {request.name} held its lock for over {timeout:g}s",
                    ) from None
                time.sleep(0.05)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _build(
    envs_dir: Path, request: EnvRequest, say: Progress, live: Progress | None = None
) -> BuiltEnv:
    started = time.monotonic()
    target = envs_dir / request.name
    temp = envs_dir / f"{TEMP_PREFIX}{request.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    if request.note:
        say(request.note)
    via = "" if request.builder == "uv" else f" with {request.builder}"
    say(f"building {request.name}{via} for {', '.join(request.locations)}")
    ticker = _Ticker(request.name, live) if live else None
    try:
        timings, site_packages = _populate(temp, target, request, live)
        timings["total"] = time.monotonic() - started
        manifest = _manifest(request, site_packages, timings)
        (temp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        # Last: only a complete environment ever has the target's name.
        os.rename(temp, target)
    finally:
        if ticker is not None:
            ticker.stop()
        if temp.exists():
            shutil.rmtree(temp, ignore_errors=True)
    seconds = time.monotonic() - started
    say(f"built {request.name} in {seconds:.1f}s")
    return BuiltEnv(target, request.key, False, seconds)


def _populate(
    temp: Path, target: Path, request: EnvRequest, live: Progress | None = None
) -> tuple[dict[str, float], Path]:
    """Make the venv in TEMP (to be renamed TARGET), install the requirements and the
    runtime; seconds per step."""
    if request.builder == "pip":
        timings = pip.make_env(temp, target, request)
    else:
        timings = _make_with_uv(temp, request, live)
    step = time.monotonic()
    site_packages = site_packages_of(temp, request.python.version)
    install_runtime(site_packages)
    compile_runtime(temp, site_packages, target)
    timings["runtime"] = time.monotonic() - step
    return timings, site_packages


def compile_runtime(temp: Path, site_packages: Path, target: Path) -> None:
    """Compile the runtime's bytecode with the environment's own interpreter, once, so that
    no server start compiles it (none may write it: PYTHONDONTWRITEBYTECODE, a read-only
    folder). Tracebacks name the files where the environment will be, not where it is built."""
    runtime = site_packages / "supervisor"
    final = target / runtime.relative_to(temp)
    subprocess.run(
        [str(temp / "bin" / "python"), "-m", "compileall", "-q", "-d", str(final), str(runtime)],
        check=True,
        capture_output=True,
        timeout=COMPILE_TIMEOUT_SECONDS,
    )


def _make_with_uv(
    temp: Path, request: EnvRequest, live: Progress | None = None
) -> dict[str, float]:
    """Make the venv in TEMP with uv and install the requirements; seconds per step."""
    timings: dict[str, float] = {}
    step = time.monotonic()
    venv = ["venv", "--quiet", "--relocatable", "--no-project"]
    _run_uv(request, "create the environment", [*venv, "--python", request.python.path, str(temp)])
    timings["venv"] = time.monotonic() - step
    step = time.monotonic()
    python = str(temp / "bin" / "python")
    # Watched live, uv says what it resolved and installed (it says nothing with --quiet).
    quiet = [] if live else ["--quiet"]
    # Bytecode compiled once here, not by every server start (none may write it where
    # PYTHONDONTWRITEBYTECODE is set or the folder is read-only): `import dagster` takes
    # 0.9 s compiled against 2.5 s from source. Python's loader names the final paths.
    install = ["pip", "install", *quiet, "--compile-bytecode", "--python", python]
    install += request.install_requirements()
    on_line = None
    if live is not None:
        show = live

        def on_line(line: str) -> None:
            if line.startswith(UV_SUMMARIES):
                show(f"{request.name}: {line.strip()}")

    _run_uv(request, "install the requirements", install, on_line)
    timings["install"] = time.monotonic() - step
    return timings


def _manifest(
    request: EnvRequest, site_packages: Path, timings: dict[str, float]
) -> dict[str, object]:
    """What a built environment says of itself: its spec, interpreter, packages, tools, times."""
    return {
        "key": request.key,
        "name": request.name,
        "python": {
            "path": request.python.path,
            "version": request.python.version,
            "implementation": request.python.implementation,
        },
        "requirements": list(request.requirements),
        "installed": installed_packages(site_packages),
        "runtime": runtime_hash(),
        "locations": list(request.locations),
        "builder": request.builder,
        "tools": pip.tool_versions(site_packages) if request.builder == "pip" else _uv_tools(),
        "timings": {k: round(v, 3) for k, v in timings.items()},
        "created_at": iso_utc(),
    }


def uv_environment() -> dict[str, str]:
    """The environment uv runs with: ours, no active venv, no interpreter downloads."""
    env = dict(os.environ)
    # Interpreters come from this machine: uv must never download one by itself.
    env.setdefault("UV_PYTHON_DOWNLOADS", "never")
    env.pop("VIRTUAL_ENV", None)
    return env


def _run_uv(
    request: EnvRequest,
    what: str,
    args: list[str],
    on_line: Callable[[str], None] | None = None,
) -> None:
    run_tool(request, "uv", what, [tools.uv_binary(), *args], uv_environment(), on_line)


class _Ticker:
    """While a build runs, tells LIVE how long it has taken: first after a second, then
    every few seconds (a build that takes longer than that is worth watching)."""

    def __init__(self, name: str, live: Progress) -> None:
        self._name = name
        self._live = live
        self._started = time.monotonic()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"ticker-{name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        wait = TICK_FIRST_SECONDS
        while not self._stopped.wait(wait):
            elapsed = time.monotonic() - self._started
            self._live(f"building {self._name}: {elapsed:.0f}s")
            wait = TICK_SECONDS

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(TICK_SECONDS)


def site_packages_of(env: Path, version: str) -> Path:
    major, minor = version.split(".")[:2]
    return env / "lib" / f"python{major}.{minor}" / "site-packages"


def installed_packages(site_packages: Path) -> list[str]:
    """Return sorted "name==version" of the distributions in SITE_PACKAGES, read from disk."""
    found = []
    for info in site_packages.glob("*.dist-info"):
        name, _, version = info.name[: -len(".dist-info")].partition("-")
        found.append(f"{name}=={version}")
    return sorted(found, key=str.lower)


def _uv_tools() -> dict[str, str]:
    return {"uv": uv_version()}


@cache
def uv_version() -> str:
    out = subprocess.run(
        [tools.uv_binary(), "--version"], capture_output=True, text=True, check=False, timeout=30
    )
    return out.stdout.strip()
