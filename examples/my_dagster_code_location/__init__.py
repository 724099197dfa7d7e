"""A real Dagster code location (`from dagster import ...`), served by `dagster api grpc` in an
environment of its own: the flower measurements of examples/data, read with pandas 2."""

from dagster import Definitions, load_assets_from_modules

from . import my_assets

defs = Definitions(assets=load_assets_from_modules([my_assets]))
