"""`export kubernetes`: a Deployment and a Service per location, as close to `up` as a
cluster allows.

What maps: the port (the image's), the health check (native gRPC probes on the standard
health service, with the location's `health:` interval, timeout and failures; a startup
probe within its `startup_timeout`), `memory_limit` (the container's memory limit), `env:`,
`drain_timeout` (the grace period after SIGTERM), and the restart policy as far as a
Deployment allows. What does not map is said in a comment above the Deployment: a
Deployment's pods only allow `restartPolicy: Always`, and the kubelet's restart backoff
(10 s doubling to 5 min, reset after 10 min of running) is its own.
"""

from __future__ import annotations

import math
import textwrap
from typing import Any

import yaml

from supervisor.export.serve import PORT, USER_ID, grace_seconds
from supervisor.workspace import LocationSpec

MARK = "# Made by `supervisor export kubernetes`"  # the first line of each manifest file
CONTAINER = "code-server"
PORT_NAME = "grpc"
MANAGED_BY = "workspace-supervisor"
ANNOTATION_PREFIX = "workspace-supervisor"
NOTE_WIDTH = 90
_QUANTITIES = (("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10))


def memory_quantity(num_bytes: int) -> str:
    """NUM_BYTES as a Kubernetes quantity: the largest binary unit that divides it."""
    for suffix, size in _QUANTITIES:
        if num_bytes % size == 0:
            return f"{num_bytes // size}{suffix}"
    return str(num_bytes)


def restart_notes(location: LocationSpec) -> list[str]:
    """What of the location's restart settings Kubernetes does, and what it cannot."""
    restart = location.restart
    said = [
        {
            "always": "restart.policy always: restartPolicy Always, the same.",
            "on-failure": "restart.policy on-failure: cannot be mapped exactly; a Deployment's"
            " pods allow only restartPolicy Always, so a server that exits 0 is restarted too.",
            "never": "restart.policy never: cannot be mapped; a Deployment's pods allow only"
            " restartPolicy Always, so a server that stops is started again. A server that must"
            " not come back needs a bare Pod with restartPolicy Never instead.",
        }[restart.policy]
    ]
    if restart.max_restarts is not None:
        said.append(
            f"restart.max_restarts {restart.max_restarts} within {restart.window:g}s: no"
            " counterpart; the kubelet restarts without limit (CrashLoopBackOff)."
        )
    said.append(
        f"restart.backoff_initial {restart.backoff_initial:g}s, backoff_max"
        f" {restart.backoff_max:g}s, stable_after {restart.stable_after:g}s: not mapped;"
        " the kubelet's backoff is 10s doubling to 5min, reset after 10min of running."
    )
    said.append(
        f"heartbeat_timeout {location.heartbeat_timeout:g}s: not used; in a cluster the"
        " liveness probe is what notices a server that stopped answering."
    )
    return said


class _Dumper(yaml.SafeDumper):
    """Writes every mapping out in full: no `&id001` anchors for values used twice."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def to_yaml(data: Any) -> str:
    """DATA as block YAML, keys in the order given, no anchors."""
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False)


def labels(label: str, runtime: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": label,
        "app.kubernetes.io/component": "code-location",
        "app.kubernetes.io/managed-by": MANAGED_BY,
        f"{ANNOTATION_PREFIX}/runtime": runtime,
    }


def selector(label: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": label, "app.kubernetes.io/component": "code-location"}


def _probes(location: LocationSpec) -> dict[str, dict[str, Any]]:
    health = location.health
    period = max(1, math.ceil(health.interval))
    timing = {
        "periodSeconds": period,
        "timeoutSeconds": max(1, math.ceil(health.timeout)),
        "failureThreshold": max(1, health.failures),
    }
    grpc = {"grpc": {"port": PORT}}  # the standard health service, its server-wide status
    startup = {
        **grpc,
        "periodSeconds": period,
        "timeoutSeconds": timing["timeoutSeconds"],
        "failureThreshold": max(1, math.ceil(location.startup_timeout / period)),
    }
    return {
        "startupProbe": startup,
        "readinessProbe": {**grpc, **timing},
        "livenessProbe": {**grpc, **timing},
    }


def deployment(location: LocationSpec, label: str, namespace: str, image: str) -> dict[str, Any]:
    """The Deployment that serves LOCATION from IMAGE."""
    runtime = location.effective_runtime
    container: dict[str, Any] = {
        "name": CONTAINER,
        "image": image,
        "imagePullPolicy": "IfNotPresent",  # the tag names the content: it never moves
        "ports": [{"name": PORT_NAME, "containerPort": PORT, "protocol": "TCP"}],
        **_probes(location),
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
        },
    }
    if location.env:
        container["env"] = [{"name": key, "value": value} for key, value in location.env]
    if location.memory_limit is not None:
        container["resources"] = {"limits": {"memory": memory_quantity(location.memory_limit)}}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": label,
            "namespace": namespace,
            "labels": labels(label, runtime),
            "annotations": {
                f"{ANNOTATION_PREFIX}/location": location.name,
                f"{ANNOTATION_PREFIX}/restart-policy": location.restart.policy,
            },
        },
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": selector(label)},
            # A new server is ready before the old one goes, as `up` restarts them.
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
            },
            "template": {
                "metadata": {"labels": labels(label, runtime)},
                "spec": {
                    "restartPolicy": "Always",
                    "terminationGracePeriodSeconds": grace_seconds(location),
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": USER_ID,
                        "runAsGroup": USER_ID,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [container],
                },
            },
        },
    }


def service(location: LocationSpec, label: str, namespace: str) -> dict[str, Any]:
    """The Service that gives LOCATION's server a stable name in the cluster."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": label,
            "namespace": namespace,
            "labels": labels(label, location.effective_runtime),
            "annotations": {f"{ANNOTATION_PREFIX}/location": location.name},
        },
        "spec": {
            "type": "ClusterIP",
            "selector": selector(label),
            "ports": [
                {
                    "name": PORT_NAME,
                    "port": PORT,
                    "targetPort": PORT_NAME,
                    "protocol": "TCP",
                    "appProtocol": "grpc",
                }
            ],
        },
    }


def manifest_text(location: LocationSpec, label: str, namespace: str, image: str) -> str:
    """LOCATION's Deployment and Service as one YAML file, with what does not map said."""
    notes = [f"Location {location.name!r}: its Deployment and Service ({label})."]
    notes += restart_notes(location)
    lines = [line for note in notes for line in textwrap.wrap(note, NOTE_WIDTH)]
    header = MARK + "\n" + "".join(f"# {line}\n" for line in lines)
    documents = [deployment(location, label, namespace, image), service(location, label, namespace)]
    body = "---\n".join(to_yaml(doc) for doc in documents)
    return header + body
