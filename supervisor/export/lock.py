"""The lock file of a location's image: exactly the distributions of its built environment.

Read from the environment's own metadata (each `.dist-info`/`.egg-info` in its
site-packages), not resolved again, so that the image holds what the location was built,
checked and run with. Each distribution becomes `name==version`; one installed from a URL
becomes a direct reference (`name @ git+https://...@COMMIT`), which an image build can
fetch too. One installed from a local folder or file cannot be fetched by a build
elsewhere: that is an error naming it. The child runtime is not a distribution (it is
copied into site-packages as files), so it is never listed; the image gets it as files too.
"""

from __future__ import annotations

import importlib.metadata
import json
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import canonicalize_name

from supervisor.errors import SupervisorError

LOCK_FILE = "requirements.lock"
_FETCHABLE = ("https://", "http://")


@dataclass(frozen=True)
class Pin:
    """One distribution of an environment, as the lock file names it."""

    name: str
    version: str
    url: str | None = None  # a direct reference, when it was not installed from an index

    @property
    def line(self) -> str:
        return f"{self.name} @ {self.url}" if self.url else f"{self.name}=={self.version}"


def environment_pins(site_packages: Path, location: str) -> list[Pin]:
    """The distributions in SITE_PACKAGES, sorted by name; SupervisorError for one no image
    build could install (from a local path) or an environment holding a name twice."""
    pins: dict[str, Pin] = {}
    for dist in importlib.metadata.distributions(path=[str(site_packages)]):
        name = dist.metadata["Name"]
        if not name:
            continue  # a metadata folder without a name is not a distribution pip can install
        pin = Pin(name, dist.version, _direct_reference(dist, location))
        key = canonicalize_name(name)
        if key in pins and pins[key] != pin:
            raise SupervisorError(
                f"location {location!r}: its environment ({site_packages}) holds {name} twice"
                f" ({pins[key].line} and {pin.line}); rebuild it (`supervisor env gc`, then"
                " `supervisor env build`)"
            )
        pins[key] = pin
    return [pins[key] for key in sorted(pins)]


def _direct_reference(dist: importlib.metadata.Distribution, location: str) -> str | None:
    """The PEP 610 direct URL DIST was installed from, as a requirement's URL; None when it
    came from an index."""
    text = dist.read_text("direct_url.json")
    if not text:
        return None
    origin = json.loads(text)
    url = str(origin.get("url", ""))
    name = dist.metadata["Name"]
    if "vcs_info" in origin:
        vcs = origin["vcs_info"]
        commit = vcs.get("commit_id") or vcs.get("requested_revision")
        reference = f"{vcs.get('vcs', 'git')}+{url}"
        return f"{reference}@{commit}" if commit else reference
    if url.startswith(_FETCHABLE) and "dir_info" not in origin:
        digest = (origin.get("archive_info") or {}).get("hash")
        return f"{url}#{digest}" if digest and "#" not in url else url
    raise SupervisorError(
        f"location {location!r}: {name} {dist.version} was installed from {url or 'a local path'},"
        " which an image build elsewhere cannot reach; publish it to an index (or a URL) and"
        " require it from there"
    )


def lock_text(pins: list[Pin], location: str, env_name: str, built_by: str) -> str:
    """The lock file of LOCATION: a header saying where it came from, then one pin a line."""
    header = [
        f"# Location {location!r}: exactly the distributions of its environment {env_name},",
        f"# built by {built_by}; the image installs them with `uv pip sync`.",
        "# The child runtime (the package `supervisor`) is copied in as files, not listed.",
    ]
    return "\n".join([*header, *(pin.line for pin in pins)]) + "\n"


def read_lock(path: Path) -> list[str]:
    """The requirement lines of the lock file at PATH (comments and blank lines left out)."""
    lines = (line.strip() for line in path.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("#")]
