"""workspace-supervisor: the SDK that code locations import.

This module is part of the child side: it runs inside every location's own
environment, on CPython 3.8 and later, with only the standard library.

The SDK's names load on first use (`from supervisor import asset`): the supervisor's own
command line lives in this package too, and `supervisor --help` should not pay for them.
"""

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# Name -> the module that defines it.
_EXPORTS = {
    "AssetContext": "supervisor.sdk.assets",
    "AssetDefinition": "supervisor.sdk.assets",
    "asset": "supervisor.sdk.assets",
    "Definitions": "supervisor.sdk.definitions",
    "DefinitionsError": "supervisor.sdk.definitions",
    "load_assets_from_modules": "supervisor.sdk.definitions",
    "DefaultScheduleStatus": "supervisor.sdk.schedules",
    "ScheduleDefinition": "supervisor.sdk.schedules",
}

__all__ = [*sorted(_EXPORTS), "__version__"]

# For type checkers and editors, which do not run __getattr__: the same names, eagerly.
if TYPE_CHECKING:
    from supervisor.sdk.assets import AssetContext as AssetContext
    from supervisor.sdk.assets import AssetDefinition as AssetDefinition
    from supervisor.sdk.assets import asset as asset
    from supervisor.sdk.definitions import Definitions as Definitions
    from supervisor.sdk.definitions import DefinitionsError as DefinitionsError
    from supervisor.sdk.definitions import load_assets_from_modules as load_assets_from_modules
    from supervisor.sdk.schedules import DefaultScheduleStatus as DefaultScheduleStatus
    from supervisor.sdk.schedules import ScheduleDefinition as ScheduleDefinition


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'supervisor' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list:
    return sorted([*globals(), *_EXPORTS])
