"""workspace.yaml -> specs: Dagster's format unchanged, our keys, and precise errors."""

from __future__ import annotations

import os
import stat
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from supervisor.errors import SupervisorError, WorkspaceError
from supervisor.workspace import (
    HealthSpec,
    LocationSpec,
    RestartSpec,
    WorkspaceSpec,
    check_paths,
    load_workspace,
    parse_workspace,
    workspace_from_targets,
)

Load = Callable[[str], WorkspaceSpec]
Fail = Callable[[str], list[str]]


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Work in TMP_PATH, so that messages name the file as the user would: workspace.yaml."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def load(folder: Path) -> Load:
    def load(text: str) -> WorkspaceSpec:
        (folder / "workspace.yaml").write_text(textwrap.dedent(text))
        return load_workspace("workspace.yaml")

    return load


@pytest.fixture
def fail(folder: Path) -> Fail:
    """Load TEXT, expect a WorkspaceError, return its problems."""

    def fail(text: str) -> list[str]:
        (folder / "workspace.yaml").write_text(textwrap.dedent(text))
        with pytest.raises(WorkspaceError) as caught:
            load_workspace("workspace.yaml")
        error = caught.value
        assert error.exit_code == 2
        if len(error.problems) == 1:
            assert str(error) == error.problems[0]
        else:
            lines = str(error).splitlines()
            assert lines == [f"workspace.yaml: {len(error.problems)} problems", *error.problems]
        return error.problems

    return fail


# Dagster's own format loads unchanged.


def test_seed_bare_list_form(load: Load, folder: Path) -> None:
    workspace = load("- python_module: my_dagster_code_location\n")
    assert workspace.path == folder / "workspace.yaml"
    assert workspace.root == folder
    assert workspace.state_dir == folder / ".supervisor"
    assert workspace.envs_dir == folder / "envs"
    (location,) = workspace.locations
    assert location == LocationSpec(
        name="my_dagster_code_location",
        kind="python_module",
        line=1,
        module_name="my_dagster_code_location",
        working_directory=folder,
    )
    assert not location.is_remote
    assert location.python is None
    assert location.health == HealthSpec()
    assert location.restart == RestartSpec()


def test_seed_two_modules_and_grpc_server(load: Load) -> None:
    workspace = load(
        """\
        - python_module: my_dagster_code_location
        - python_module: my_other_code_location
        - grpc_server:
            host: localhost
            port: 4500
            location_name: "my_grpc_server"
        """
    )
    names = [location.name for location in workspace.locations]
    assert names == ["my_dagster_code_location", "my_other_code_location", "my_grpc_server"]
    grpc = workspace.location("my_grpc_server")
    assert (grpc.kind, grpc.host, grpc.port, grpc.socket, grpc.line) == (
        "grpc_server",
        "localhost",
        4500,
        None,
        3,
    )
    assert grpc.is_remote


def test_every_kind_string_and_mapping_forms(load: Load, folder: Path) -> None:
    workspace = load(
        """\
        load_from:
          - python_module: pkg.defs
          - python_module:
              module_name: iris_location
              attribute: defs
              working_directory: examples/iris
              location_name: iris
          - python_file: code/empty_location.py
          - python_file:
              relative_path: ../elsewhere/loc.py
              working_directory: /opt/work
              location_name: far
          - python_package: my_package
          - python_package: {package_name: other_pkg, location_name: other}
          - grpc_server: {port: 4501}
          - grpc_server: {host: 10.0.0.5, socket: /tmp/code.sock, ssl: false,
                          additional_metadata: {team: data, tier: 2}}
          - autoload_defs_module: my_package.defs
          - python_file: {relative_path: code/empty_location.py, attribute: defs}
          - grpc_server: {host: code.example.com, port: 443, ssl: true}
        """
    )
    by_name = {location.name: location for location in workspace.locations}
    assert list(by_name) == [
        "pkg.defs",
        "iris",
        "empty_location.py",  # Dagster's names: the file's base name, the grpc: prefix
        "far",
        "my_package",
        "other",
        "grpc:localhost:4501",
        "grpc:10.0.0.5:/tmp/code.sock",
        "my_package.defs",
        "empty_location.py:defs",
        "grpc:code.example.com:443",
    ]
    assert by_name["grpc:code.example.com:443"].ssl
    assert by_name["pkg.defs"].module_name == "pkg.defs"
    iris = by_name["iris"]
    assert (iris.module_name, iris.attribute) == ("iris_location", "defs")
    assert iris.working_directory == folder / "examples" / "iris"
    assert iris.line == 3
    empty = by_name["empty_location.py"]
    assert empty.kind == "python_file"
    assert empty.python_file == folder / "code" / "empty_location.py"
    assert empty.working_directory == folder  # the current folder: the short form's
    with_attribute = by_name["empty_location.py:defs"]
    assert (with_attribute.python_file, with_attribute.attribute) == (empty.python_file, "defs")
    assert with_attribute.working_directory == folder  # the mapping form: the file's folder
    far = by_name["far"]
    assert far.python_file == folder.parent / "elsewhere" / "loc.py"
    assert far.working_directory == Path("/opt/work")
    assert (by_name["my_package"].kind, by_name["my_package"].module_name) == (
        "python_package",
        "my_package",
    )
    assert by_name["other"].module_name == "other_pkg"
    local = by_name["grpc:localhost:4501"]
    assert (local.host, local.port, local.socket, local.ssl) == ("localhost", 4501, None, False)
    sock = by_name["grpc:10.0.0.5:/tmp/code.sock"]
    assert (sock.host, sock.port, sock.socket) == ("10.0.0.5", None, "/tmp/code.sock")
    assert (sock.ssl, sock.metadata) == (False, (("team", "data"), ("tier", "2")))
    auto = by_name["my_package.defs"]
    assert (auto.kind, auto.module_name, auto.attribute) == (
        "autoload_defs_module",
        "my_package.defs",
        None,
    )
    assert workspace.warnings == ()  # read from its own folder: both rules agree


