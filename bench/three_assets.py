"""A tiny code location for the benchmarks: three trivial chained assets, a -> b -> c."""

from supervisor import Definitions, asset


@asset
def a():
    return 1


@asset
def b(a):
    return a + 1


@asset
def c(b):
    return b * 2


defs = Definitions(assets=[a, b, c])
