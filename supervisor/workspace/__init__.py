"""workspace.yaml -> typed, frozen specs, with precise errors.

Dagster's workspace format loads unchanged (`load_from:` with python_module,
python_file, python_package and grpc_server entries, or the bare list of entries);
our keys (python, requirements, env, timeouts, memory_limit, health, restart) stand in
an entry's mapping or under `defaults:`. Every problem names the file, the line, the
key path, the bad value and what is allowed, and all of them are reported together.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from supervisor.errors import WorkspaceError
from supervisor.workspace.convert import Converter
from supervisor.workspace.specs import HealthSpec, LocationSpec, RestartSpec, WorkspaceSpec
from supervisor.workspace.targets import workspace_from_targets
from supervisor.workspace.values import is_dir, is_file
from supervisor.workspace.yamlnodes import Problems, check_tree, compose

__all__ = [
    "HealthSpec",
    "LocationSpec",
    "RestartSpec",
    "WorkspaceError",
    "WorkspaceSpec",
    "check_paths",
    "envs_dir_problem",
    "load_workspace",
    "parse_workspace",
    "workspace_from_targets",
]


def load_workspace(path: str | Path) -> WorkspaceSpec:
    """Read and check the workspace file at PATH; WorkspaceError names every problem."""
    shown = str(path)
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise WorkspaceError(
            f"{shown}: no such workspace file (give one with -w FILE,"
            " or name code locations with -m MODULE / -f FILE)",
            shown,
        ) from None
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise WorkspaceError(f"{shown}: cannot read the workspace file: {reason}", shown) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise WorkspaceError(
            f"{shown}:{line}: not UTF-8 text; got byte {data[exc.start]:#04x}", shown
        ) from None
    return parse_workspace(text, Path(path), shown)


def parse_workspace(text: str, path: Path, shown: str | None = None) -> WorkspaceSpec:
    """Check TEXT, the content of the workspace file at PATH (relative paths start at its folder).

    SHOWN is the file name for messages (default: PATH as given).
    """
    problems = Problems(str(path) if shown is None else shown)
    path = Path(os.path.abspath(path))
    root = compose(text, problems)
    if root is not None:
        check_tree(root, problems)
    return Converter(path.parent, problems).workspace(root, path)


def check_paths(workspace: WorkspaceSpec, names: Sequence[str] = ()) -> None:
    """Refuse, before anything starts, locations whose file or folder does not exist.

    Parsing leaves this out (a workspace may be read where its code is not), but `up`
    and `check` need the code: WorkspaceError names the line, location and path.
    """
    problems = []
    for spec in workspace.locations:
        if names and spec.name not in names:
            continue
        where = f"{workspace.path}:{spec.line}" if spec.line else "command line"
        if spec.python_file is not None and not is_file(spec.python_file):
            problems.append(f"{where} location {spec.name!r}: no such file {spec.python_file}")
        folder = spec.working_directory
        if folder is not None and not is_dir(folder):
            problems.append(f"{where} location {spec.name!r}: no such working_directory {folder}")
    needs_envs = any(
        not spec.is_remote and spec.executable_path is None
        for spec in workspace.locations
        if not names or spec.name in names
    )
    if needs_envs:
        problem = envs_dir_problem(workspace)
        if problem:
            problems.append(problem)
    if problems:
        raise WorkspaceError(problems, str(workspace.path))


def envs_dir_problem(workspace: WorkspaceSpec) -> str | None:
    """Why the environments folder cannot be used (it is made here when missing), or None."""
    folder = workspace.envs_dir
    where = (
        f"{workspace.path}:{workspace.envs_dir_line}"
        if workspace.envs_dir_line
        else (str(workspace.path))
    )
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if not os.access(folder, os.W_OK | os.X_OK):
            raise PermissionError(13, "not writable")
    except OSError as exc:
        reason = exc.strerror or str(exc)
        # os.path.exists, not Path.exists: that one raises for a name too long.
        if isinstance(exc, FileExistsError) or (os.path.exists(folder) and not is_dir(folder)):
            reason = "it exists and is not a folder"
        return (
            f"{where} envs_dir: cannot hold environments ({reason});"
            f" expected a folder that can be created or written; got {str(folder)!r}"
        )
    return None
