"""`export kubernetes` as a whole: what it writes for a selection of locations, and where.

DIR/manifests/<label>.yaml  the Deployment and Service of each location (`kubectl apply -f
                            DIR/manifests`); the only files there, so that nothing else is
                            applied (an earlier export's files of locations no longer
                            exported are removed)
DIR/workspace.yaml          the host side: a grpc_server entry per location (hostside.py)
DIR/dagster-values.yaml     Dagster's Helm chart values, when a Dagster location is exported
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from supervisor.export.code import collect_code, mark_output
from supervisor.export.helm import VALUES_FILE, helm_values_text, user_deployment
from supervisor.export.hostside import (
    WORKSPACE_FILE,
    host_workspace_text,
    kept_entry,
    served_entry,
)
from supervisor.export.images import image_tag, repository
from supervisor.export.kubernetes import MARK, manifest_text
from supervisor.export.selection import Selection
from supervisor.workspace import WorkspaceSpec

MANIFESTS_DIR = "manifests"


@dataclass(frozen=True)
class ClusterExport:
    """Everything `export kubernetes` writes, as text, before it is written."""

    manifests: dict[str, str]  # Kubernetes name -> its Deployment and Service
    images: dict[str, str]  # location name -> its image reference
    host_workspace: str
    helm_values: str | None  # None when no Dagster location is exported


def plan_cluster(
    workspace: WorkspaceSpec,
    selection: Selection,
    namespace: str,
    prefix: str | None = None,
    tag: str | None = None,
) -> ClusterExport:
    """The manifests, host workspace and Helm values of SELECTION's locations."""
    manifests: dict[str, str] = {}
    images: dict[str, str] = {}
    deployments = []
    entries = []
    for location in selection.exported:
        label = selection.labels[location.name]
        location_tag = tag or image_tag(workspace, location, collect_code(workspace, location))
        image = f"{repository(prefix, label)}:{location_tag}"
        images[location.name] = image
        manifests[label] = manifest_text(location, label, namespace, image)
        entries.append(served_entry(location, label, namespace))
        if location.effective_runtime == "dagster":
            deployments.append(
                user_deployment(workspace, location, label, repository(prefix, label), location_tag)
            )
    entries += [kept_entry(location) for location in selection.kept]
    helm = helm_values_text(deployments, namespace) if deployments else None
    return ClusterExport(manifests, images, host_workspace_text(entries, str(workspace.path)), helm)


def write_cluster(export: ClusterExport, out: Path) -> list[Path]:
    """Write EXPORT below OUT; the paths written."""
    mark_output(out)
    folder = out / MANIFESTS_DIR
    folder.mkdir(exist_ok=True)
    written = []
    for label, text in export.manifests.items():
        path = folder / f"{label}.yaml"
        path.write_text(text)
        written.append(path)
    for stale in sorted(folder.glob("*.yaml")):
        if stale not in written and stale.read_text(errors="replace").startswith(MARK):
            stale.unlink()
    path = out / WORKSPACE_FILE
    path.write_text(export.host_workspace)
    written.append(path)
    values = out / VALUES_FILE
    if export.helm_values is not None:
        values.write_text(export.helm_values)
        written.append(values)
    elif values.is_file():
        values.unlink()  # an earlier export's, for Dagster locations no longer exported
    return written


def manifests_stream(export: ClusterExport) -> str:
    """Every manifest as one YAML stream, for `kubectl apply -f -`."""
    return "---\n".join(export.manifests.values())
