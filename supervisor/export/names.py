"""Kubernetes names for code locations: DNS-1123 labels, one per location, never shared.

A location may be called anything a workspace allows (`My Location`, `iris_v2`); the
objects that serve it in a cluster must be named by RFC 1035/1123 labels (lowercase letters,
digits and `-`, starting with a letter, at most 63 characters: the strictest of the
rules, a Service's). The original name stays in an annotation and in the host-side
workspace, so nothing is lost; two locations that would get the same label are refused.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable

from supervisor.errors import UsageError

MAX_LABEL = 63  # a DNS label; a Service name is one
_LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
_RFC1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")  # a namespace may start with a digit
_NOT_ALLOWED = re.compile(r"[^a-z0-9]+")
# A name cut short keeps a hash of the whole, so that two long names stay apart.
_HASH_DIGITS = 8


def is_label(name: str) -> bool:
    """True when NAME may name a Deployment and a Service as it is."""
    return len(name) <= MAX_LABEL and _LABEL.fullmatch(name) is not None


def kubernetes_name(location: str) -> str:
    """LOCATION as a DNS-1123 label: lowercase, runs of other characters as one `-`, a
    letter first, cut to 63 characters with a hash of the original when too long (and a
    hash alone when no letter or digit is left)."""
    if is_label(location):
        return location
    digest = hashlib.sha256(location.encode()).hexdigest()[:_HASH_DIGITS]
    label = _NOT_ALLOWED.sub("-", location.lower()).strip("-")
    if not label:  # nothing of it is left (`__`, `é`): a hash keeps such names apart
        return f"loc-{digest}"
    if not label[0].isalpha():
        label = f"loc-{label}"
    if len(label) > MAX_LABEL:
        label = f"{label[: MAX_LABEL - _HASH_DIGITS - 1].rstrip('-')}-{digest}"
    return label


def kubernetes_names(locations: Iterable[str]) -> dict[str, str]:
    """Each location name mapped to its label; UsageError when two would share one."""
    mapping: dict[str, str] = {}
    owners: dict[str, list[str]] = {}
    for location in locations:
        label = kubernetes_name(location)
        mapping[location] = label
        owners.setdefault(label, []).append(location)
    clashes = {label: names for label, names in owners.items() if len(names) > 1}
    if clashes:
        said = "; ".join(
            f"{', '.join(repr(n) for n in names)} would all be named {label!r}"
            for label, names in clashes.items()
        )
        raise UsageError(
            f"location names that differ only in case or punctuation cannot share a cluster:"
            f" {said}. Kubernetes names allow lowercase letters, digits and '-' only; rename"
            " all but one of them (location_name:), or export them to different namespaces"
        )
    return mapping


def service_host(label: str, namespace: str) -> str:
    """The cluster DNS name of the Service LABEL in NAMESPACE."""
    return f"{label}.{namespace}.svc.cluster.local"


def check_namespace(namespace: str) -> str:
    """NAMESPACE, if it is a DNS-1123 label; UsageError naming what is allowed otherwise."""
    if len(namespace) > MAX_LABEL or _RFC1123_LABEL.fullmatch(namespace) is None:
        raise UsageError(
            f"--namespace: expected a DNS-1123 label (lowercase letters, digits and '-',"
            f" at most {MAX_LABEL} characters, no '-' first or last); got {namespace!r}"
        )
    return namespace
