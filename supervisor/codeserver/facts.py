"""Facts about a location's environment, gathered by its own interpreter (for `check`)."""

from __future__ import annotations

import os
import platform
import sys
import sysconfig

import supervisor
from supervisor._proto import codeserver_pb2 as pb

ENVIRON_KEYS = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")


def markers() -> dict:
    """The PEP 508 environment markers of this interpreter."""
    info = sys.implementation
    version = f"{info.version.major}.{info.version.minor}.{info.version.micro}"
    if info.version.releaselevel != "final":
        version += info.version.releaselevel[0] + str(info.version.serial)
    return {
        "implementation_name": info.name,
        "implementation_version": version,
        "os_name": os.name,
        "platform_machine": platform.machine(),
        "platform_release": platform.release(),
        "platform_system": platform.system(),
        "platform_version": platform.version(),
        "python_full_version": platform.python_version(),
        "platform_python_implementation": platform.python_implementation(),
        "python_version": ".".join(platform.python_version_tuple()[:2]),
        "sys_platform": sys.platform,
    }


def inspect_environment() -> pb.InspectReply:
    """Describe this interpreter, its sys.path, and every distribution it can import."""
    from importlib import metadata  # kept off the start path

    reply = pb.InspectReply(
        python_version=platform.python_version(),
        implementation=sys.implementation.name,
        executable=sys.executable,
        prefix=sys.prefix,
        base_prefix=getattr(sys, "base_prefix", sys.prefix),
        runtime_path=os.path.dirname(os.path.abspath(supervisor.__file__)),
    )
    paths = sysconfig.get_paths()
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        reply.paths[key] = paths.get(key, "")
    reply.sys_path.extend(sys.path)
    for key in ENVIRON_KEYS:
        if key in os.environ:
            reply.environ[key] = os.environ[key]
    for key, value in markers().items():
        reply.markers[key] = value
    seen = set()
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if not name or name.lower() in seen:
            continue
        seen.add(name.lower())
        reply.distributions.add(
            name=name,
            version=dist.version,
            location=str(dist.locate_file("")),
            requires=list(dist.requires or []),
        )
    return reply
