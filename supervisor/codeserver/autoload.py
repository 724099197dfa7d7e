"""Dagster's `autoload_defs_module` for our SDK: one Definitions from a package and all of its
submodules.

The module and every submodule below it are imported in name order; their top-level
Definitions objects, assets and schedules are gathered into one Definitions (each object
once), as Dagster gathers a defs folder. Resources come from the Definitions found; two
that give one key different values are an error naming both modules.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType
from typing import Any

from supervisor.sdk.assets import AssetDefinition
from supervisor.sdk.definitions import Definitions
from supervisor.sdk.errors import DefinitionsError
from supervisor.sdk.schedules import ScheduleDefinition


def submodules(module: ModuleType) -> list[ModuleType]:
    """MODULE and, for a package, every module below it, imported, in name order."""
    found = [module]
    path = getattr(module, "__path__", None)
    if path is None:
        return found
    names = sorted(info.name for info in pkgutil.walk_packages(path, module.__name__ + "."))
    for name in names:
        found.append(importlib.import_module(name))
    return found


def autoload_definitions(module: ModuleType) -> Definitions:
    """One Definitions of everything found in MODULE and its submodules (LookupError when
    there is nothing)."""
    assets: dict[int, AssetDefinition] = {}
    schedules: dict[int, ScheduleDefinition] = {}
    resources: dict[str, Any] = {}
    resource_origin: dict[str, str] = {}
    for each in submodules(module):
        for value in list(vars(each).values()):
            if isinstance(value, Definitions):
                for asset in value.assets:
                    assets.setdefault(id(asset), asset)
                for schedule in value.schedules:
                    schedules.setdefault(id(schedule), schedule)
                for key, resource in value.resources.items():
                    if key in resources and resources[key] is not resource:
                        raise LookupError(
                            f"resource {key!r} is given twice: in {resource_origin[key]} and"
                            f" in {each.__name__}; keep one"
                        )
                    resources[key] = resource
                    resource_origin[key] = each.__name__
            elif isinstance(value, AssetDefinition):
                assets.setdefault(id(value), value)
            elif isinstance(value, ScheduleDefinition):
                schedules.setdefault(id(value), value)
    if not assets and not schedules:
        raise LookupError(
            f"no Definitions, assets or schedules found in module {module.__name__} or its"
            " submodules"
        )
    try:
        return Definitions(
            assets=list(assets.values()),
            resources=resources,
            schedules=list(schedules.values()),
        )
    except DefinitionsError as exc:
        raise LookupError(f"module {module.__name__} and its submodules: {exc}") from None
