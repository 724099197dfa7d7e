"""Regenerate the committed stubs in supervisor/_proto*/ from the .proto sources.

supervisor/_proto/ holds the child side's stubs (code server, health), which run
in every location's environment; supervisor/_proto_host/ the host-only control
service, kept apart so that it is not part of the child runtime.

The generator is pinned: grpcio-tools 1.62.3 writes protobuf 4.25 gencode, which
imports cleanly on every protobuf runtime that Python 3.8 to 3.13 get. Newer
generators embed a runtime-version check that fails on the protobuf of Python 3.8.
grpcio-tools 1.62.3 needs protobuf < 5 and has no wheel for 3.13, so it runs in a
throwaway environment made by uv on a 3.10-3.12 interpreter, never in the host's.

Usage: python proto/generate.py [--out DIR] [--python PATH]
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

GRPCIO_TOOLS = "grpcio-tools==1.62.3"
PROTO_ROOT = Path(__file__).resolve().parent
REPO_ROOT = PROTO_ROOT.parent
SUITABLE = ("3.12", "3.11", "3.10")


def find_generator_python() -> str:
    """Return an interpreter that grpcio-tools 1.62.3 has wheels for."""
    if os.environ.get("SUPERVISOR_PROTOC_PYTHON"):
        return os.environ["SUPERVISOR_PROTOC_PYTHON"]
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    for minor in SUITABLE:
        found = sorted(glob.glob(str(pyenv_root / "versions" / f"{minor}.*" / "bin" / "python")))
        if found:
            return found[-1]
    if f"{sys.version_info[0]}.{sys.version_info[1]}" in SUITABLE:
        return sys.executable
    for minor in SUITABLE:
        path = shutil.which(f"python{minor}")
        if path:
            return path
    raise SystemExit(f"generate.py: no Python {', '.join(SUITABLE)} found for {GRPCIO_TOOLS}")


def uv_command() -> list[str]:
    """Return the command that runs uv (the one beside this interpreter first)."""
    beside = Path(sys.executable).parent / "uv"
    if beside.exists():
        return [str(beside)]
    found = shutil.which("uv")
    if found:
        return [found]
    return [sys.executable, "-m", "uv"]


def generate(out: Path, python: str) -> list[Path]:
    """Write the stubs for every .proto under proto/ into OUT; return the files written."""
    sources = sorted(PROTO_ROOT.glob("supervisor/_proto*/*.proto"))
    with tempfile.TemporaryDirectory(prefix="supervisor-protoc-") as tmp:
        venv = Path(tmp) / "venv"
        uv = uv_command()
        subprocess.run([*uv, "venv", "--quiet", "--python", python, str(venv)], check=True)
        venv_python = str(venv / "bin" / "python")
        subprocess.run(
            [*uv, "pip", "install", "--quiet", "--python", venv_python, GRPCIO_TOOLS], check=True
        )
        for source in sources:
            (out / source.parent.relative_to(PROTO_ROOT)).mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                venv_python,
                "-m",
                "grpc_tools.protoc",
                f"-I{PROTO_ROOT}",
                f"--python_out={out}",
                f"--grpc_python_out={out}",
                *(str(s.relative_to(PROTO_ROOT)) for s in sources),
            ],
            check=True,
            cwd=PROTO_ROOT,
        )
    return sorted((out / "supervisor").glob("_proto*/*_pb2*.py"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO_ROOT, help="root to write into")
    parser.add_argument("--python", help="interpreter to run grpcio-tools on")
    args = parser.parse_args()
    for path in generate(args.out, args.python or find_generator_python()):
        print(path)


if __name__ == "__main__":
    main()
