"""Values for Dagster's Helm chart (`dagster/dagster`): one user deployment per Dagster
location, for teams that run Dagster's own webserver and daemon in the cluster.

The file sets the chart's `dagster-user-deployments` block (the `dagster-user-deployments`
subchart's values, nested as the umbrella chart takes them): per location its name (the
DNS-1123 label, which Dagster's UI shows as the location's name), image, the
`dagsterApiGrpcArgs` the chart appends to `dagster api grpc -h 0.0.0.0 -p PORT`, the port,
`env:` and the memory limit. The chart makes its own Deployment and Service for each: use
these values or the Deployments of `export kubernetes` for a Dagster location, not both.
"""

from __future__ import annotations

from typing import Any

from supervisor.export.kubernetes import memory_quantity, to_yaml
from supervisor.export.serve import PORT, dagster_chart_args
from supervisor.workspace import LocationSpec, WorkspaceSpec

VALUES_FILE = "dagster-values.yaml"
PULL_POLICIES = ("Always", "IfNotPresent", "Never")  # the chart's schema allows these


def user_deployment(
    workspace: WorkspaceSpec, location: LocationSpec, label: str, repository: str, tag: str
) -> dict[str, Any]:
    """One entry of the chart's `deployments` list."""
    entry: dict[str, Any] = {
        "name": label,
        "image": {"repository": repository, "tag": tag, "pullPolicy": "IfNotPresent"},
        "dagsterApiGrpcArgs": dagster_chart_args(workspace, location),
        "port": PORT,
        # Runs launched from this location get its env and resources too.
        "includeConfigInLaunchedRuns": {"enabled": True},
    }
    if location.env:
        entry["env"] = [{"name": key, "value": value} for key, value in location.env]
    if location.memory_limit is not None:
        entry["resources"] = {"limits": {"memory": memory_quantity(location.memory_limit)}}
    return entry


def helm_values(deployments: list[dict[str, Any]]) -> dict[str, Any]:
    """The values file's content for DEPLOYMENTS."""
    return {
        "dagster-user-deployments": {
            "enabled": True,
            "enableSubchart": True,
            "deployments": deployments,
        }
    }


def helm_values_text(deployments: list[dict[str, Any]], namespace: str) -> str:
    """The values file, with how to use it."""
    header = [
        "# Values for Dagster's Helm chart, made by `supervisor export kubernetes`: one user",
        "# deployment per Dagster location. Install them with, for example:",
        "#   helm repo add dagster https://dagster-io.github.io/helm",
        f"#   helm upgrade --install dagster dagster/dagster -n {namespace} -f {VALUES_FILE}",
        "# The chart names each location after its deployment and makes its own Deployment",
        "# and Service: use these or the manifests/ of the same export, not both.",
    ]
    body = to_yaml(helm_values(deployments))
    return "\n".join(header) + "\n" + body
