"""The name and tag of a location's image, the same in `export docker` and `export kubernetes`.

The tag is a hash of what goes into the image, computed from the workspace and the code
alone (no environment is built for it, no interpreter probed): the Python the location asks
for, its requirements, the child runtime's hash, the server's command line and every file
of its code. Equal inputs give equal tags on any machine, a change to any of them a new
tag, so that a Deployment never runs an image older than its manifest (and `IfNotPresent`
is a safe pull policy). `--tag` overrides it where a build system names images itself.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys

from supervisor.errors import UsageError
from supervisor.export.code import CodeLayout
from supervisor.export.serve import server_command
from supervisor.runtime import runtime_hash
from supervisor.workspace import LocationSpec, WorkspaceSpec

TAG_VERSION = 1  # bumped when what an image holds changes for the same inputs
TAG_DIGITS = 16
# A registry host (with a port) and path, as Docker names repositories: lowercase parts.
_PART = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_PREFIX = re.compile(rf"(?:[a-zA-Z0-9.-]+(?::[0-9]+)?/)?{_PART}(?:/{_PART})*")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")


def image_tag(workspace: WorkspaceSpec, location: LocationSpec, code: CodeLayout) -> str:
    """The content tag of LOCATION's image (see the module's docstring)."""
    own = f"{sys.version_info[0]}.{sys.version_info[1]}"  # no `python:` means ours
    material = {
        "version": TAG_VERSION,
        "python": location.python or own,
        "requirements": list(location.requirements),
        "runtime": runtime_hash(),
        "kind": location.effective_runtime,
        "command": server_command(workspace, location),
        "code": code.digest(),
    }
    blob = json.dumps(material, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:TAG_DIGITS]


def check_prefix(prefix: str | None) -> str | None:
    """PREFIX without a trailing '/', if Docker can name repositories below it."""
    if prefix is None:
        return None
    trimmed = prefix.rstrip("/")
    if not _PREFIX.fullmatch(trimmed):
        raise UsageError(
            "--image-prefix: expected a registry and path such as registry.example.com/team"
            " (lowercase letters, digits and . _ - in each part; no tag);"
            f" got {prefix!r}"
        )
    return trimmed


def check_tag(tag: str | None) -> str | None:
    """TAG, if Docker accepts it as a tag."""
    if tag is not None and not _TAG.fullmatch(tag):
        raise UsageError(
            "--tag: expected up to 128 letters, digits and _ . - (not starting with . or -);"
            f" got {tag!r}"
        )
    return tag


def repository(prefix: str | None, label: str) -> str:
    """The image repository of the location named LABEL in Kubernetes."""
    return f"{prefix}/{label}" if prefix else label
