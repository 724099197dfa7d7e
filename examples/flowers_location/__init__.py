"""A module code location on pandas 1.x: flower measurements read from a CSV in examples/data.

The CSV holds synthetic measurements (made for these examples, no download needed).
"""

from supervisor import Definitions, ScheduleDefinition, load_assets_from_modules

from . import assets

defs = Definitions(
    assets=load_assets_from_modules([assets]),
    resources={"csv_path": assets.DEFAULT_CSV},
    schedules=[ScheduleDefinition("nightly_flowers", "0 2 * * *", target=["species_summary"])],
)
