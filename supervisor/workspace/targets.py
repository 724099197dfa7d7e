"""A workspace made from `up -m MODULE -f FILE --package-name PKG -a ATTR -d DIR --python SPEC`,
with the names and folders `dagster dev` gives the same flags (see tests/test_parity.py).

Dagster takes one kind of target per command line; we also take -m and -f together.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from pathlib import Path

from supervisor.workspace import values
from supervisor.workspace.entries import default_local_name
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
    packages: Sequence[str] = (),
    attribute: str | None = None,
    working_directory: str | None = None,
) -> WorkspaceSpec:
    """One location per -m module, -f file and --package-name package, run from CWD; its
    state lives in CWD too. ATTRIBUTE (-a) picks the Definitions variable of the one target;
    WORKING_DIRECTORY (-d, default CWD) is where the code is imported from.

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
    folder = cwd
    if working_directory is not None:
        try:
            folder = values.rebased_path(working_directory, cwd)
        except ValueError as exc:
            problems.add(0, "-d", str(exc))
    targets = [*modules, *files, *packages]
    if attribute is not None:
        if len(targets) > 1:
            problems.add(
                0, "-a", f"an attribute picks from one target; got {len(targets)}: {targets}"
            )
        else:
            try:
                values.check_identifier(attribute)
            except ValueError as exc:
                problems.add(0, "-a", str(exc))
    make = functools.partial(
        LocationSpec,
        working_directory=folder,
        python=python,
        requirements=wanted,
        attribute=attribute,
    )
    locations = [
        *_locations("-m", modules, cwd, make, problems),
        *_locations("-f", files, cwd, make, problems),
        *_locations("--package-name", packages, cwd, make, problems),
    ]
    if not targets:
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
    return WorkspaceSpec(cwd / "workspace.yaml", cwd / "envs", specs, from_flags=True, cwd=cwd)


def _locations(
    flag: str,
    targets: Sequence[str],
    cwd: Path,
    make: functools.partial[LocationSpec],
    problems: Problems,
) -> list[tuple[LocationSpec, str]]:
    """One location per target of FLAG, with the flag and value that named it."""
    attribute = make.keywords["attribute"]
    kind = {"-m": "python_module", "-f": "python_file"}.get(flag, "python_package")
    found = []
    for target in targets:
        name = default_local_name(kind, target, attribute)
        try:
            if flag == "-f":
                path = values.rebased_path(target, cwd)
                spec = make(name, kind, 0, python_file=path)
            else:
                spec = make(name, kind, 0, module_name=values.check_module_name(target))
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