def test_executable_path_absolute_relative_and_on_path(
    load: Load, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = folder / "bin"
    bin_dir.mkdir()
    interpreter = bin_dir / "mypython"
    interpreter.write_text("#!/bin/sh\n")
    interpreter.chmod(interpreter.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", str(bin_dir))
    workspace = load(
        """\
        load_from:
          - python_module: {module_name: a, executable_path: /usr/bin/python3}
          - python_module: {module_name: b, executable_path: venv/bin/python}
          - python_module: {module_name: c, executable_path: mypython}
        """
    )
    paths = [location.executable_path for location in workspace.locations]
    assert paths == [Path("/usr/bin/python3"), folder / "venv" / "bin" / "python", interpreter]


def test_dagster_env_source(load: Load, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CODE_PORT", "4600")
    monkeypatch.setenv("CODE_MODULE", "from_env")
    workspace = load(
        """\
        load_from:
          - grpc_server: {port: {env: CODE_PORT}}
          - python_module: {module_name: {env: CODE_MODULE}}
        """
    )
    assert [location.name for location in workspace.locations] == [
        "grpc:localhost:4600",
        "from_env",
    ]


def test_workspace_yaml_of_this_repository_loads() -> None:
    repo = Path(__file__).resolve().parent.parent
    workspace = load_workspace(repo / "workspace.yaml")
    assert workspace.locations
    for location in workspace.locations:
        assert location.line > 0


# Our keys.


def test_defaults_merge_into_entries(load: Load, folder: Path) -> None:
    workspace = load(
        """\
        defaults:
          python: "3.11"
          env: {SHARED: "1", LEVEL: info}
          startup_timeout: 20
          restart: {policy: never, max_restarts: 5, backoff_max: 10}
          health: {interval: 5}
          requirements: [six]
        envs_dir: ../built
        load_from:
          - python_module:
              module_name: a
              restart: {policy: always}
              env: {LEVEL: debug, OWN: "x"}
              health: {failures: 7}
          - python_module:
              module_name: b
              python: "3.9"
              requirements: [attrs==23.1.0]
              startup_timeout: 2.5
          - grpc_server: {port: 4500, health: {timeout: 0.5}}
        """
    )
    assert workspace.envs_dir == folder.parent / "built"
    a, b, remote = workspace.locations
    assert a.python == "3.11"
    assert a.restart == RestartSpec(policy="always", max_restarts=5, backoff_max=10.0)
    assert a.health == HealthSpec(interval=5.0, failures=7)
    assert a.env == (("LEVEL", "debug"), ("OWN", "x"), ("SHARED", "1"))
    assert a.env_dict == {"LEVEL": "debug", "OWN": "x", "SHARED": "1"}
    assert a.requirements == ("six",)
    assert a.startup_timeout == 20.0
    assert b.python == "3.9"
    assert b.requirements == ("attrs==23.1.0",)  # a list replaces the default list
    assert b.startup_timeout == 2.5
    assert b.restart == RestartSpec(policy="never", max_restarts=5, backoff_max=10.0)
    # A remote server takes the health defaults only: nothing else shapes a process here.
    assert remote.health == HealthSpec(interval=5.0, timeout=0.5)
    assert (remote.python, remote.requirements, remote.env) == (None, (), ())
    assert remote.restart == RestartSpec()


def test_executable_path_ignores_default_python_and_requirements(load: Load) -> None:
    workspace = load(
        """\
        defaults: {python: "3.11", requirements: [six]}
        load_from:
          - python_module: {module_name: a, executable_path: /opt/py/bin/python}
        """
    )
    (location,) = workspace.locations
    assert (location.python, location.requirements) == (None, ())


def test_yaml_anchors_and_merge_keys(load: Load) -> None:
    workspace = load(
        """\
        load_from:
          - python_module: &base {module_name: a, python: "3.9", restart: {policy: never}}
          - python_module:
              <<: *base
              module_name: b
        """
    )
    a, b = workspace.locations
    assert (b.name, b.python, b.restart.policy) == ("b", "3.9", "never")
    assert a.python == b.python


def test_python_paths_become_absolute(load: Load, folder: Path) -> None:
    workspace = load(
        """\
        load_from:
          - python_module: {module_name: a, python: envs/py311/bin/python}
          - python_module: {module_name: b, python: /usr/bin/python3.11}
          - python_module: {module_name: c, python: ">=3.10,<3.12"}
          - python_module: {module_name: d, python: cpython3.11}
          - python_module: {module_name: e, python: 3.12.1}
        """
    )
    pythons = [location.python for location in workspace.locations]
    assert pythons == [
        str(folder / "envs/py311/bin/python"),
        "/usr/bin/python3.11",
        ">=3.10,<3.12",
        "cpython3.11",
        "3.12.1",
    ]


def test_requirements_list_is_normalized_and_deduplicated(load: Load) -> None:
    workspace = load(
        """\
        - python_module:
            module_name: a
            requirements:
              - "pandas >= 1.5, <2"
              - six
              - pandas>=1.5,<2
              - 'attrs; python_version > "3.8"'

        """
    )
    (location,) = workspace.locations
    assert location.requirements == (
        "pandas<2,>=1.5",
        "six",
        'attrs; python_version > "3.8"',
    )
    assert location.requirements_file is None


def test_requirements_file_with_include_comments_and_continuation(load: Load, folder: Path) -> None:
    (folder / "reqs").mkdir()
    (folder / "reqs" / "base.txt").write_text(
        "# the base\n\nsix  # inline comment\n-r nested/more.txt\n"
        "attrs>=22 \\\n  ; python_version > '3.7'\n"
    )
    (folder / "reqs" / "nested").mkdir()
    (folder / "reqs" / "nested" / "more.txt").write_text(
        "pyflakes==3.2.0\n--requirement=../extra.txt\n"
    )
    (folder / "reqs" / "extra.txt").write_text("six\nidna\n")
    workspace = load("- python_file: {relative_path: loc.py, requirements: reqs/base.txt}\n")
    (location,) = workspace.locations
    assert location.requirements == (
        "six",
        "pyflakes==3.2.0",
        "idna",
        'attrs>=22; python_version > "3.7"',
    )
    assert location.requirements_file == folder / "reqs" / "base.txt"


def test_requirements_file_problems_name_file_and_line(fail: Fail, folder: Path) -> None:
    (folder / "reqs.txt").write_text(
        "six\n--index-url https://example.org/simple\nnot a requirement!\n"
        "-r missing.txt\n-r reqs.txt\n"
    )
    problems = fail("- python_file: {relative_path: loc.py, requirements: reqs.txt}\n")
    prefix = "workspace.yaml:1 [0].python_file.requirements: "
    assert problems == [
        prefix + "reqs.txt:2: pip option '--index-url' is not supported here"
        " (only -r/--requirement FILE); got '--index-url https://example.org/simple'",
        prefix + "reqs.txt:3: invalid requirement (Expected semicolon (after name with no"
        " version specifier) or end); got 'not a requirement!'",
        prefix + "reqs.txt:4: no such requirements file missing.txt",
        prefix + "reqs.txt:5: reqs.txt includes itself",
    ]


def test_requirements_file_missing_hints_at_a_list(fail: Fail, folder: Path) -> None:
    problems = fail("- python_module: {module_name: a, requirements: pandas==1.5.3}\n")
    assert problems == [
        "workspace.yaml:1 [0].python_module.requirements: expected a list of requirements"
        f" (PEP 508) or the path of a requirements file; no file at {folder / 'pandas==1.5.3'};"
        " got 'pandas==1.5.3'; to list one requirement write requirements: ['pandas==1.5.3']"
    ]


def test_requirements_bad_items(fail: Fail) -> None:
    problems = fail(
        """\
        - python_module:
            module_name: a
            requirements: [5, "pandas===", "-r other.txt"]
        """
    )
    path = "workspace.yaml:3 [0].python_module.requirements"
    assert problems[0] == f'{path}[0]: expected a requirement string such as "pandas==1.5.3"; got 5'
    assert problems[1].startswith(f"{path}[1]: invalid requirement (")
    assert problems[1].endswith("); got 'pandas==='")
    assert problems[2].startswith(f"{path}[2]: invalid requirement (")
    assert len(problems) == 3


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("1048576", 1048576),
        ('"123B"', 123),
        ('"2048KiB"', 2048 * 1024),
        ('"512MiB"', 512 * 2**20),
        ('"1GiB"', 2**30),
        ('"2TiB"', 2 * 2**40),
        ('"100MB"', 100 * 10**6),
        ('"1.5GB"', 1_500_000_000),
        ('"10KB"', 10_000),
        ('"512 MiB"', 512 * 2**20),
        ("null", None),
    ],
)
def test_memory_limit_units(load: Load, written: str, expected: int | None) -> None:
    workspace = load(f"- python_module: {{module_name: a, memory_limit: {written}}}\n")
    assert workspace.locations[0].memory_limit == expected


SIZE_HELP = (
    "expected a positive number of bytes or a size with a unit"
    ' (B, KB, MB, GB, KiB, MiB, GiB, TiB) such as "512MiB"'
)


@pytest.mark.parametrize(
    ("written", "message"),
    [
        (
            '"512mib"',
            f"{SIZE_HELP}; got '512mib'; units are case-sensitive: did you mean '512MiB'?",
        ),
        ('"5 parsecs"', f"{SIZE_HELP}; got '5 parsecs'"),
        ("0", f"{SIZE_HELP}; got 0"),
        ('"0MiB"', f"{SIZE_HELP}; got '0MiB'"),
        ("-5", f"{SIZE_HELP}; got -5"),
        ("1.5", f"{SIZE_HELP}; got 1.5"),
        ('"1.5B"', "expected a whole number of bytes; got '1.5B' (1.5 bytes)"),
        ("1" + "0" * 30, f"expected at most {2**63 - 1} bytes; got 1{'0' * 30}"),
        ("1" + "0" * 100, f"expected at most {2**63 - 1} bytes; got 1{'0' * 56}..."),
    ],
)
def test_memory_limit_errors(fail: Fail, written: str, message: str) -> None:
    problems = fail(f"- python_module: {{module_name: a, memory_limit: {written}}}\n")
    assert problems == [f"workspace.yaml:1 [0].python_module.memory_limit: {message}"]


def test_env_values_must_be_strings(fail: Fail) -> None:
    problems = fail(
        """\
        - python_module:
            module_name: a
            env:
              PORT: 8080
              DEBUG: true
              RATIO: 0.5
              EMPTY:
              "A=B": x
              GOOD: fine
        """
    )
    path = "workspace.yaml:{} [0].python_module.env"
    assert problems == [
        path.format(4) + '.PORT: expected a string; got a number 8080; quote it: PORT: "8080"',
        path.format(5) + '.DEBUG: expected a string; got a boolean True; quote it: DEBUG: "true"',
        path.format(6) + '.RATIO: expected a string; got a number 0.5; quote it: RATIO: "0.5"',
        path.format(7) + ".EMPTY: expected a string; got None",
        path.format(8) + "['A=B']: expected a variable name without '='; got 'A=B'",
    ]


# Errors: file, line, key path, value, and what is allowed.


def test_restart_policy_error_matches_the_design(fail: Fail) -> None:
    problems = fail(
        """\
        defaults:
          python: "3.11"
        load_from:
          - python_module: first
          - python_module:
              module_name: second
              restart:
                policy: alwys
        """
    )
    assert problems == [
        "workspace.yaml:8 load_from[1].python_module.restart.policy:"
        " expected one of always, on-failure, never; got 'alwys'"
    ]


def test_python_as_a_yaml_number_is_refused_with_a_hint(fail: Fail) -> None:
    problems = fail(
        """\
        defaults:
          python: 3.10
        load_from:
          - python_module: {module_name: a, python: 3}
        """
    )
    assert problems == [
        "workspace.yaml:2 defaults.python: expected a version string; got 3.1"
        ' (YAML reads 3.10 as a number); write the version as a string: python: "3.10"',
        "workspace.yaml:4 load_from[0].python_module.python: expected a version string; got 3"
        ' (YAML reads 3 as a number); write the version as a string: python: "3"',
    ]


def test_python_spec_errors_come_from_pythons(fail: Fail) -> None:
    problems = fail('- python_module: {module_name: a, python: "snake4"}\n')
    assert len(problems) == 1
    assert problems[0].startswith("workspace.yaml:1 [0].python_module.python: expected ")
    assert problems[0].endswith("; got 'snake4'")


def test_unknown_keys_did_you_mean_or_allowed_list(fail: Fail) -> None:
    problems = fail(
        """\
        load_form: []
        defaults:
          restrat: {}
          working_directory: here
        """
    )
    assert problems == [
        "workspace.yaml:1 load_form: unknown key; did you mean 'load_from'?",
        "workspace.yaml:3 defaults.restrat: unknown key; did you mean 'restart'?",
        "workspace.yaml:4 defaults.working_directory: unknown key; allowed keys: python,"
        " requirements, env, startup_timeout, drain_timeout, heartbeat_timeout, memory_limit,"
        " health, restart, builder, runtime, standby",
    ]


def test_nested_unknown_keys_and_misplaced_keys(fail: Fail) -> None:
    problems = fail(
        """\
        load_from:
          - python_module: my_module
            python: "3.9"
          - python_modul: other
          - python_file: {relative_path: a.py, restart: {polcy: never}, health: {intervals: 1}}
          - python_module: x
            python_file: y.py
          - my_module
        """
    )
    assert problems == [
        "workspace.yaml:3 load_from[0].python: put python inside the python_module mapping,"
        " beside its other keys; got '3.9'",
        "workspace.yaml:4 load_from[1].python_modul: unknown key; did you mean 'python_module'?",
        "workspace.yaml:5 load_from[2].python_file.restart.polcy: unknown key;"
        " did you mean 'policy'?",
        "workspace.yaml:5 load_from[2].python_file.health.intervals: unknown key;"
        " did you mean 'interval'?",
        "workspace.yaml:7 load_from[3]: expected exactly one of python_module, python_file,"
        " python_package, autoload_defs_module, grpc_server; got python_module and python_file",
        "workspace.yaml:8 load_from[4]: expected an entry such as {python_module: my_module};"
        " got 'my_module'",
    ]


ENTRY_TARGETS = {
    "python_file": "relative_path: a.py",
    "python_module": "module_name: a",
    "python_package": "package_name: a",
    "grpc_server": "port: 4500",
}
LOCAL_ALLOWED = (
    "attribute, working_directory, location_name, executable_path, python, requirements, env,"
    " startup_timeout, drain_timeout, heartbeat_timeout, memory_limit, health, restart, builder,"
    " runtime, standby"
)
ALLOWED_INSIDE = {
    "python_file": f"relative_path, {LOCAL_ALLOWED}",
    "python_module": f"module_name, {LOCAL_ALLOWED}",
    "python_package": f"package_name, {LOCAL_ALLOWED}",
    "grpc_server": "host, port, socket, location_name, ssl, additional_metadata, health",
}


@pytest.mark.parametrize("kind", list(ENTRY_TARGETS))
def test_a_misspelt_key_inside_an_entry_is_refused(fail: Fail, kind: str) -> None:
    problems = fail(
        f"""\
        load_from:
          - {kind}:
              {ENTRY_TARGETS[kind]}
              location_nme: misspelt
        """
    )
    assert problems == [
        f"workspace.yaml:4 load_from[0].{kind}.location_nme: unknown key;"
        " did you mean 'location_name'?"
    ]


@pytest.mark.parametrize("kind", list(ENTRY_TARGETS))
def test_an_unknown_key_inside_an_entry_lists_the_allowed_ones(fail: Fail, kind: str) -> None:
    problems = fail(f"- {kind}: {{{ENTRY_TARGETS[kind]}, colour: blue}}\n")
    assert problems == [
        f"workspace.yaml:1 [0].{kind}.colour: unknown key; allowed keys: {ALLOWED_INSIDE[kind]}"
    ]


def test_grpc_server_errors(fail: Fail) -> None:
    problems = fail(
        """\
        load_from:
          - grpc_server: {host: localhost, port: 4500, python: "3.9", restart: {policy: always}}
          - grpc_server: {port: 4501, ssl: true}
          - grpc_server: {host: localhost}
          - grpc_server: {port: 4502, socket: /tmp/s.sock}
          - grpc_server: {port: 70000}
          - grpc_server: {port: "4503", ssl: "no"}
          - grpc_server: localhost:4500
        """
    )
    assert problems == [
        "workspace.yaml:2 load_from[0].grpc_server.python: a grpc_server location runs"
        " elsewhere; python has no effect; got '3.9'",
        "workspace.yaml:2 load_from[0].grpc_server.restart: a grpc_server location runs"
        " elsewhere; restart has no effect; got {'policy': 'always'}",
        "workspace.yaml:4 load_from[2].grpc_server: expected exactly one of port and socket;"
        " got neither",
        "workspace.yaml:5 load_from[3].grpc_server: expected exactly one of port and socket;"
        " got both",
        "workspace.yaml:6 load_from[4].grpc_server.port: expected a port number from 1 to 65535;"
        " got 70000",
        "workspace.yaml:7 load_from[5].grpc_server.port: expected a port number from 1 to 65535;"
        " got '4503'",
        "workspace.yaml:7 load_from[5].grpc_server.ssl: expected true or false; got 'no'",
        "workspace.yaml:8 load_from[6].grpc_server: expected a mapping with host and port"
        " (or socket); got 'localhost:4500'",
    ]


def test_executable_path_with_python_or_requirements(fail: Fail) -> None:
    problems = fail(
        """\
        - python_module:
            module_name: a
            executable_path: /opt/venv/bin/python
            python: "3.9"
            requirements: [six]
        """
    )
    assert problems == [
        "workspace.yaml:4 [0].python_module.python: executable_path runs that interpreter as is,"
        " so python cannot apply; remove one of them; got '3.9'",
        "workspace.yaml:5 [0].python_module.requirements: executable_path runs that interpreter"
        " as is, so requirements cannot apply; remove one of them; got ['six']",
    ]


def test_value_errors_of_dagster_keys(fail: Fail, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOT_SET_ANYWHERE", raising=False)
    problems = fail(
        """\
        load_from:
          - python_module: {module_name: my-module, attribute: "1defs"}
          - python_package: {location_name: ""}
          - python_file: {relative_path: 5}
          - python_module: {module_name: {env: NOT_SET_ANYWHERE}}
          - python_module: {module_name: a, executable_path: no-such-python-here}
        """
    )
    assert problems == [
        "workspace.yaml:2 load_from[0].python_module.module_name: expected a dotted module name"
        " such as my_package.defs; got 'my-module'",
        "workspace.yaml:2 load_from[0].python_module.attribute: expected a Python identifier"
        " such as defs; got '1defs'",
        "workspace.yaml:3 load_from[1].python_package: expected a mapping with package_name;"
        " got {'location_name': ''}",
        "workspace.yaml:4 load_from[2].python_file.relative_path: expected a string; got 5",
        "workspace.yaml:5 load_from[3].python_module.module_name.env: environment variable"
        " NOT_SET_ANYWHERE is not set",
    ]


def test_a_missing_executable_path_is_refused_before_anything_starts(load: Load) -> None:
    """Dagster reads a missing interpreter and fails when it starts it; `up` and `check`
    refuse it up front, naming the line, the location and the path."""
    workspace = load(
        """        load_from:
          - python_module: {module_name: a, executable_path: no-such-python-here}
          - python_module: {module_name: b, executable_path: venv/bin/python}
        """
    )
    with pytest.raises(WorkspaceError) as caught:
        check_paths(workspace)
    assert caught.value.problems == [
        f"{workspace.path}:2 location 'a': executable_path 'no-such-python-here' is not on PATH;"
        " expected a Python interpreter",
        f"{workspace.path}:3 location 'b': executable_path"
        f" '{workspace.root / 'venv/bin/python'}' does not exist; expected a Python interpreter",
    ]


def test_numbers_out_of_range(fail: Fail) -> None:
    problems = fail(
        """\
        - python_file:
            relative_path: a.py
            startup_timeout: 0
            drain_timeout: -1.5
            heartbeat_timeout: "15s"
            health: {interval: .inf, timeout: .nan, failures: 0}
            restart: {max_restarts: -1, window: 1e3, backoff_initial: 40, stable_after: true}
        """
    )
    path = "workspace.yaml:{} [0].python_file."
    assert problems == [
        path.format(3) + "startup_timeout: expected a positive number of seconds; got 0",
        path.format(4) + "drain_timeout: expected a positive number of seconds; got -1.5",
        path.format(5) + "heartbeat_timeout: expected a positive number of seconds; got '15s'",
        path.format(6) + "health.interval: expected at most 1000000000 seconds; got inf",
        path.format(6) + "health.timeout: expected a positive number of seconds; got nan",
        path.format(6) + "health.failures: expected a positive integer; got 0",
        path.format(7) + "restart.max_restarts: expected a non-negative integer; got -1",
        # PyYAML reads 1e3 as a string: YAML 1.1 floats need a dot.
        path.format(7) + "restart.window: expected a positive number of seconds; got '1e3'",
        path.format(7) + "restart.stable_after: expected a positive number of seconds; got True",
        path.format(7) + "restart: expected backoff_initial no larger than backoff_max;"
        " got backoff_initial 40 and backoff_max 30",
    ]


def test_huge_integers(fail: Fail) -> None:
    huge = "9" * 5000  # past Python's int-from-text limit
    problems = fail(f"- grpc_server: {{port: {huge}, health: {{failures: {huge}}}}}\n")
    shown = "9" * 57 + "..."
    assert problems == [
        f"workspace.yaml:1 [0].grpc_server.port: expected a port number from 1 to 65535;"
        f" got {shown}",
        f"workspace.yaml:1 [0].grpc_server.health.failures: expected at most 1000000000;"
        f" got {shown}",
    ]


def test_duplicate_location_names_name_both_lines(fail: Fail) -> None:
    problems = fail(
        """\
        load_from:
          - python_module: iris
          - python_file:
              relative_path: other/iris.py
              location_name: iris
          - python_module: {module_name: x, location_name: iris}
          - python_file: iris.py
        """
    )
    assert problems == [
        "workspace.yaml:3 load_from[1].python_file: duplicate location name, also used at line 2"
        " (load_from[0].python_module); set location_name to tell them apart; got 'iris'",
        "workspace.yaml:6 load_from[2].python_module: duplicate location name, also used at"
        " line 2 (load_from[0].python_module); set location_name to tell them apart;"
        " got 'iris'",
    ]  # and iris.py beside module iris is no duplicate: Dagster names it 'iris.py'


def test_duplicate_yaml_keys(fail: Fail) -> None:
    problems = fail(
        """\
        load_from:
          - python_module:
              module_name: a
              python: "3.9"
              python: "3.10"
        load_from: []
        """
    )
    assert problems == [
        "workspace.yaml:5 load_from[0].python_module.python: duplicate key (first at line 4)",
        "workspace.yaml:6 load_from: duplicate key (first at line 1)",
    ]


def test_non_standard_tags_are_refused_and_never_constructed(fail: Fail) -> None:
    problems = fail(
        """\
        - python_module: !!python/object/apply:os.system ["echo hacked"]
        - python_module: {module_name: !custom a}
        """
    )
    allowed = "use plain YAML values (strings, numbers, booleans, null, lists and mappings)"
    assert problems == [
        f"workspace.yaml:1 [0].python_module: tag !!python/object/apply:os.system is not"
        f" allowed; {allowed}",
        f"workspace.yaml:2 [1].python_module.module_name: tag !custom is not allowed; {allowed}",
    ]


def test_non_string_keys(fail: Fail) -> None:
    problems = fail(
        """\
        load_from:
          - python_module:
              module_name: a
              env: {1: x, yes: y}
        """
    )
    assert problems == [
        "workspace.yaml:4 load_from[0].python_module.env: keys must be strings (quote it);"
        " got a number 1",
        "workspace.yaml:4 load_from[0].python_module.env: keys must be strings (quote it);"
        " got a boolean True",
    ]


def test_several_problems_are_reported_together_in_line_order(folder: Path) -> None:
    (folder / "ws.yaml").write_text(
        "load_from:\n"
        "  - python_module: {module_name: a, restart: {policy: sometimes}}\n"
        "  - python_file: {relative_path: b.py, memory_limit: lots}\n"
        "defaults: {startup_timeout: soon}\n"
    )
    with pytest.raises(WorkspaceError) as caught:
        load_workspace(folder / "ws.yaml")
    shown = str(folder / "ws.yaml")
    assert str(caught.value).splitlines() == [
        f"{shown}: 3 problems",
        f"{shown}:2 load_from[0].python_module.restart.policy: expected one of always,"
        " on-failure, never; got 'sometimes'",
        f"{shown}:3 load_from[1].python_file.memory_limit: {SIZE_HELP}; got 'lots'",
        f"{shown}:4 defaults.startup_timeout: expected a positive number of seconds; got 'soon'",
    ]
    assert len(caught.value.problems) == 3
    assert isinstance(caught.value, SupervisorError)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "",
            "workspace.yaml: has no load_from entries; add some, such as"
            " load_from: [{python_module: my_module}]",
        ),
        (
            "# nothing here\n",
            "workspace.yaml: has no load_from entries; add some, such as"
            " load_from: [{python_module: my_module}]",
        ),
        (
            "defaults: {}\n",
            "workspace.yaml:1: has no load_from entries; add some, such as"
            " load_from: [{python_module: my_module}]",
        ),
        (
            "load_from: []\n",
            "workspace.yaml:1 load_from: expected a list of entries such as"
            " - python_module: my_module; got []",
        ),
        (
            "just a string\n",
            "workspace.yaml:1: expected a mapping with load_from (or a list of"
            " entries); got 'just a string'",
        ),
        (
            "load_from:\n  - python_module: a\n bad: [\n",
            "workspace.yaml:3:2: invalid YAML:"
            " expected <block end>, but found '<block mapping start>' (while parsing a block"
            " mapping at line 1)",
        ),
        (
            "a: 1\n---\nb: 2\n",
            "workspace.yaml:2:1: invalid YAML: expected a single document"
            " in the stream, but found another document",
        ),
        ("load_from: [\x07]\n", "workspace.yaml:1: invalid YAML: character '\\x07' is not allowed"),
        (
            "- python_module: a\n  - b\n",
            "workspace.yaml:2:3: invalid YAML: expected <block end>,"
            " but found '-' (while parsing a block mapping at line 1)",
        ),
    ],
)
def test_whole_file_problems(fail: Fail, text: str, message: str) -> None:
    assert fail(text) == [message]


