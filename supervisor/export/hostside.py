"""The host side of an export: a workspace of `grpc_server` entries, one per location that
now runs in the cluster, for `supervisor up` (or Dagster) on another machine.

Each entry keeps its location's name and points at its Service's cluster DNS name
(`<label>.<namespace>.svc.cluster.local`), which resolves inside the cluster (or on a
machine that uses its DNS); from elsewhere, `kubectl port-forward service/<label> PORT`
and a host of `localhost` reach it too. `grpc_server` entries of the original workspace
run elsewhere already and are kept as they are.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from supervisor.export.kubernetes import to_yaml
from supervisor.export.names import service_host
from supervisor.export.serve import PORT
from supervisor.workspace import LocationSpec

WORKSPACE_FILE = "workspace.yaml"


def served_entry(location: LocationSpec, label: str, namespace: str) -> dict[str, Any]:
    """The entry of a location served by the Service LABEL in NAMESPACE."""
    return {
        "grpc_server": {
            "host": service_host(label, namespace),
            "port": PORT,
            "location_name": location.name,
        }
    }


def kept_entry(location: LocationSpec) -> dict[str, Any]:
    """A grpc_server entry of the original workspace, as it was."""
    entry: dict[str, Any] = {}
    if location.host is not None:
        entry["host"] = location.host
    if location.port is not None:
        entry["port"] = location.port
    if location.socket is not None:
        entry["socket"] = location.socket
    entry["location_name"] = location.name
    if location.ssl:
        entry["ssl"] = True
    if location.metadata:
        entry["additional_metadata"] = dict(location.metadata)
    return {"grpc_server": entry}


def host_workspace_text(entries: Iterable[dict[str, Any]], source: str) -> str:
    """The workspace file of ENTRIES, with where it came from."""
    header = [
        f"# The locations of {source} as they run in the cluster, made by",
        "# `supervisor export kubernetes`: run `supervisor up -w THIS_FILE` where the",
        "# Services' names resolve (or port-forward them and use localhost).",
    ]
    body = to_yaml({"load_from": list(entries)})
    return "\n".join(header) + "\n" + body
