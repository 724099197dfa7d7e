"""Flower measurements read from a CSV, and the widest petal per species, as Dagster assets."""

import os

import pandas as pd
from dagster import asset

CSV = os.environ.get(
    "FLOWERS_CSV",
    os.path.join(
        os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data", "flowers.csv"
    ),
)


@asset(group_name="flowers")
def measurements() -> pd.DataFrame:
    """Every measurement, as read from the CSV."""
    return pd.read_csv(CSV)


@asset(group_name="flowers")
def widest_petals(measurements: pd.DataFrame) -> pd.DataFrame:
    """The widest petal of each species."""
    return measurements.groupby("species")[["petal_width"]].max()