def test_misplaced_top_level_keys(fail: Fail) -> None:
    problems = fail(
        """\
        python_module: my_module
        python: "3.9"
        """
    )
    assert problems == [
        "workspace.yaml:1 python_module: entries go in a list: load_from: [{python_module: ...}]",
        "workspace.yaml:1: has no load_from entries; add some, such as"
        " load_from: [{python_module: my_module}]",
        "workspace.yaml:2 python: put it under defaults: or inside an entry",
    ]


def test_recursive_aliases_and_bad_merges(fail: Fail) -> None:
    problems = fail(
        """\
        defaults: &d {<<: *d, python: "3.9"}
        load_from: &l
          - *l
          - python_module: {<<: [5], module_name: a}
        """
    )
    assert problems == [
        "workspace.yaml:1 defaults: << merges a mapping into itself",
        "workspace.yaml:2 load_from[0]: expected an entry such as {python_module: my_module};"
        " got [[[...], {...}], {'python_module': {...}}]",
        "workspace.yaml:4 load_from[1].python_module: << merges mappings only; got a number 5",
    ]
    # Metadata that refers to itself is refused, not expanded forever.
    (problem,) = fail(
        """\
        - grpc_server: {port: 4500, additional_metadata: &m {self: *m, list: [*m, *m]}}
        """
    )
    assert problem.startswith(
        "workspace.yaml:1 [0].grpc_server.additional_metadata: expected a mapping of plain"
        " values (found unconstructable recursive node); got"
    )


