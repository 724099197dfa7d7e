"""A file code location on pandas 2.x: the same CSV, other statistics."""

import os

import pandas as pd

from supervisor import Definitions, asset

CSV = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "flowers.csv")


@asset
def petal_ratios():
    """Petal length over width, per flower (pandas 2 copy-on-write semantics)."""
    frame = pd.read_csv(CSV)
    return (frame["petal_length"] / frame["petal_width"]).rename("petal_ratio")


@asset
def widest_petals(petal_ratios):
    """The five flowers with the smallest length-to-width ratio."""
    return petal_ratios.nsmallest(5)


defs = Definitions(assets=[petal_ratios, widest_petals])
