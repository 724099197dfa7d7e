"""Whether a Dagster location's dagster can be read by the webserver's.

Dagster's webserver reads what code servers send (snapshots of their definitions); it
understands what its own version and older ones write, not what a newer minor version may
add. So a webserver at least as new (by minor version) as each location is what works;
a newer location, or another major version, is said plainly.
"""

from __future__ import annotations


def _minor(version: str) -> tuple[int, int] | None:
    parts = version.split(".")
    if len(parts) < 2 or not (parts[0].isdigit() and parts[1].isdigit()):
        return None
    return int(parts[0]), int(parts[1])


def compatibility(location: str, webserver: str) -> str | None:
    """What is wrong with a location on dagster LOCATION beside a webserver on WEBSERVER;
    None when they work together (or either is not known yet)."""
    ours, theirs = _minor(location), _minor(webserver)
    if ours is None or theirs is None:
        return None
    if ours[0] != theirs[0]:
        return (
            f"its dagster {location} and the webserver's {webserver} are of different major"
            " versions and cannot work together; pin dagster.version to match"
        )
    if ours > theirs:
        return (
            f"its dagster {location} is newer than the webserver's {webserver}, which may not"
            f' read what it sends; pin dagster.version to "{ours[0]}.{ours[1]}.*" or newer,'
            " or require an older dagster here"
        )
    return None