def test_deeply_nested_yaml(fail: Fail) -> None:
    assert fail("[" * 5000 + "]" * 5000) == ["workspace.yaml: invalid YAML: nested too deeply"]


def test_bytes_that_are_not_utf8(folder: Path) -> None:
    (folder / "workspace.yaml").write_bytes(b"load_from:\n  - python_module: caf\xe9\n")
    with pytest.raises(WorkspaceError) as caught:
        load_workspace("workspace.yaml")
    assert str(caught.value) == "workspace.yaml:2: not UTF-8 text; got byte 0xe9"


def test_missing_and_unreadable_files(folder: Path) -> None:
    with pytest.raises(WorkspaceError) as caught:
        load_workspace("nowhere.yaml")
    assert str(caught.value) == (
        "nowhere.yaml: no such workspace file (give one with -w FILE,"
        " or name code locations with -m MODULE / -f FILE)"
    )
    (folder / "a_folder").mkdir()
    with pytest.raises(WorkspaceError) as caught:
        load_workspace(folder / "a_folder")
    assert (
        str(caught.value)
        == f"{folder / 'a_folder'}: cannot read the workspace file: Is a directory"
    )


def test_parse_workspace_shows_the_path_as_given(folder: Path) -> None:
    with pytest.raises(WorkspaceError) as caught:
        parse_workspace("- python_module: 5\n", Path("conf/ws.yaml"))
    assert str(caught.value) == (
        "conf/ws.yaml:1 [0].python_module: expected a module name or a mapping with"
        " module_name; got 5"
    )
    workspace = parse_workspace("- python_file: x.py\n", Path("conf/ws.yaml"))
    assert workspace.path == folder / "conf" / "ws.yaml"
    assert workspace.locations[0].python_file == folder / "conf" / "x.py"


