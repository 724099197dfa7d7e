"""Build one environment: locked per key, made in a temporary folder, renamed into place last.

An interrupted build leaves only a temporary folder, which nothing ever uses and
`env gc` removes. A finished environment holds `manifest.json`, written just
before the rename, so its presence alone marks a usable environment.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import json
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from supervisor.envs.keys import EnvRequest
from supervisor.errors import EnvBuildError
from supervisor.runtime import install_runtime, runtime_hash
from supervisor.tools import uv_binary

MANIFEST = "manifest.json"
LOCKS = ".locks"
TEMP_PREFIX = ".tmp-"
# How many lines of a failing tool's output an error quotes.
QUOTED_LINES = 25
# A build that takes longer than this is stuck (a hung index, say), not slow.
UV_TIMEOUT = 1800.0

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
) -> BuiltEnv:
    """Return REQUEST's environment, building it if needed; EnvBuildError names the locations."""
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
        return _build(envs_dir, request, say)


@contextlib.contextmanager
def _key_lock(envs_dir: Path, request: EnvRequest, timeout: float, say: Progress) -> Iterator[None]:
    locks = envs_dir / LOCKS
    locks.mkdir(exist_ok=True)
    with open(locks / f"{request.name}.lock", "w") as handle:
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


def _build(envs_dir: Path, request: EnvRequest, say: Progress) -> BuiltEnv:
    started = time.monotonic()
    target = envs_dir / request.name
    temp = envs_dir / f"{TEMP_PREFIX}{request.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    say(f"building {request.name} for {', '.join(request.locations)}")
    timings: dict[str, float] = {}
    try:
        step = time.monotonic()
        _run_uv(
            request,
            "create the environment",
            [
                "venv",
                "--quiet",
                "--relocatable",
                "--no-project",
                "--python",
                request.python.path,
                str(temp),
            ],
        )
        timings["venv"] = time.monotonic() - step
        step = time.monotonic()
        _run_uv(
            request,
            "install the requirements",
            [
                "pip",
                "install",
                "--quiet",
                "--python",
                str(temp / "bin" / "python"),
                *request.install_requirements(),
            ],
        )
        timings["install"] = time.monotonic() - step
        step = time.monotonic()
        site_packages = site_packages_of(temp, request.python.version)
        install_runtime(site_packages)
        timings["runtime"] = time.monotonic() - step
        timings["total"] = time.monotonic() - started
        manifest = {
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
            "tools": {"uv": uv_version()},
            "timings": {k: round(v, 3) for k, v in timings.items()},
            "created_at": datetime.datetime.now(datetime.timezone.utc).isoformat(
                timespec="seconds"
            ),
        }
        (temp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        os.rename(temp, target)
    finally:
        if temp.exists():
            shutil.rmtree(temp, ignore_errors=True)
    seconds = time.monotonic() - started
    say(f"built {request.name} in {seconds:.1f}s")
    return BuiltEnv(target, request.key, False, seconds)


def uv_environment() -> dict[str, str]:
    """The environment uv runs with: ours, no active venv, no interpreter downloads."""
    env = dict(os.environ)
    # Interpreters come from this machine: uv must never download one by itself.
    env.setdefault("UV_PYTHON_DOWNLOADS", "never")
    env.pop("VIRTUAL_ENV", None)
    return env


def _run_uv(request: EnvRequest, what: str, args: list[str]) -> None:
    env = uv_environment()
    try:
        result = subprocess.run(
            [uv_binary(), *args],
            capture_output=True,
            text=True,
            env=env,
            stdin=subprocess.DEVNULL,
            check=False,
            timeout=UV_TIMEOUT,
        )
    except subprocess.TimeoutExpired:
        raise EnvBuildError(
            request.locations, f"uv did not {what} within {UV_TIMEOUT:g}s"
        ) from None
    if result.returncode != 0:
        output = (result.stderr or result.stdout).strip().splitlines()
        quoted = "\n".join("  | " + line for line in output[-QUOTED_LINES:])
        raise EnvBuildError(
            request.locations, f"uv could not {what} (exit code {result.returncode}):\n{quoted}"
        )


def now_iso() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


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


@cache
def uv_version() -> str:
    out = subprocess.run(
        [uv_binary(), "--version"], capture_output=True, text=True, check=False, timeout=30
    )
    return out.stdout.strip()
