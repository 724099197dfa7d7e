"""`supervisor export kubernetes`: manifests that Kubernetes' own schemas accept (offline),
restart notes, Dagster Helm chart values, and a host-side workspace that loads back with the
same names."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import click
import jsonschema
import kubernetes_validate
import pytest
import yaml

from supervisor.commands.export import export
from supervisor.export.names import MAX_LABEL, is_label, kubernetes_name, kubernetes_names
from supervisor.workspace import load_workspace
from tests.exporthelp import documents
from tests.helpers import EXAMPLES
from tests.uphelp import cli

K8S_VERSION = kubernetes_validate.latest_version()
pytestmark = pytest.mark.timeout(900)
# The part of Dagster's chart schema (helm/dagster/charts/dagster-user-deployments/
# values.schema.json, UserDeployment and Image) that our values fill in, transcribed.
USER_DEPLOYMENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["name", "image", "port"],
    "properties": {
        "name": {"type": "string"},
        "image": {
            "type": "object",
            "required": ["repository", "pullPolicy"],
            "properties": {
                "repository": {"type": "string"},
                "tag": {"anyOf": [{"type": "string"}, {"type": "integer"}, {"type": "null"}]},
                "pullPolicy": {"enum": ["Always", "IfNotPresent", "Never"]},
            },
        },
        "dagsterApiGrpcArgs": {"type": "array", "items": {"type": "string"}},
        "port": {"type": "integer"},
        "env": {"type": "array", "items": {"type": "object"}},
        "resources": {"type": "object"},
        "includeConfigInLaunchedRuns": {
            "type": "object",
            "required": ["enabled"],
            "properties": {"enabled": {"type": "boolean"}},
        },
    },
}


def test_every_manifest_validates_offline(k8s_out: Path) -> None:
    files = sorted((k8s_out / "manifests").glob("*.yaml"))
    assert [p.stem for p in files] == ["dag", "my-loc", "old"]
    for path in files:
        docs = documents(path)
        assert [d["kind"] for d in docs] == ["Deployment", "Service"], path
        for doc in docs:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
            assert is_label(doc["metadata"]["name"])
            assert doc["metadata"]["namespace"] == "data"


def test_the_deployment_carries_probes_limits_env_and_restart_notes(k8s_out: Path) -> None:
    path = k8s_out / "manifests" / "my-loc.yaml"
    deployment, service = documents(path)
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert pod["restartPolicy"] == "Always"
    assert container["ports"] == [{"name": "grpc", "containerPort": 4000, "protocol": "TCP"}]
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert container[probe]["grpc"] == {"port": 4000}, probe
    assert container["livenessProbe"]["periodSeconds"] == 3
    assert container["livenessProbe"]["timeoutSeconds"] == 2
    assert container["livenessProbe"]["failureThreshold"] == 4
    assert container["startupProbe"]["failureThreshold"] * 3 >= 60
    assert container["resources"] == {"limits": {"memory": "512Mi"}}
    assert container["env"] == [{"name": "GREETING", "value": "hello"}]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert deployment["metadata"]["annotations"]["workspace-supervisor/location"] == "My_Loc"
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    assert service["spec"]["ports"][0]["targetPort"] == "grpc"
    comments = " ".join(line[2:] for line in path.read_text().splitlines() if line.startswith("# "))
    assert "restart.policy never: cannot be mapped" in comments
    assert "max_restarts 3" in comments
    assert "&id" not in path.read_text()  # no YAML anchors: each mapping written in full


def test_the_host_workspace_loads_with_the_same_names(k8s_out: Path, export_project: Path) -> None:
    exported = load_workspace(k8s_out / "workspace.yaml")
    original = load_workspace(export_project)
    assert [s.name for s in exported.locations] == [s.name for s in original.locations]
    hosts = {s.name: (s.kind, s.host, s.port) for s in exported.locations}
    assert hosts["My_Loc"] == ("grpc_server", "my-loc.data.svc.cluster.local", 4000)
    assert hosts["dag"] == ("grpc_server", "dag.data.svc.cluster.local", 4000)
    assert hosts["remote"] == ("grpc_server", "example.com", 4500)


def test_a_dagster_location_gets_helm_values(k8s_out: Path) -> None:
    values = yaml.safe_load((k8s_out / "dagster-values.yaml").read_text())
    block = values["dagster-user-deployments"]
    assert block["enabled"] is True
    (entry,) = block["deployments"]  # only the Dagster location
    jsonschema.validate(entry, USER_DEPLOYMENT_SCHEMA)
    assert entry["name"] == "dag"
    assert entry["image"]["repository"] == "registry.example.com/team/dag"
    assert entry["port"] == 4000
    assert entry["dagsterApiGrpcArgs"][:4] == [
        "--module-name",
        "dag_code",
        "--working-directory",
        "/app",
    ]
    assert entry["resources"] == {"limits": {"memory": "1Gi"}}
    deployment = documents(k8s_out / "manifests" / "dag.yaml")[0]
    image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == f"{entry['image']['repository']}:{entry['image']['tag']}"


def test_without_output_the_manifests_go_to_stdout(export_project: Path) -> None:
    done = cli("export", "kubernetes", "-w", str(export_project), "old")
    assert done.returncode == 0, done.stderr
    docs = [d for d in yaml.safe_load_all(done.stdout) if d]
    assert [d["kind"] for d in docs] == ["Deployment", "Service"]
    assert "only with -o DIR" in done.stderr


def test_names_that_would_collide_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "workspace.yaml"
    path.write_text(
        textwrap.dedent(f"""
        load_from:
          - python_file: {{relative_path: {EXAMPLES / "empty_location.py"}, location_name: a_b}}
          - python_file: {{relative_path: {EXAMPLES / "empty_location.py"}, location_name: A-B}}
        """)
    )
    done = cli("export", "kubernetes", "-w", str(path), "-o", str(tmp_path / "o"))
    assert done.returncode == 2, done.stderr
    assert "'a_b', 'A-B' would all be named 'a-b'" in done.stderr
    assert "Traceback" not in done.stderr


def test_kubernetes_names_are_dns_labels() -> None:
    long = "x" * 100
    cases = ["My Location", "9lives", "__", "ok-name", long, long + "y", "é_ü"]
    mapping = kubernetes_names(cases)
    assert mapping["My Location"] == "my-location"
    assert mapping["9lives"] == "loc-9lives"
    assert mapping["ok-name"] == "ok-name"
    assert all(is_label(label) for label in mapping.values())
    assert len(set(mapping.values())) == len(cases)
    assert len(kubernetes_name(long)) == MAX_LABEL


@pytest.mark.parametrize("command", ["docker", "kubernetes"])
def test_an_unknown_location_is_a_usage_error(
    export_project: Path, tmp_path: Path, command: str
) -> None:
    done = cli("export", command, "-w", str(export_project), "nope", "-o", str(tmp_path / "o"))
    assert done.returncode == 2, done.stderr
    assert "unknown location 'nope'" in done.stderr
    assert "known: My_Loc, old, dag, remote" in done.stderr
    assert "Traceback" not in done.stderr


def test_every_command_and_option_has_help() -> None:
    assert export.help and export.help.startswith(
        "Export locations as Docker images and Kubernetes manifests, for a cluster."
    )
    assert isinstance(export, click.Group)
    for name, command in export.commands.items():
        assert command.help, name
        for param in command.params:
            if isinstance(param, click.Option):
                assert param.help, f"{name} {param.opts}"