def test_location_lookup() -> None:
    workspace = parse_workspace("- python_module: a\n- python_module: b\n", Path("/w/ws.yaml"))
    assert workspace.location("b").module_name == "b"
    with pytest.raises(KeyError) as caught:
        workspace.location("c")
    assert "no location named 'c' in /w/ws.yaml; known: 'a', 'b'" in str(caught.value)


def test_specs_are_frozen() -> None:
    workspace = parse_workspace("- python_module: a\n", Path("/w/ws.yaml"))
    with pytest.raises(AttributeError):
        workspace.locations[0].name = "b"  # type: ignore[misc]


# -m / -f flags.


def test_workspace_from_targets(tmp_path: Path) -> None:
    workspace = workspace_from_targets(
        ["my_dagster_code_location", "pkg.other"], ["code/empty.py"], "3.11", tmp_path
    )
    assert workspace.path == tmp_path / "workspace.yaml"
    assert workspace.envs_dir == tmp_path / "envs"
    assert workspace.state_dir == tmp_path / ".supervisor"
    first, second, third = workspace.locations
    assert first == LocationSpec(
        name="my_dagster_code_location",
        kind="python_module",
        line=0,
        module_name="my_dagster_code_location",
        working_directory=tmp_path,
        python="3.11",
    )
    assert (second.name, second.module_name) == ("pkg.other", "pkg.other")
    assert (third.name, third.kind) == ("empty.py", "python_file")
    assert third.python_file == tmp_path / "code" / "empty.py"
    assert third.working_directory == tmp_path
    relative = workspace_from_targets([], ["a.py"], "venv/bin/python", tmp_path)
    assert relative.locations[0].python == str(tmp_path / "venv/bin/python")
    assert workspace_from_targets(["m"], [], None, tmp_path).locations[0].python is None


