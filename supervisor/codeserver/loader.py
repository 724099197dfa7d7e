"""Find a location's Definitions: import a module or file, look among its top-level variables.

A load that fails is not a crash: the result carries the message and the full
traceback, and the server goes on serving them.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import traceback
from types import ModuleType
from typing import NamedTuple

from supervisor.codeserver import autoload
from supervisor.sdk.definitions import Definitions


class CodeTarget(NamedTuple):
    """What to load: a module by name or a file by path."""

    module_name: str | None = None
    python_file: str | None = None
    working_directory: str | None = None
    attribute: str | None = None
    autoload: bool = False  # module_name is an autoload_defs_module: gather its submodules

    def describe(self) -> str:
        """Return "module M" or "file F", as log lines and errors name the target."""
        if self.module_name:
            return "module " + self.module_name
        return "file " + str(self.python_file)

    def default_location_name(self) -> str:
        """Return the location name used when none is given: Dagster's (`repo.py`,
        `pkg.defs:defs`)."""
        base = self.module_name or os.path.basename(str(self.python_file))
        return f"{base}:{self.attribute}" if self.attribute else base


class LoadFailure(NamedTuple):
    message: str
    traceback: str


class LoadResult(NamedTuple):
    definitions: Definitions | None
    failure: LoadFailure | None
    module: ModuleType | None = None


class _NotFoundError(Exception):
    """The target itself is missing (no traceback worth showing)."""


def load(target: CodeTarget) -> LoadResult:
    """Import the target and find its Definitions; never raises for user-code errors."""
    try:
        module = _import_target(target)
    except _NotFoundError as exc:
        return LoadResult(None, LoadFailure(str(exc), ""))
    except (Exception, SystemExit) as exc:
        return LoadResult(
            None,
            LoadFailure(
                f"could not import {target.describe()}: {type(exc).__name__}: {exc}",
                traceback.format_exc(),
            ),
        )
    try:
        if target.autoload:
            definitions = autoload.autoload_definitions(module)
        else:
            definitions = find_definitions(module, target)
    except LookupError as exc:
        return LoadResult(None, LoadFailure(str(exc.args[0]), ""), module)
    except (Exception, SystemExit) as exc:  # a submodule that autoload imports failed
        return LoadResult(
            None,
            LoadFailure(
                f"could not import {target.describe()}: {type(exc).__name__}: {exc}",
                traceback.format_exc(),
            ),
            module,
        )
    return LoadResult(definitions, None, module)


def _import_target(target: CodeTarget) -> ModuleType:
    if target.working_directory:
        working_directory = os.path.abspath(target.working_directory)
        if not os.path.isdir(working_directory):
            raise _NotFoundError(f"working directory {working_directory} does not exist")
    else:
        working_directory = None
    if target.module_name:
        if working_directory:
            sys.path.insert(0, working_directory)
        elif "" not in sys.path and os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())
        if importlib.util.find_spec(target.module_name.split(".")[0]) is None:
            raise _NotFoundError(
                f"module {target.module_name!r} not found"
                f" (looked in {working_directory or os.getcwd()})"
            )
        return importlib.import_module(target.module_name)
    return _import_file(str(target.python_file), working_directory)


def _import_file(python_file: str, working_directory: str | None) -> ModuleType:
    path = os.path.abspath(python_file)
    if not os.path.isfile(path):
        raise _NotFoundError(f"python file {path} does not exist")
    sys.path.insert(0, working_directory or os.path.dirname(path))
    name = os.path.splitext(os.path.basename(path))[0]
    if name in sys.modules or not name.isidentifier():
        name = "__location__"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise _NotFoundError(f"cannot load {path} as Python code")
    module = importlib.util.module_from_spec(spec)
    # Registered before running, as an import would, so that pickling and
    # dataclasses can find the module by name.
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def find_definitions(module: ModuleType, target: CodeTarget) -> Definitions:
    """Return the one Definitions among the module's top-level variables (or the one named)."""
    where = "{} ({})".format(target.describe(), getattr(module, "__file__", "?"))
    if target.attribute:
        if not hasattr(module, target.attribute):
            raise LookupError(f"{where} has no top-level variable {target.attribute!r}")
        value = getattr(module, target.attribute)
        if not isinstance(value, Definitions):
            raise LookupError(
                f"{where}: {target.attribute!r} is a {type(value).__name__}, not a Definitions"
            )
        return value
    found = {}  # id -> names, so that one object bound to two names counts once
    for name, value in vars(module).items():
        if isinstance(value, Definitions):
            found.setdefault(id(value), (value, []))[1].append(name)
    if not found:
        if any(_is_dagsters(value) for value in vars(module).values()):
            raise LookupError(
                f"{where} holds a dagster.Definitions, not a supervisor.Definitions: it is a"
                " Dagster location; set runtime: dagster on its workspace entry (or add dagster"
                " to its requirements) so that Dagster's own code server serves it"
            )
        raise LookupError(
            f"no Definitions found among the top-level variables of {where}; one made inside a "
            "function or a class is not found"
        )
    if len(found) > 1:
        names = ", ".join(" = ".join(names) for _, names in found.values())
        raise LookupError(
            f"{where} holds {len(found)} Definitions objects ({names});"
            " keep one, or pick one with attribute"
        )
    return next(iter(found.values()))[0]


def _is_dagsters(value: object) -> bool:
    """True for a dagster.Definitions (told by its class, without importing dagster)."""
    kind = type(value)
    return kind.__name__ == "Definitions" and kind.__module__.split(".")[0] == "dagster"
