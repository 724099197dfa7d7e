"""workspace.yaml -> typed, frozen specs, with precise errors.

Dagster's workspace format loads with Dagster's meaning (`load_from:` with python_module,
python_file, python_package, autoload_defs_module and grpc_server entries; several files
merge in order, a later entry replacing an earlier one of the same name): see entries.py
for the rules, and tests/test_parity.py for the check against Dagster's own loader. The
bare list of entries at the top is our extension, as are our keys (python, requirements,
env, timeouts, memory_limit, health, restart, builder), in an entry's mapping or under
`defaults:`. Every problem names the file, the line, the key path, the bad value and what
is allowed, and all of them are reported together.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from supervisor.errors import WorkspaceError
from supervisor.workspace.convert import Converter
from supervisor.workspace.specs import HealthSpec, LocationSpec, RestartSpec, UiSpec, WorkspaceSpec
from supervisor.workspace.targets import workspace_from_targets
from supervisor.workspace.values import is_dir, is_file
from supervisor.workspace.yamlnodes import Problems, check_tree, compose

__all__ = [
    "HealthSpec",
    "LocationSpec",
    "RestartSpec",
    "UiSpec",
    "WorkspaceError",
    "WorkspaceSpec",
    "check_paths",
    "envs_dir_problem",
    "load_workspace",
    "merge_workspaces",
    "parse_workspace",
    "workspace_from_targets",
]


def load_workspace(
    paths: str | Path | Sequence[str | Path], cwd: Path | None = None
) -> WorkspaceSpec:
    """Read and check the workspace file(s) at PATHS; WorkspaceError names every problem.

    Several files merge in order, as `dagster dev -w A -w B` does: a later entry replaces an
    earlier one of the same name, in the earlier one's place; names must still be unique
    within each file. The first file's folder holds the state and its envs_dir is used.
    Module entries' relative folders start at CWD (default: the current folder).
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    cwd = Path(os.path.abspath(cwd if cwd is not None else os.getcwd()))
    specs = [_load_one(path, cwd) for path in paths]
    if not specs:
        raise WorkspaceError("no workspace file given", "")
    return specs[0] if len(specs) == 1 else merge_workspaces(specs)


def merge_workspaces(specs: Sequence[WorkspaceSpec]) -> WorkspaceSpec:
    """SPECS as one workspace: Dagster's merge of several -w files (see load_workspace)."""
    first = specs[0]
    merged: dict[str, LocationSpec] = {}
    warnings = list(first.warnings)
    for spec in specs[1:]:
        warnings += spec.warnings
        if spec.envs_dir != first.envs_dir and spec.envs_dir_line:
            warnings.append(
                f"{spec.path}:{spec.envs_dir_line} envs_dir: not used; the first workspace"
                f" file's holds every environment: {first.envs_dir}"
            )
    for spec in specs:
        for location in spec.locations:
            merged[location.name] = location
    return replace(
        first,
        locations=tuple(merged.values()),
        files=tuple(p for spec in specs for p in spec.files),
        warnings=tuple(warnings),
    )


def _load_one(path: str | Path, cwd: Path) -> WorkspaceSpec:
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
    return parse_workspace(text, Path(path), shown, cwd)


def parse_workspace(
    text: str, path: Path, shown: str | None = None, cwd: Path | None = None
) -> WorkspaceSpec:
    """Check TEXT, the content of the workspace file at PATH.

    SHOWN is the file name for messages (default: PATH as given). Relative paths start at
    the file's folder, but module entries' folders, sockets and executable paths start at
    CWD (default: the current folder), as Dagster reads them.
    """
    problems = Problems(str(path) if shown is None else shown)
    path = Path(os.path.abspath(path))
    cwd = Path(os.path.abspath(cwd if cwd is not None else os.getcwd()))
    root = compose(text, problems)
    if root is not None:
        check_tree(root, problems)
    return Converter(path.parent, problems, cwd).workspace(root, path)


def check_paths(workspace: WorkspaceSpec, names: Sequence[str] = ()) -> None:
    """Refuse, before anything starts, locations whose file or folder does not exist.

    Parsing leaves this out (a workspace may be read where its code is not), but `up`
    and `check` need the code: WorkspaceError names the line, location and path.
    """
    problems = []
    for spec in workspace.locations:
        if names and spec.name not in names:
            continue
        where = spec.where
        if spec.executable_path is not None and not is_file(spec.executable_path):
            on_path = (
                "/" not in str(spec.executable_path) and not spec.executable_path.is_absolute()
            )
            what = "is not on PATH" if on_path else "does not exist"
            problems.append(
                f"{where} location {spec.name!r}: executable_path {str(spec.executable_path)!r}"
                f" {what}; expected a Python interpreter"
            )
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
