"""Parity with Dagster itself: the same workspace file, read by Dagster's own loader (in a
real environment with dagster) and by ours, names the same locations with the same targets,
attributes, folders, interpreters, sockets, TLS and metadata; and both refuse the same files.

Differences kept on purpose are listed in ON_PURPOSE with the reason.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import pytest

from supervisor.errors import WorkspaceError
from supervisor.workspace import LocationSpec, load_workspace, workspace_from_targets

FIXTURE = Path(__file__).parent / "fixtures" / "dagster_origins.py"

# name -> workspace file text; cases with several files are named "a+b" below.
CORPUS: dict[str, str] = {
    "terse_kinds": """
        load_from:
          - python_file: repo.py
          - python_module: pkg.defs
          - python_package: pkg
          - autoload_defs_module: pkg.auto
    """,
    "dict_kinds": """
        load_from:
          - python_file: {relative_path: sub/repo.py}
          - python_module: {module_name: pkg.defs}
          - python_package: {package_name: pkg}
          - autoload_defs_module: {module_name: pkg.auto}
    """,
    "one_file_two_attributes": """
        load_from:
          - python_file: {relative_path: repo.py, attribute: defs}
          - python_file: {relative_path: repo.py, attribute: other_defs}
    """,
    "file_beside_module": """
        load_from:
          - python_file: a.py
          - python_module: a
    """,
    "module_attributes": """
        load_from:
          - python_module: {module_name: pkg.mod, attribute: defs}
          - python_package: {package_name: pkg, attribute: defs}
    """,
    "named": """
        load_from:
          - python_file: {relative_path: repo.py, location_name: files}
          - python_module: {module_name: pkg, location_name: modules}
          - grpc_server: {port: 4000, location_name: remote}
    """,
    "empty_location_name": """
        load_from:
          - python_module: {module_name: pkg, location_name: ""}
    """,
    "working_directories": """
        load_from:
          - python_file: {relative_path: repo.py, working_directory: src}
          - python_file: {relative_path: ../up.py, working_directory: /opt/code}
          - python_module: {module_name: a, working_directory: src}
          - python_module: {module_name: b, working_directory: /opt/code}
          - python_package: {package_name: c, working_directory: ../lib}
          - autoload_defs_module: {module_name: d, working_directory: src}
    """,
    "absolute_file": """
        load_from:
          - python_file: /opt/code/repo.py
    """,
    "executable_paths": """
        load_from:
          - python_module: {module_name: a, executable_path: /usr/bin/python3}
          - python_module: {module_name: b, executable_path: venv/bin/python}
          - python_module: {module_name: c, executable_path: "~/venvs/c/bin/python"}
          - python_module: {module_name: d, executable_path: python3}
          - python_file: {relative_path: e.py, executable_path: no-such-python-here}
    """,
    "grpc_servers": """
        load_from:
          - grpc_server: {port: 4000}
          - grpc_server: {host: 10.0.0.5, port: 4001}
          - grpc_server: {socket: /tmp/code.sock}
          - grpc_server: {host: box, socket: rel.sock}
          - grpc_server: {host: "", port: 4002}
    """,
    "grpc_ssl_metadata": """
        load_from:
          - grpc_server:
              host: code.example.com
              port: 443
              ssl: true
              additional_metadata: {team: data, tier: 1, owners: [ann, bo]}
          - grpc_server: {port: 4003, ssl: false}
    """,
    "env_values": """
        load_from:
          - python_module: {module_name: {env: PARITY_MODULE}, attribute: {env: PARITY_ATTR}}
          - python_file: {relative_path: {env: PARITY_FILE}}
          - grpc_server: {host: {env: PARITY_HOST}, port: {env: PARITY_PORT}}
    """,
    "mixed_order": """
        load_from:
          - grpc_server: {port: 4010}
          - python_file: z.py
          - python_module: m
    """,
    # What both refuse.
    "duplicate_names": """
        load_from:
          - python_module: a
          - python_module: a
    """,
    "duplicate_explicit_names": """
        load_from:
          - python_file: {relative_path: x.py, location_name: same}
          - python_module: {module_name: y, location_name: same}
    """,
    "two_kinds_in_one_entry": """
        load_from:
          - python_module: a
            python_file: b.py
    """,
    "unknown_key": """
        load_from:
          - python_module: {module_name: a, bogus: 1}
    """,
    "unknown_kind": """
        load_from:
          - python_script: a.py
    """,
    "attribute_on_autoload": """
        load_from:
          - autoload_defs_module: {module_name: a, attribute: defs}
    """,
    "port_and_socket": """
        load_from:
          - grpc_server: {port: 4000, socket: /tmp/s.sock}
    """,
    "neither_port_nor_socket": """
        load_from:
          - grpc_server: {host: localhost}
    """,
    "port_not_a_number": """
        load_from:
          - grpc_server: {port: four}
    """,
    "ssl_not_a_bool": """
        load_from:
          - grpc_server: {port: 4000, ssl: yes please}
    """,
    "metadata_not_a_mapping": """
        load_from:
          - grpc_server: {port: 4000, additional_metadata: [a]}
    """,
    "missing_target_key": """
        load_from:
          - python_module: {attribute: defs}
    """,
    "unset_env_var": """
        load_from:
          - python_module: {module_name: {env: PARITY_NOT_SET}}
    """,
    "load_from_null": """
        load_from:
    """,
    "no_load_from": """
        {}
    """,
    "load_from_not_a_list": """
        load_from: {python_module: a}
    """,
    "entry_not_a_mapping": """
        load_from:
          - a.py
    """,
    "empty_file": "",
    # Read by both, with a difference kept on purpose (see ON_PURPOSE).
    "bare_list": """
        - python_file: repo.py
    """,
    "empty_load_from": """
        load_from: []
    """,
    "bad_module_name": """
        load_from:
          - python_module: my-module
    """,
    "ssl_on_a_socket": """
        load_from:
          - grpc_server: {socket: /tmp/code.sock, ssl: true}
    """,
    "name_with_slash": """
        load_from:
          - python_module: {module_name: a, location_name: team/a}
    """,
    # Several -w files.
    "first": """
        load_from:
          - python_module: {module_name: a, location_name: shared}
          - python_file: one.py
    """,
    "second": """
        load_from:
          - python_file: {relative_path: two.py, location_name: shared}
          - python_module: extra
    """,
}
MULTI = (("first", "second"), ("second", "first"), ("first", "duplicate_names"))
ENV = {
    "PARITY_MODULE": "envpkg.defs",
    "PARITY_ATTR": "defs",
    "PARITY_FILE": "from_env.py",
    "PARITY_HOST": "envhost",
    "PARITY_PORT": "4444",
}
# Case -> why our reading differs from Dagster's, on purpose.
ON_PURPOSE = {
    "bare_list": "the bare list of entries is our shorter form; Dagster refuses it",
    "empty_load_from": "no locations: nothing to supervise (Dagster loads an empty workspace)",
    "bad_module_name": (
        "a module name is checked when the file is read; Dagster fails later, when its code"
        " server cannot import it"
    ),
    "ssl_on_a_socket": "TLS is for a host and port; on a local Unix socket it is refused",
    "name_with_slash": (
        "an explicit location_name with '/' or '..' is refused: names appear in commands,"
        " logs and file names (a derived name, such as a socket's, is kept as Dagster gives it)"
    ),
}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The corpus as files in ROOT/ws/, with ROOT/other/ as a second current folder."""
    root = tmp_path_factory.mktemp("parity")
    (root / "ws").mkdir()
    (root / "other").mkdir()
    for name, text in CORPUS.items():
        (root / "ws" / f"{name}.yaml").write_text(textwrap.dedent(text))
    return root


