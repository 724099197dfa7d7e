"""Which locations an export makes images and objects for, and which it leaves as they are.

A location the supervisor builds an environment for is exported. A `grpc_server` entry
runs elsewhere already: there is nothing to build, so it is skipped with a message (and
kept as it is in the host-side workspace). An `executable_path` location runs on an
environment the user made, which the supervisor neither built nor can pin: skipped, saying
what to do instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from supervisor.envs import needs_env
from supervisor.export.names import kubernetes_names
from supervisor.workspace import LocationSpec, WorkspaceSpec


@dataclass(frozen=True)
class Selection:
    """The locations of one export."""

    exported: tuple[LocationSpec, ...]
    kept: tuple[LocationSpec, ...]  # grpc_server entries: served elsewhere already
    skipped: tuple[tuple[str, str], ...]  # (location, why) of those left out
    labels: dict[str, str]  # location name -> its Kubernetes name, for the exported ones

    def messages(self) -> list[str]:
        """One line per location left out, for stderr."""
        return [f"skipping location {name!r}: {why}" for name, why in self.skipped]

    def renamed(self) -> list[str]:
        """One line per exported location whose Kubernetes name differs from its own."""
        return [
            f"location {name!r} is named {label!r} in the cluster"
            for name, label in self.labels.items()
            if name != label
        ]


def select(workspace: WorkspaceSpec, names: Sequence[str] = ()) -> Selection:
    """The locations NAMES (default: all; each one the workspace has) split into exported,
    kept and skipped; UsageError for two that would share a Kubernetes name."""
    unique = list(dict.fromkeys(names))
    chosen = [workspace.location(n) for n in unique] if unique else list(workspace.locations)
    exported: list[LocationSpec] = []
    kept: list[LocationSpec] = []
    skipped: list[tuple[str, str]] = []
    for location in chosen:
        if location.is_remote:
            kept.append(location)
            skipped.append(
                (location.name, "a grpc_server entry runs elsewhere already; nothing to build")
            )
        elif not needs_env(location):
            skipped.append(
                (
                    location.name,
                    f"it runs on executable_path {location.executable_path}, an environment"
                    " the supervisor did not build and cannot pin; give it requirements"
                    " instead to export it",
                )
            )
        else:
            exported.append(location)
    labels = kubernetes_names(location.name for location in exported)
    return Selection(tuple(exported), tuple(kept), tuple(skipped), labels)
