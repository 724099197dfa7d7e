"""Flower measurements and a per-species summary, with pandas."""

import os

import pandas as pd

from supervisor import asset

DEFAULT_CSV = os.environ.get(
    "FLOWERS_CSV",
    os.path.join(
        os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data", "flowers.csv"
    ),
)


@asset(group_name="flowers")
def flower_data(csv_path):
    """Every measurement, as read from the CSV."""
    return pd.read_csv(csv_path)


@asset(group_name="flowers")
def species_summary(flower_data):
    """Mean measurements per species."""
    return flower_data.groupby("species").mean(numeric_only=True)
