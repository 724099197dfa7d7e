"""The child runtime: only child-side files, importable on 3.8 with stdlib, grpc and protobuf."""

from __future__ import annotations

import subprocess
from pathlib import Path

from supervisor.runtime import install_runtime, runtime_files, runtime_hash

PROBE = """
import os, sys, sysconfig
import supervisor, supervisor.codeserver.server, supervisor.codeserver.loader
from supervisor import Definitions, asset, ScheduleDefinition, load_assets_from_modules
stdlib = os.path.realpath(sysconfig.get_paths()["stdlib"])
site = os.path.realpath(sysconfig.get_paths()["purelib"])
print(supervisor.__file__)
for module in list(sys.modules.values()):
    path = os.path.realpath(getattr(module, "__file__", None) or stdlib)
    if not path.startswith(stdlib + os.sep) and path != stdlib:
        rel = os.path.relpath(path, site)
        print(rel.split(os.sep)[0] if not rel.startswith("..") else path)
"""


def test_runtime_holds_only_the_child_side() -> None:
    names = {str(p) for p in runtime_files()}
    assert "__init__.py" in names
    assert "codeserver/server.py" in names
    assert "_proto/codeserver_pb2.py" in names
    for host_module in ("cli.py", "client.py", "launch.py", "runtime.py", "errors.py"):
        assert host_module not in names


def test_install_replaces_an_older_copy(tmp_path: Path) -> None:
    (tmp_path / "supervisor").mkdir()
    (tmp_path / "supervisor" / "stale.py").write_text("")
    target = install_runtime(tmp_path)
    assert not (target / "stale.py").exists()
    assert (target / "RUNTIME_HASH").read_text().strip() == runtime_hash()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["supervisor"]


def test_child_side_imports_only_stdlib_grpc_protobuf(
    child_envs: dict[str, str], tmp_path: Path
) -> None:
    for minor in ("3.8", "3.13"):
        python = child_envs[minor]
        out = subprocess.run(
            [python, "-W", "error", "-c", PROBE],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=tmp_path,
        )
        assert out.returncode == 0, out.stderr
        location, *outside_stdlib = out.stdout.split()
        assert Path(location).is_relative_to(Path(python).parent.parent), location
        # uv's venvs add _virtualenv.py, a .pth hook, and newer grpcio imports its own
        # dependency typing_extensions; everything else is ours, grpc or protobuf.
        allowed = {"supervisor", "grpc", "google", "_virtualenv.py", "typing_extensions.py"}
        assert set(outside_stdlib) <= allowed, sorted(set(outside_stdlib))
