"""workspace-supervisor: the SDK that code locations import.

This module is part of the child side: it runs inside every location's own
environment, on CPython 3.8 and later, with only the standard library.
"""

from supervisor.sdk.assets import AssetContext, AssetDefinition, asset
from supervisor.sdk.definitions import Definitions, DefinitionsError, load_assets_from_modules
from supervisor.sdk.schedules import DefaultScheduleStatus, ScheduleDefinition

__version__ = "0.1.0"

__all__ = [
    "AssetContext",
    "AssetDefinition",
    "DefaultScheduleStatus",
    "Definitions",
    "DefinitionsError",
    "ScheduleDefinition",
    "__version__",
    "asset",
    "load_assets_from_modules",
]
