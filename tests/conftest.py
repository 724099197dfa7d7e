"""Fixtures: real environments on real interpreters, built once per test session."""

from __future__ import annotations

import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from supervisor.tools import uv_binary

# The export tests' workspace and `export kubernetes` of it (module-scoped fixtures).
from tests.exporthelp import export_project, k8s_out  # noqa: F401
from tests.helpers import HOST_PYTHON, make_child_env, pyenv_python, remove, short_tempdir

# The oldest and the newest CPython the child side supports, plus the host's own.
CHILD_PYTHONS = ("3.8", "3.13")


@pytest.fixture(scope="session")
def child_envs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Interpreter of a uv-made environment per version, holding grpcio, protobuf, runtime."""
    root = tmp_path_factory.mktemp("child-envs")
    with ThreadPoolExecutor(len(CHILD_PYTHONS)) as pool:
        futures = {
            minor: pool.submit(make_child_env, root / minor, pyenv_python(minor))
            for minor in CHILD_PYTHONS
        }
        envs = {minor: str(f.result()) for minor, f in futures.items()}
    envs["host"] = HOST_PYTHON
    return envs


@pytest.fixture(params=[*CHILD_PYTHONS, "host"])
def env_python(request: pytest.FixtureRequest, child_envs: dict[str, str]) -> str:
    """Each supported interpreter in turn."""
    return child_envs[request.param]


@pytest.fixture
def sock_dir() -> Path:
    path = short_tempdir()
    yield path
    remove(path)


@pytest.fixture(scope="session")
def shared_envs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One envs folder for every `up` in the session, so each environment is built once."""
    return tmp_path_factory.mktemp("shared-envs")


# The dagster release line the parity checks and the Dagster locations are measured against.
DAGSTER_REQUIREMENT = "dagster>=1.13,<1.14"


@pytest.fixture(scope="session")
def dagster_python(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The interpreter of a uv-made environment on 3.12 holding the real dagster."""
    root = tmp_path_factory.mktemp("dagster-env") / "env"
    uv = uv_binary()
    subprocess.run([uv, "venv", "--quiet", "--python", pyenv_python("3.12"), str(root)], check=True)
    python = root / "bin" / "python"
    subprocess.run(
        [uv, "pip", "install", "--quiet", "--python", str(python), DAGSTER_REQUIREMENT],
        check=True,
        timeout=900,
    )
    return str(python)
