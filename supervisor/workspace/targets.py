"""A workspace made from `up -m MODULE -f FILE --python SPEC`, as `dagster dev -m/-f` does."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from supervisor.workspace import values
from supervisor.workspace.specs import LocationSpec, WorkspaceSpec
from supervisor.workspace.yamlnodes import Problems

SOURCE = "command line"


def workspace_from_targets(
    modules: Sequence[str], files: Sequence[str], python: str | None, cwd: Path
) -> WorkspaceSpec:
    """One location per -m module and -f file, run from CWD; its state lives in CWD too.

    The workspace path is the virtual CWD/workspace.yaml, so the state folder and the
    environments (CWD/envs) sit where a workspace file there would put them.
    """
    cwd = Path(os.path.abspath(cwd))
    problems = Problems(SOURCE)
    if python is not None:
        try:
            python = values.python_value(python, cwd)
        except ValueError as exc:
            problems.add(0, "--python", str(exc))
    locations: list[tuple[LocationSpec, str]] = []
    for module in modules:
        try:
            values.check_module_name(module)
        except ValueError as exc:
            problems.add(0, "-m", str(exc))
            continue
        spec = LocationSpec(
            module, "python_module", 0, module_name=module, working_directory=cwd, python=python
        )
        locations.append((spec, f"-m {module}"))
    for file in files:
        try:
            path = values.absolute_path(file, cwd)
        except ValueError as exc:
            problems.add(0, "-f", str(exc))
            continue
        spec = LocationSpec(
            path.stem, "python_file", 0, python_file=path, working_directory=cwd, python=python
        )
        locations.append((spec, f"-f {file}"))
    if not modules and not files:
        problems.add(0, "", "no code locations: give -m MODULE or -f FILE, or a workspace file")
    seen: dict[str, str] = {}
    for spec, flag in locations:
        if spec.name in seen:
            problems.add(
                0,
                flag,
                f"duplicate location name, also named by {seen[spec.name]}; got {spec.name!r}",
            )
        seen.setdefault(spec.name, flag)
    problems.raise_if_any()
    specs = tuple(spec for spec, _ in locations)
    return WorkspaceSpec(cwd / "workspace.yaml", cwd / "envs", specs)
