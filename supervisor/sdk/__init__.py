"""The SDK that code locations import (child side: CPython 3.8+, standard library only)."""

from __future__ import annotations

from supervisor.sdk.assets import AssetContext, AssetDefinition, asset
from supervisor.sdk.definitions import (
    Definitions,
    DefinitionsError,
    UnknownKeyError,
    load_assets_from_modules,
)
from supervisor.sdk.schedules import DefaultScheduleStatus, ScheduleDefinition, validate_cron

__all__ = [
    "AssetContext",
    "AssetDefinition",
    "DefaultScheduleStatus",
    "Definitions",
    "DefinitionsError",
    "ScheduleDefinition",
    "UnknownKeyError",
    "asset",
    "load_assets_from_modules",
    "validate_cron",
]
