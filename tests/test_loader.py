"""The loader's rules, in-process: where Definitions are found and how failures read."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from supervisor import Definitions
from supervisor.codeserver.loader import CodeTarget, load
from tests.helpers import EXAMPLES, FIXTURES

LOCATIONS = FIXTURES / "locations"


@pytest.fixture(autouse=True)
def restore_import_state():
    """Loading user code edits sys.path and sys.modules; put them back after each test."""
    path, modules = list(sys.path), dict(sys.modules)
    yield
    sys.path[:] = path
    for name in set(sys.modules) - set(modules):
        del sys.modules[name]


def load_file(name: str, attribute: str | None = None):
    return load(CodeTarget(python_file=str(LOCATIONS / name), attribute=attribute))


def test_module_with_working_directory_loads() -> None:
    result = load(CodeTarget(module_name="hello_location", working_directory=str(EXAMPLES)))
    assert result.failure is None
    assert isinstance(result.definitions, Definitions)
    assert result.definitions.asset_keys == ("names", "greetings", "greeting_count")
    assert sys.path[0] == str(EXAMPLES)


def test_file_loads_whatever_the_variable_name() -> None:
    result = load(CodeTarget(python_file=str(EXAMPLES / "empty_location.py")))
    assert result.failure is None
    assert result.definitions.asset_keys == ("empty_data",)


def test_assignment_under_top_level_if_counts() -> None:
    result = load_file("definitions_under_if.py")
    assert result.failure is None
    assert result.definitions.asset_keys == ("shown",)


def test_no_definitions_is_an_error_naming_the_file() -> None:
    result = load_file("no_definitions.py")
    assert result.definitions is None
    assert "no Definitions found among the top-level variables" in result.failure.message
    assert "no_definitions.py" in result.failure.message


def test_definitions_made_inside_a_function_are_not_found() -> None:
    result = load_file("definitions_in_function.py")
    assert result.definitions is None
    assert "no Definitions found" in result.failure.message
    assert "inside a function" in result.failure.message


def test_two_definitions_is_an_error_naming_both() -> None:
    result = load_file("two_definitions.py")
    assert result.definitions is None
    assert "holds 2 Definitions objects (first, second)" in result.failure.message


def test_attribute_picks_one_of_two() -> None:
    result = load_file("two_definitions.py", attribute="second")
    assert result.failure is None
    assert result.definitions is result.module.second


def test_attribute_missing_or_of_wrong_type() -> None:
    assert (
        "has no top-level variable 'third'"
        in load_file("two_definitions.py", attribute="third").failure.message
    )
    assert (
        "'a' is a AssetDefinition, not a Definitions"
        in load_file("two_definitions.py", attribute="a").failure.message
    )


def test_one_object_under_two_names_counts_once(tmp_path: Path) -> None:
    code = "from supervisor import Definitions\ndefs = Definitions()\nalias = defs\n"
    (tmp_path / "aliased.py").write_text(code)
    result = load(CodeTarget(python_file=str(tmp_path / "aliased.py")))
    assert result.failure is None


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("raise_on_import.py", "RuntimeError: this location is broken on purpose"),
        ("syntax_error.py", "SyntaxError"),
        ("missing_package.py", "ModuleNotFoundError: No module named"),
        ("cycle.py", "dependency cycle: chicken -> egg -> chicken"),
        ("unknown_parameter.py", "parameter 'nobody_provides_this' is neither"),
    ],
)
def test_import_failures_carry_message_and_traceback(name: str, expected: str) -> None:
    result = load_file(name)
    assert result.definitions is None
    assert result.failure.message.startswith(f"could not import file {LOCATIONS / name}")
    assert expected in result.failure.message
    assert "Traceback (most recent call last)" in result.failure.traceback
    assert name in result.failure.traceback


def test_failed_file_import_leaves_no_half_module() -> None:
    load_file("raise_on_import.py")
    assert "raise_on_import" not in sys.modules


def test_missing_targets_are_plain_errors(tmp_path: Path) -> None:
    missing_module = load(CodeTarget(module_name="no_such_location_module"))
    assert "module 'no_such_location_module' not found" in missing_module.failure.message
    assert missing_module.failure.traceback == ""
    missing_file = load(CodeTarget(python_file=str(tmp_path / "nope.py")))
    assert "does not exist" in missing_file.failure.message
    missing_dir = load(CodeTarget(module_name="x", working_directory=str(tmp_path / "no")))
    assert "working directory" in missing_dir.failure.message


def test_system_exit_at_import_is_a_load_error(tmp_path: Path) -> None:
    (tmp_path / "exits.py").write_text("import sys\nsys.exit(3)\n")
    result = load(CodeTarget(python_file=str(tmp_path / "exits.py")))
    assert "SystemExit: 3" in result.failure.message


def write_package(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_autoload_gathers_a_package_and_its_submodules(tmp_path: Path) -> None:
    """autoload_defs_module: every submodule imported, its assets, schedules and Definitions
    gathered into one Definitions, each object once."""
    write_package(
        tmp_path,
        {
            "auto_pkg/__init__.py": "",
            "auto_pkg/raw.py": (
                "from supervisor import asset\n\n@asset\ndef raw():\n    return 1\n"
            ),
            "auto_pkg/nested/__init__.py": "",
            "auto_pkg/nested/derived.py": (
                "from supervisor import Definitions, ScheduleDefinition, asset\n"
                "from auto_pkg.raw import raw\n\n"
                "@asset\ndef derived(raw):\n    return raw + 1\n\n"
                "nightly = ScheduleDefinition('nightly', '0 3 * * *', target=[derived])\n"
                "defs = Definitions(assets=[raw, derived], resources={'factor': 2})\n"
            ),
        },
    )
    result = load(
        CodeTarget(module_name="auto_pkg", working_directory=str(tmp_path), autoload=True)
    )
    assert result.failure is None, result.failure
    assert set(result.definitions.asset_keys) == {"raw", "derived"}
    assert [s.name for s in result.definitions.schedules] == ["nightly"]
    assert result.definitions.resources == {"factor": 2}


def test_autoload_of_a_module_with_nothing_says_so(tmp_path: Path) -> None:
    write_package(tmp_path, {"hollow_pkg/__init__.py": "", "hollow_pkg/util.py": "X = 1\n"})
    result = load(
        CodeTarget(module_name="hollow_pkg", working_directory=str(tmp_path), autoload=True)
    )
    assert result.definitions is None
    assert result.failure.message == (
        "no Definitions, assets or schedules found in module hollow_pkg or its submodules"
    )


def test_default_location_names_are_dagsters() -> None:
    assert CodeTarget(python_file="/srv/repo.py").default_location_name() == "repo.py"
    assert CodeTarget(python_file="/srv/repo.py", attribute="defs").default_location_name() == (
        "repo.py:defs"
    )
    assert CodeTarget(module_name="pkg.defs", attribute="d").default_location_name() == (
        "pkg.defs:d"
    )


def test_autoload_failures_are_load_errors(tmp_path: Path) -> None:
    """A submodule that fails to import, and two modules defining one asset key, are load
    errors that name the problem, not crashes."""
    write_package(
        tmp_path,
        {
            "broken_pkg/__init__.py": "",
            "broken_pkg/bad.py": "raise RuntimeError('boom in a submodule')\n",
            "twice_pkg/__init__.py": "",
            "twice_pkg/a.py": "from supervisor import asset\n\n@asset\ndef same():\n    return 1\n",
            "twice_pkg/b.py": "from supervisor import asset\n\n@asset\ndef same():\n    return 2\n",
        },
    )
    broken = load(
        CodeTarget(module_name="broken_pkg", working_directory=str(tmp_path), autoload=True)
    )
    assert broken.definitions is None
    assert broken.failure.message == (
        "could not import module broken_pkg: RuntimeError: boom in a submodule"
    )
    assert "broken_pkg/bad.py" in broken.failure.traceback
    twice = load(
        CodeTarget(module_name="twice_pkg", working_directory=str(tmp_path), autoload=True)
    )
    assert twice.definitions is None
    assert twice.failure.message.startswith("module twice_pkg and its submodules: ")
    assert "same" in twice.failure.message


def test_a_dagster_definitions_is_named_with_the_runtime_key(tmp_path: Path) -> None:
    """Our server, given a Dagster location, says so and names `runtime:`. The stand-in
    class carries dagster's module name, as a real dagster.Definitions does."""
    (tmp_path / "dagster_like.py").write_text(
        "class Definitions:\n    pass\n\nDefinitions.__module__ = 'dagster._core.definitions'\n"
        "defs = Definitions()\n"
    )
    result = load(CodeTarget(python_file=str(tmp_path / "dagster_like.py")))
    assert result.definitions is None
    assert "holds a dagster.Definitions" in result.failure.message
    assert "runtime: dagster" in result.failure.message