def test_workspace_from_targets_errors(tmp_path: Path) -> None:
    with pytest.raises(WorkspaceError) as caught:
        workspace_from_targets(["bad-name", "ok", "ok"], ["ok.py", ""], "nonsense", tmp_path)
    problems = caught.value.problems
    assert problems[0].startswith("command line --python: expected ")
    assert problems[0].endswith("; got 'nonsense'")
    assert problems[1:] == [
        "command line -m: expected a dotted module name such as my_package.defs; got 'bad-name'",
        "command line -f: expected a path; got ''",
        "command line -m ok: duplicate location name, also named by -m ok; got 'ok'",
    ]
    with pytest.raises(WorkspaceError) as caught:
        workspace_from_targets([], [], None, tmp_path)
    assert str(caught.value) == (
        "command line: no code locations: give -m MODULE or -f FILE, or a workspace file"
    )


# Whatever the input, only WorkspaceError comes out.

VOCABULARY = (
    "load_from",
    "defaults",
    "envs_dir",
    "python_module",
    "python_file",
    "python_package",
    "grpc_server",
    "module_name",
    "relative_path",
    "package_name",
    "attribute",
    "working_directory",
    "location_name",
    "executable_path",
    "host",
    "port",
    "socket",
    "ssl",
    "additional_metadata",
    "python",
    "requirements",
    "env",
    "startup_timeout",
    "drain_timeout",
    "heartbeat_timeout",
    "memory_limit",
    "health",
    "restart",
    "interval",
    "timeout",
    "failures",
    "policy",
    "max_restarts",
    "window",
    "backoff_initial",
    "backoff_max",
    "stable_after",
    "<<",
)
KINDS = ("python_module", "python_file", "python_package", "grpc_server")
SAMPLES = (
    "3.10",
    "3.9",
    ">=3.10,<3.12",
    "cpython3.11",
    "~=3.1",
    "/usr/bin/python3",
    "venv/bin/python",
    "512MiB",
    "1.5GB",
    "always",
    "on-failure",
    "never",
    "localhost",
    "reqs.txt",
    "pandas==1.5.3",
    "PATH",
    "pkg.mod",
    "",
    "-r reqs.txt",
)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**50), max_value=10**50),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(SAMPLES),
    st.text(max_size=20),
)
keys = st.one_of(st.sampled_from(VOCABULARY), st.text(max_size=10))
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=5),
    max_leaves=15,
)
random_entries = st.dictionaries(
    st.sampled_from(KINDS),
    st.one_of(scalars, st.dictionaries(keys, values, max_size=8)),
    min_size=1,
    max_size=2,
)


