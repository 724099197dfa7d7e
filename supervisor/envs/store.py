"""The environments folder as a whole: build many, list, find, collect garbage."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import uuid
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from supervisor.envs.build import LOCKS, MANIFEST, TEMP_PREFIX, BuiltEnv, Progress, ensure_env
from supervisor.envs.keys import EnvRequest, plan, ui_request
from supervisor.errors import EnvBuildError, UsageError
from supervisor.render import iso_utc
from supervisor.workspace import WorkspaceSpec

# Builds mostly wait on the network and on uv's own threads; a few at once is enough.
MAX_PARALLEL_BUILDS = 4


@dataclass(frozen=True)
class BuildReport:
    built: dict[str, BuiltEnv]  # by key
    failed: dict[str, EnvBuildError]  # by key


def build_all(
    envs_dir: Path,
    requests: Iterable[EnvRequest],
    progress: Progress | None = None,
    live: Progress | None = None,
) -> BuildReport:
    """Ensure each distinct environment, different keys in parallel; a failure stops no other."""
    unique = {r.key: r for r in requests}
    built: dict[str, BuiltEnv] = {}
    failed: dict[str, EnvBuildError] = {}
    if not unique:
        return BuildReport(built, failed)
    with ThreadPoolExecutor(min(MAX_PARALLEL_BUILDS, len(unique))) as pool:
        futures = {
            key: pool.submit(ensure_env, envs_dir, r, progress, live=live)
            for key, r in unique.items()
        }
        for key, future in futures.items():
            try:
                built[key] = future.result()
            except EnvBuildError as exc:
                failed[key] = exc
                if progress:
                    progress(f"failed {unique[key].name}: {exc}")
    return BuildReport(built, failed)


def _size(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_size
    return total


def _ours(path: Path) -> bool:
    return (path / MANIFEST).is_file()


def list_envs(workspace: WorkspaceSpec) -> list[dict[str, Any]]:
    """Describe every built environment (the `env list --json` shape)."""
    envs_dir = workspace.envs_dir
    users: dict[str, list[str]] = {}
    for name, request in plan(workspace).items():
        users.setdefault(request.name, []).append(name)
    ui = ui_request(workspace)
    if ui is not None:
        users.setdefault(ui.name, []).extend(ui.locations)
    rows: list[dict[str, Any]] = []
    if not envs_dir.is_dir():
        return rows
    for path in sorted(envs_dir.iterdir()):
        if not path.is_dir() or not _ours(path):
            continue
        manifest = json.loads((path / MANIFEST).read_text())
        last_used = iso_utc((path / MANIFEST).stat().st_mtime)
        rows.append(
            {
                "key": manifest["key"],
                "name": path.name,
                "locations": users.get(path.name, []),
                "python": manifest["python"]["version"],
                # Environments made before there was a choice of builder were made by uv.
                "builder": manifest.get("builder", "uv"),
                "path": str(path),
                "size_bytes": _size(path),
                "last_used": last_used,
                "created_at": manifest.get("created_at"),
                "installed": manifest.get("installed", []),
            }
        )
    return rows


def location_env_path(workspace: WorkspaceSpec, location: str) -> Path:
    """Return the built environment folder of LOCATION; UsageError if it has none yet."""
    spec = workspace.location(location)
    if spec.is_remote:
        raise UsageError(f"location {location!r} is a grpc_server: it has no environment here")
    if spec.executable_path is not None:
        return spec.executable_path.parent.parent
    request = plan(workspace, (location,))[location]
    path = workspace.envs_dir / request.name
    if not _ours(path):
        raise UsageError(
            f"the environment of location {location!r} is not built yet;"
            f" run: supervisor env build {location}"
        )
    return path


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def garbage(workspace: WorkspaceSpec) -> list[Path]:
    """Environments no entry of WORKSPACE uses, and temporary folders of dead builds."""
    envs_dir = workspace.envs_dir
    if not envs_dir.is_dir():
        return []
    wanted = {request.name for request in plan(workspace).values()}
    ui = ui_request(workspace)
    if ui is not None:
        wanted.add(ui.name)
    found = []
    for path in sorted(envs_dir.iterdir()):
        if path.name.startswith(TEMP_PREFIX):
            pid = path.name.rsplit("-", 2)[-2]
            if not (pid.isdigit() and _pid_alive(int(pid))):
                found.append(path)
        elif path.is_dir() and _ours(path) and path.name not in wanted:
            found.append(path)
    return found


def collect_garbage(workspace: WorkspaceSpec, dry_run: bool = False) -> list[tuple[Path, int]]:
    """Remove (unless DRY_RUN) what garbage() finds; return each path with its size."""
    removed = []
    for path in garbage(workspace):
        size = _size(path)
        if not dry_run:
            # Rename first so that a half-deleted environment is never taken for a built one.
            doomed = path.with_name(
                f"{TEMP_PREFIX}gc-{path.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
            )
            os.rename(path, doomed)
            shutil.rmtree(doomed, ignore_errors=True)
            with contextlib.suppress(OSError):
                (workspace.envs_dir / LOCKS / f"{path.name}.lock").unlink()
        removed.append((path, size))
    return removed
