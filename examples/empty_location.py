"""A code location as a single file (loaded with `python_file` or `-f`)."""

from supervisor import Definitions, asset


@asset
def empty_data():
    """An empty table."""
    return []


defs = Definitions(assets=[empty_data])