def loose(plausible: st.SearchStrategy[object]) -> st.SearchStrategy[object]:
    """Mostly a value that fits the key, sometimes anything at all."""
    return st.one_of(plausible, plausible, plausible, values)


def some(**strategies: st.SearchStrategy[object]) -> st.SearchStrategy[dict[str, object]]:
    """Mappings holding any subset of these keys, each with a value that (mostly) fits it."""
    return st.fixed_dictionaries({}, optional={k: loose(v) for k, v in strategies.items()})


seconds = st.one_of(st.integers(-2, 100), st.floats(-1, 1e12), st.sampled_from(["15s", "1e3"]))
health = some(interval=seconds, timeout=seconds, failures=st.integers(-1, 10))
restart = some(
    policy=st.sampled_from(["always", "on-failure", "never", "alwys"]),
    max_restarts=st.one_of(st.none(), st.integers(-1, 10)),
    window=seconds,
    backoff_initial=seconds,
    backoff_max=seconds,
    stable_after=seconds,
)
OURS = {
    "python": st.one_of(
        st.sampled_from(["3.10", "3.9", ">=3.10,<3.12", "cpython3.11", "venv/bin/python", "~/p"]),
        st.floats(3, 4),
    ),
    "requirements": st.one_of(
        st.lists(st.sampled_from(["six", "pandas==1.5.3", "bad req!", "attrs>=22", "-r x"])),
        st.sampled_from(["reqs.txt", "missing.txt", "six"]),
    ),
    "env": st.dictionaries(st.sampled_from(["A", "B", "", "C=D"]), st.text(max_size=4) | scalars),
    "startup_timeout": seconds,
    "drain_timeout": seconds,
    "heartbeat_timeout": seconds,
    "memory_limit": st.one_of(
        st.sampled_from(["512MiB", "1.5GB", "1.5B", "0MiB", "2 gib"]), st.integers(-1, 2**70)
    ),
    "health": health,
    "restart": restart,
}
CODE = {
    "attribute": st.sampled_from(["defs", "1x"]),
    "working_directory": st.sampled_from(["sub", "/abs", "", "~"]),
    "location_name": st.sampled_from(["a", "b", "", "x\ty"]),
    "executable_path": st.sampled_from(["/usr/bin/python3", "venv/bin/python", "no-such-python"]),
}
names = st.sampled_from(["a", "b", "pkg.mod", "a-b", "c"])
entries = st.one_of(
    st.fixed_dictionaries({"python_module": names | some(module_name=names, **CODE, **OURS)}),
    st.fixed_dictionaries(
        {
            "python_file": st.sampled_from(["a.py", "sub/b.py", ""])
            | some(relative_path=names, **CODE, **OURS)
        }
    ),
    st.fixed_dictionaries({"python_package": names | some(package_name=names, **CODE, **OURS)}),
    st.fixed_dictionaries(
        {
            "grpc_server": some(
                host=st.sampled_from(["localhost", "10.0.0.1", "", "a b"]),
                port=st.integers(0, 70000),
                socket=st.sampled_from(["/tmp/s.sock", "rel.sock"]),
                location_name=names,
                ssl=st.booleans(),
                additional_metadata=st.dictionaries(st.text(max_size=3), scalars),
                health=health,
                python=OURS["python"],
            )
        }
    ),
    random_entries,
)
documents = st.one_of(
    values,
    st.lists(entries, max_size=4),
    st.fixed_dictionaries(
        {},
        optional={
            "load_from": st.one_of(st.lists(entries, max_size=4), values),
            "defaults": some(**OURS),
            "envs_dir": loose(st.sampled_from(["envs", "/abs/envs", ""])),
        },
    ),
)


