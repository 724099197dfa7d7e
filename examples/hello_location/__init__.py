"""A code location as a module: assets in a submodule, collected with load_assets_from_modules."""

from supervisor import Definitions, ScheduleDefinition, load_assets_from_modules

from . import assets

defs = Definitions(
    assets=load_assets_from_modules([assets]),
    resources={"greeting": "Hello"},
    schedules=[ScheduleDefinition("daily_greetings", "0 6 * * *", target="*")],
)
