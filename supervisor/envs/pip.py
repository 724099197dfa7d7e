"""The builder where uv cannot serve: virtualenv + pip, with pip's own configuration.

virtualenv's environments are not relocatable: console scripts carry absolute `#!` lines
and `bin/activate*` name the folder. The build happens in a temporary folder, so before
the rename every text file in its `bin` (and `pyvenv.cfg`) that names that folder is
made to name the target instead; the rename then makes those names true, and nothing
is ever rewritten in an environment that may already be in use.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from supervisor.envs.keys import EnvRequest
from supervisor.envs.run import run_tool

# How much of a file to read to tell text from a binary (a NUL in it means binary).
SNIFF_BYTES = 8192


def pip_environment() -> dict[str, str]:
    """The environment virtualenv and pip run with: ours, PIP_* included, no active venv."""
    env = dict(os.environ)
    env.pop("VIRTUAL_ENV", None)
    env.pop("PYTHONHOME", None)
    env.setdefault("PIP_DISABLE_PIP_VERSION_CHECK", "1")
    env.setdefault("PIP_NO_INPUT", "1")
    return env


def make_env(temp: Path, target: Path, request: EnvRequest) -> dict[str, float]:
    """Make the venv in TEMP (to be renamed TARGET) and install the requirements; seconds
    per step."""
    env = pip_environment()
    timings: dict[str, float] = {}
    step = time.monotonic()
    venv = [sys.executable, "-m", "virtualenv", "--quiet", "--no-periodic-update"]
    venv += ["--no-setuptools", "--prompt", request.name, "--python", request.python.path]
    run_tool(request, "virtualenv", "create the environment", [*venv, str(temp)], env)
    timings["venv"] = time.monotonic() - step
    step = time.monotonic()
    install = [str(temp / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    run_tool(
        request, "pip", "install the requirements", [*install, *request.install_requirements()], env
    )
    timings["install"] = time.monotonic() - step
    retarget(temp, target)
    return timings


def retarget(temp: Path, target: Path) -> list[Path]:
    """Make each text file in TEMP/bin (and pyvenv.cfg) that names TEMP name TARGET instead;
    return those changed. Compiled .pyc files keep the name: Python fixes it when loading."""
    before, after = os.fsencode(str(temp)), os.fsencode(str(target))
    changed = []
    for path in [*sorted((temp / "bin").iterdir()), temp / "pyvenv.cfg"]:
        if path.is_symlink() or not path.is_file():
            continue
        data = path.read_bytes()
        if b"\0" in data[:SNIFF_BYTES] or before not in data:
            continue
        path.write_bytes(data.replace(before, after))  # in place: the mode stays
        changed.append(path)
    return changed


def tool_versions(site_packages: Path) -> dict[str, str]:
    """The versions of virtualenv (ours) and of the pip in the environment, read from disk."""
    import importlib.metadata  # here: only a pip build needs it, and it costs every `up`

    pip = [
        d.version
        for d in importlib.metadata.distributions(path=[str(site_packages)])
        if d.metadata["Name"] == "pip"
    ]
    return {
        "virtualenv": f"virtualenv {importlib.metadata.version('virtualenv')}",
        "pip": f"pip {pip[0]}" if pip else "pip (not found)",
    }