@pytest.fixture(scope="module")
def hypothesis_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("hypothesis")
    (root / "reqs.txt").write_text("six\n-r reqs.txt\n--pre\n")
    return root


def parse_only_workspace_errors(text: str, root: Path) -> None:
    try:
        result = parse_workspace(text, root / "workspace.yaml")
    except WorkspaceError as exc:
        assert exc.problems
        assert all(isinstance(p, str) and p for p in exc.problems)
        assert str(exc)
    else:
        assert isinstance(result, WorkspaceSpec)
        assert result.locations


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.text())
def test_any_text_gives_a_spec_or_a_workspace_error(text: str, hypothesis_root: Path) -> None:
    parse_only_workspace_errors(text, hypothesis_root)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(document=documents)
def test_any_yaml_gives_a_spec_or_a_workspace_error(
    document: object, hypothesis_root: Path
) -> None:
    parse_only_workspace_errors(yaml.safe_dump(document), hypothesis_root)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=200))
def test_any_bytes_give_a_spec_or_a_workspace_error(data: bytes, hypothesis_root: Path) -> None:
    path = hypothesis_root / "bytes.yaml"
    path.write_bytes(data)
    try:
        load_workspace(path)
    except WorkspaceError as exc:
        assert str(exc)


def test_hypothesis_strategies_reach_valid_workspaces(hypothesis_root: Path) -> None:
    # Guards the property tests above: the vocabulary must be able to build real entries.
    document = {"load_from": [{"python_module": {"module_name": "a", "python": "3.10"}}]}
    workspace = parse_workspace(yaml.safe_dump(document), hypothesis_root / "workspace.yaml")
    assert workspace.locations[0].python == "3.10"
    assert os.path.isabs(workspace.path)


def test_module_folders_start_at_the_current_folder_as_in_dagster(folder: Path) -> None:
    """Dagster's code server resolves a module entry's working_directory (and its absence)
    against the current folder; a warning says so when that is not the file's folder."""
    (folder / "sub").mkdir()
    path = folder / "sub" / "workspace.yaml"
    path.write_text(
        textwrap.dedent("""\
        load_from:
          - python_module: {module_name: a, working_directory: code}
          - python_module: {module_name: b, working_directory: /opt/code}
          - python_file: {relative_path: c.py}
          - grpc_server: {socket: code.sock}
        """)
    )
    workspace = load_workspace(path)  # the current folder is FOLDER, above the file's
    a, b, c, remote = workspace.locations
    assert a.working_directory == folder / "code"
    assert b.working_directory == Path("/opt/code")
    assert (c.python_file, c.working_directory) == (folder / "sub" / "c.py", folder / "sub")
    assert (remote.name, remote.socket) == ("grpc:localhost:code.sock", str(folder / "code.sock"))
    assert workspace.warnings == (
        f"{path}:2 load_from[0].python_module.working_directory: working_directory 'code':"
        f" imports from {folder / 'code'}, relative to the current folder as Dagster resolves"
        f" it; the workspace file's folder is {folder / 'sub'}; run the supervisor there, or"
        " give an absolute working_directory",
        f"{path}:5 load_from[3].grpc_server.socket: 'code.sock' is {folder / 'code.sock'},"
        " relative to the current folder as Dagster resolves it, not to the workspace file's"
        f" folder {folder / 'sub'}",
    )
    # Read from its own folder, both rules agree: nothing to warn about.
    assert load_workspace(path, cwd=folder / "sub").warnings == ()


def test_several_files_merge_in_order_and_name_their_own_lines(folder: Path) -> None:
    (folder / "a.yaml").write_text(
        "envs_dir: envs-a\nload_from:\n  - python_module: shared\n  - python_module: only_a\n"
    )
    (folder / "b.yaml").write_text(
        "envs_dir: envs-b\nload_from:\n  - python_file: {relative_path: b.py,"
        " location_name: shared}\n  - python_module: only_b\n"
    )
    workspace = load_workspace(["a.yaml", "b.yaml"])
    assert [(s.name, s.kind) for s in workspace.locations] == [
        ("shared", "python_file"),  # b's entry, in a's place
        ("only_a", "python_module"),
        ("only_b", "python_module"),
    ]
    assert (workspace.path, workspace.envs_dir) == (folder / "a.yaml", folder / "envs-a")
    assert workspace.files == (folder / "a.yaml", folder / "b.yaml")
    assert workspace.locations[0].where == f"{folder / 'b.yaml'}:3"
    assert workspace.warnings == (
        f"{folder / 'b.yaml'}:1 envs_dir: not used; the first workspace file's holds every"
        f" environment: {folder / 'envs-a'}",
    )
    (folder / "bad.yaml").write_text("load_from:\n  - python_module: {module_name: x-y}\n")
    with pytest.raises(WorkspaceError) as caught:
        load_workspace(["a.yaml", "bad.yaml"])
    assert caught.value.problems == [
        "bad.yaml:2 load_from[0].python_module.module_name: expected a dotted module name such"
        " as my_package.defs; got 'x-y'"
    ]


def test_runtime_is_asked_for_or_follows_the_requirements(load: Load, fail: Fail) -> None:
    workspace = load(
        """\
        defaults:
          runtime: supervisor
        load_from:
          - python_file: {relative_path: a.py}
          - python_file: {relative_path: b.py, runtime: dagster}
        """
    )
    assert [s.effective_runtime for s in workspace.locations] == ["supervisor", "dagster"]
    implied = load(
        """\
        load_from:
          - python_file: {relative_path: a.py, requirements: ["dagster>=1.13,<1.14"]}
          - python_file: {relative_path: b.py, requirements: ["Dagster[test]==1.13.2"]}
          - python_file: {relative_path: c.py, requirements: [dagster-webserver, six]}
          - python_file: {relative_path: d.py, requirements: [dagster], runtime: supervisor}
        """
    )
    assert [(s.runtime, s.effective_runtime) for s in implied.locations] == [
        (None, "dagster"),
        (None, "dagster"),
        (None, "supervisor"),
        ("supervisor", "supervisor"),
    ]
    assert fail(
        """\
        load_from:
          - python_file: {relative_path: a.py, runtime: dagstr}
        """
    ) == [
        "workspace.yaml:2 load_from[0].python_file.runtime: expected one of supervisor,"
        " dagster; got 'dagstr'"
    ]