def cases() -> list[tuple[str, ...]]:
    return [(name,) for name in CORPUS] + list(MULTI)


def dagster_reads(dagster_python: str, files: list[list[str]], cwd: Path) -> list[Any]:
    result = subprocess.run(
        [dagster_python, str(FIXTURE), json.dumps(files)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **ENV},
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def resolved(path: str | None, base: Path) -> str | None:
    return None if path is None else os.path.normpath(os.path.join(base, path))


def executable(text: str | None, cwd: Path) -> str | None:
    if text is None:
        return None
    if "/" not in text:
        return shutil.which(text) or text
    return resolved(text, cwd)


def from_dagster(location: dict[str, Any], cwd: Path) -> dict[str, Any]:
    """Dagster's reading of one location, with its paths resolved as its processes resolve
    them: relative to the current folder."""
    if location["kind"] == "grpc_server":
        return {
            "name": location["name"],
            "kind": "grpc_server",
            "host": location["host"],
            "port": location["port"],
            "socket": resolved(location["socket"], cwd),
            "ssl": location["ssl"],
            "metadata": {
                k: v if isinstance(v, str) else json.dumps(v)
                for k, v in location["additional_metadata"].items()
            },
        }
    is_file = location["kind"] == "python_file"
    return {
        "name": location["name"],
        "kind": location["kind"],
        "target": resolved(location["target"], cwd) if is_file else location["target"],
        "attribute": location["attribute"],
        "working_directory": resolved(location["working_directory"] or str(cwd), cwd),
        "executable_path": executable(location["executable_path"], cwd),
    }


def from_ours(spec: LocationSpec) -> dict[str, Any]:
    if spec.kind == "grpc_server":
        return {
            "name": spec.name,
            "kind": "grpc_server",
            "host": spec.host,
            "port": spec.port,
            "socket": spec.socket,
            "ssl": spec.ssl,
            "metadata": dict(spec.metadata),
        }
    return {
        "name": spec.name,
        "kind": spec.kind,
        "target": str(spec.python_file) if spec.python_file else spec.module_name,
        "attribute": spec.attribute,
        "working_directory": str(spec.working_directory),
        "executable_path": None if spec.executable_path is None else str(spec.executable_path),
    }


def our_reading(paths: list[str], cwd: Path) -> dict[str, Any]:
    try:
        workspace = load_workspace(paths, cwd=cwd)
    except WorkspaceError as exc:
        return {"error": str(exc)}
    return {"locations": [from_ours(spec) for spec in workspace.locations]}


def dagster_reading(result: dict[str, Any], cwd: Path) -> dict[str, Any]:
    if "error" in result:
        return result
    return {"locations": [from_dagster(location, cwd) for location in result["locations"]]}


@pytest.mark.parametrize("where", ["ws", "other"])
def test_workspace_files_mean_what_they_mean_to_dagster(
    dagster_python: str, corpus: Path, where: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every case of the corpus, read from the workspace's folder and from another one."""
    cwd = corpus / where
    all_cases = cases()
    files = [[str(corpus / "ws" / f"{name}.yaml") for name in case] for case in all_cases]
    theirs = dagster_reads(dagster_python, files, cwd)
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("PARITY_NOT_SET", raising=False)
    mismatches = []
    matched = 0
    for case, paths, their_result in zip(all_cases, files, theirs, strict=True):
        label = "+".join(case)
        ours = our_reading(paths, cwd)
        dagster = dagster_reading(their_result, cwd)
        if label in ON_PURPOSE:
            assert ("error" in ours) != ("error" in dagster), (
                f"{label}: listed as a difference on purpose, but both read it alike:"
                f"\nours: {ours}\ndagster: {dagster}"
            )
            continue
        if "error" in ours or "error" in dagster:
            if ("error" in ours) != ("error" in dagster):
                mismatches.append(f"{label}: only one refuses\nours: {ours}\ndagster: {dagster}")
            else:
                matched += 1
            continue
        if ours != dagster:
            mismatches.append(f"{label}:\nours:    {ours}\ndagster: {dagster}")
        else:
            matched += 1
    assert not mismatches, "\n\n".join(mismatches)
    assert matched == len(all_cases) - len(ON_PURPOSE)


def test_on_purpose_differences_are_in_the_corpus() -> None:
    assert set(ON_PURPOSE) <= set(CORPUS)


# The -m/-f/-a/-d flags of `up`, against `dagster dev`'s (the same WorkspaceOpts).
FLAG_CASES: list[dict[str, Any]] = [
    {"module_name": ["pkg.defs"]},
    {"module_name": ["pkg.defs"], "attribute": "defs"},
    {"module_name": ["a", "b"]},
    {"module_name": ["a"], "working_directory": "src"},
    {"python_file": ["repo.py"]},
    {"python_file": ["sub/repo.py"], "attribute": "defs"},
    {"python_file": ["a.py", "b.py"], "working_directory": "/opt/code"},
    {"package_name": ["pkg"]},
    {"package_name": ["pkg"], "attribute": "defs"},
    # Refused by both: an attribute with several targets.
    {"module_name": ["a", "b"], "attribute": "defs"},
    {"python_file": ["a.py", "b.py"], "attribute": "defs"},
]


def dagster_flags(dagster_python: str, cases: list[dict[str, Any]], cwd: Path) -> list[Any]:
    result = subprocess.run(
        [dagster_python, str(FIXTURE), "--flags", json.dumps(cases)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def our_flags(case: dict[str, Any], cwd: Path) -> dict[str, Any]:
    try:
        workspace = workspace_from_targets(
            modules=case.get("module_name", ()),
            files=case.get("python_file", ()),
            python=None,
            cwd=cwd,
            packages=case.get("package_name", ()),
            attribute=case.get("attribute"),
            working_directory=case.get("working_directory"),
        )
    except WorkspaceError as exc:
        return {"error": str(exc)}
    return {"locations": [from_ours(spec) for spec in workspace.locations]}


def test_up_flags_make_the_locations_dagster_dev_makes(dagster_python: str, corpus: Path) -> None:
    cwd = corpus / "other"
    theirs = dagster_flags(dagster_python, FLAG_CASES, cwd)
    mismatches = []
    for case, their_result in zip(FLAG_CASES, theirs, strict=True):
        ours = our_flags(case, cwd)
        dagster = dagster_reading(their_result, cwd)
        if ("error" in ours) != ("error" in dagster) or ("error" not in ours and ours != dagster):
            mismatches.append(f"{case}:\nours:    {ours}\ndagster: {dagster}")
    assert not mismatches, "\n\n".join(mismatches)
