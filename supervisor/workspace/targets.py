"""A workspace made from `up -m MODULE -f FILE --python SPEC`, as `dagster dev -m/-f` does."""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from pathlib import Path

from supervisor.workspace import values
from supervisor.workspace.requirements import RequirementsFile, add_unique, normalize_requirement
from supervisor.workspace.specs import LocationSpec, WorkspaceSpec
from supervisor.workspace.yamlnodes import Problems

SOURCE = "command line"


def workspace_from_targets(
    modules: Sequence[str],
    files: Sequence[str],
    python: str | None,
    cwd: Path,
    requirements: Sequence[str] = (),
) -> WorkspaceSpec:
    """One location per -m module and -f file, run from CWD; its state lives in CWD too.

    REQUIREMENTS (-r) are PEP 508 strings or requirements files, as a workspace entry's
    `requirements:` takes them, for every location. The workspace path is the virtual
    CWD/workspace.yaml, so the state folder and the environments (CWD/envs) sit where a
    workspace file there would put them.
    """
    cwd = Path(os.path.abspath(cwd))
    problems = Problems(SOURCE)
    wanted = _requirements(requirements, cwd, problems)
    if python is not None:
        try:
            python = values.python_value(python, cwd)
        except ValueError as exc:
            problems.add(0, "--python", str(exc))
    locations = [
        *_locations("-m", modules, cwd, python, wanted, problems),
        *_locations("-f", files, cwd, python, wanted, problems),
    ]
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
    return WorkspaceSpec(cwd / "workspace.yaml", cwd / "envs", specs, from_flags=True)


def _locations(
    flag: str,
    targets: Sequence[str],
    cwd: Path,
    python: str | None,
    requirements: tuple[str, ...],
    problems: Problems,
) -> list[tuple[LocationSpec, str]]:
    """One location per -m MODULE or -f FILE (FLAG), with the flag and value that named it."""
    make = functools.partial(
        LocationSpec, working_directory=cwd, python=python, requirements=requirements
    )
    found = []
    for target in targets:
        try:
            if flag == "-m":
                name = values.check_module_name(target)
                spec = make(name, "python_module", 0, module_name=target)
            else:
                path = values.absolute_path(target, cwd)
                spec = make(path.stem, "python_file", 0, python_file=path)
        except ValueError as exc:
            problems.add(0, flag, str(exc))
            continue
        found.append((spec, f"{flag} {target}"))
    return found


def _requirements(given: Sequence[str], cwd: Path, problems: Problems) -> tuple[str, ...]:
    """The -r values: a requirements file when one is there by that name, else a PEP 508
    string; every problem is added with its flag."""
    found: list[str] = []
    for text in given:
        path = Path(os.path.expanduser(text))
        path = path if path.is_absolute() else cwd / path
        if values.is_file(path):
            reader = RequirementsFile(cwd)
            reader.read(path)
            for problem in reader.problems:
                problems.add(0, "-r", problem)
            for requirement in reader.requirements:
                add_unique(found, requirement)
            continue
        try:
            add_unique(found, normalize_requirement(text))
        except ValueError as exc:
            problems.add(
                0, "-r", f"expected a requirement such as six==1.16 or a file; got {text!r} ({exc})"
            )
    return tuple(found)
