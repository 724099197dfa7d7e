"""Interpreter discovery on this machine's real interpreters (pyenv 2.7 to 3.13, /usr/bin)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet

from supervisor import pythons
from supervisor.errors import InterpreterNotFoundError, SupervisorError
from supervisor.pythons import (
    PythonInfo,
    PythonSpec,
    discover,
    find_python,
    probe,
    pythons_json,
    pythons_table,
)
from tests.helpers import pyenv_python

PYENV_VERSIONS = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"


@pytest.fixture(scope="module")
def module_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("xdg-cache")


@pytest.fixture(autouse=True)
def isolated_cache(module_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the user's cache out of it; the module shares one so most tests run warm."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(module_cache))
    pythons.clear_cache()
    yield
    pythons.clear_cache()


def forbid_subprocesses(monkeypatch: pytest.MonkeyPatch) -> None:
    """A guard: any child process started from here on fails the test."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"a subprocess was started: {args!r}")

    monkeypatch.setattr(subprocess, "run", refuse)
    monkeypatch.setattr(subprocess, "Popen", refuse)


def info(version: str, implementation: str = "cpython", path: str = "/x/python") -> PythonInfo:
    return PythonInfo(path=path, version=version, implementation=implementation, source="path")


@pytest.mark.parametrize(
    ("text", "implementation", "specifier"),
    [
        ("3.9", None, "==3.9.*"),
        ("3.12.1", None, "==3.12.1"),
        ("3", None, "==3.*"),
        (">=3.10,<3.12", None, ">=3.10,<3.12"),
        (" >= 3.10, < 3.12 ", None, ">=3.10,<3.12"),
        ("==3.11.*", None, "==3.11.*"),
        ("~=3.10", None, "~=3.10"),
        ("cpython3.11", "cpython", "==3.11.*"),
        ("CPython>=3.10", "cpython", ">=3.10"),
        ("python3.11", None, "==3.11.*"),
        ("pypy3.10", "pypy", "==3.10.*"),
        ("cpython", "cpython", None),
        ("python", None, None),
    ],
)
def test_parse_versions(text: str, implementation: str | None, specifier: str | None) -> None:
    spec = PythonSpec.parse(text)
    assert spec.implementation == implementation
    assert spec.specifier == (SpecifierSet(specifier) if specifier else None)
    assert spec.path is None
    assert str(spec) == text.strip()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("~/.pyenv/versions/3.9.18/bin/python", Path.home() / ".pyenv/versions/3.9.18/bin/python"),
        ("/usr/bin/python3", Path("/usr/bin/python3")),
        ("venv/bin/python", Path("venv/bin/python")),
    ],
)
def test_parse_paths(text: str, expected: Path) -> None:
    spec = PythonSpec.parse(text)
    assert (spec.path, spec.implementation, spec.specifier) == (expected, None, None)


@pytest.mark.parametrize("text", ["banana", "", "  ", "3.11.*", ">=3.10,<", "3.x", "pypi3.11"])
def test_parse_rejects_with_what_is_allowed(text: str) -> None:
    with pytest.raises(ValueError) as caught:
        PythonSpec.parse(text)
    message = str(caught.value)
    assert message.startswith('expected a version such as "3.11", a range such as ">=3.10,<3.12"')
    assert "cpython3.11" in message and "a path to an interpreter" in message
    assert message.endswith(f"got {text!r}")


def test_parse_names_the_implementations_for_an_unknown_one() -> None:
    with pytest.raises(ValueError, match=r"implementations: cpython, pypy, graalpy, or python"):
        PythonSpec.parse("pypi3.11")


def test_satisfies() -> None:
    py38 = info("3.8.18")
    assert py38.satisfies(PythonSpec.parse("3.8"))
    assert py38.satisfies(PythonSpec.parse("cpython>=3.8"))
    assert py38.satisfies(PythonSpec.parse("python3"))
    assert not py38.satisfies(PythonSpec.parse("3.8.17"))
    assert not py38.satisfies(PythonSpec.parse(">=3.10,<3.12"))
    assert not py38.satisfies(PythonSpec.parse("pypy3.8"))
    assert info("3.10.1", "pypy").satisfies(PythonSpec.parse("pypy3.10"))
    assert py38.satisfies(PythonSpec.parse("/x/python"))
    assert not py38.satisfies(PythonSpec.parse("/y/python"))
    # A prerelease is still that version; find_python prefers finals among matches.
    assert info("3.14.0rc1").satisfies(PythonSpec.parse("3.14"))


def test_version_tuple_and_can_host() -> None:
    assert info("3.13.0rc1").version_tuple == (3, 13, 0)
    assert info("3.8.0").can_host
    assert not info("3.7.16").can_host
    assert not info("2.7.18").can_host


def test_discover_finds_pyenv_versions_and_marks_old_ones() -> None:
    found = discover()
    by_version = {i.version: i for i in found}
    for version in ("3.8.18", "3.13.0"):
        assert by_version[version].source == "pyenv", found
        assert by_version[version].path == str(PYENV_VERSIONS / version / "bin" / "python")
        assert by_version[version].can_host
    for version in ("2.7.18", "3.6.15", "3.7.16"):
        assert not by_version[version].can_host, found
    assert all(i.implementation == "cpython" for i in found)
    assert not any("shims" in Path(i.path).parts for i in found)
    # One entry per real file, newest first.
    real = [os.path.realpath(i.path) for i in found]
    assert len(real) == len(set(real))
    assert [i.version_tuple for i in found] == sorted(
        (i.version_tuple for i in found), reverse=True
    )


@pytest.mark.parametrize(
    ("spec", "version"),
    [
        ("3.8", "3.8.18"),
        ("3.12.1", "3.12.1"),
        (">=3.10,<3.12", "3.11.7"),
        ("cpython3.13", "3.13.0"),
        ("3", "3.13.0"),
    ],
)
def test_find_python_picks_newest_match_from_pyenv(spec: str, version: str) -> None:
    found = find_python(spec)
    assert found.version == version
    assert found.path == str(PYENV_VERSIONS / version / "bin" / "python")
    assert found.source == "pyenv"


def test_find_python_path_spec_probes_that_path() -> None:
    path = pyenv_python("3.9")
    found = find_python(PythonSpec.parse(path))
    assert (found.path, found.version, found.source) == (path, "3.9.18", "given")


def test_find_python_path_spec_that_is_not_an_interpreter(tmp_path: Path) -> None:
    with pytest.raises(InterpreterNotFoundError, match="is not a working Python interpreter"):
        find_python(str(tmp_path / "python"))


def test_find_python_refuses_a_path_too_old_to_host() -> None:
    with pytest.raises(InterpreterNotFoundError, match=r"is Python 2\.7\.18; .* 3\.8 or later"):
        find_python(pyenv_python("2.7"))


def test_no_match_lists_what_was_found() -> None:
    with pytest.raises(InterpreterNotFoundError) as caught:
        find_python("3.5")
    message = str(caught.value)
    assert isinstance(caught.value, SupervisorError) and caught.value.exit_code == 1
    assert "'3.5'" in message.splitlines()[0]
    for i in discover():
        assert f"{i.version:<10} {i.path}" in message
    assert "interpreters are not downloaded" in message


def test_a_match_too_old_to_host_says_so() -> None:
    with pytest.raises(InterpreterNotFoundError, match=r"only Python 3\.7\.16 matches"):
        find_python("3.7")


def test_find_python_none_is_this_interpreter() -> None:
    found = find_python(None)
    assert found.path == sys.executable
    assert found.version_tuple == tuple(sys.version_info[:3])


def test_second_discover_in_process_starts_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    first = discover()
    forbid_subprocesses(monkeypatch)
    assert discover() == first


def test_refresh_probes_again(monkeypatch: pytest.MonkeyPatch) -> None:
    discover()
    forbid_subprocesses(monkeypatch)
    with pytest.raises(AssertionError, match="a subprocess was started"):
        discover(refresh=True)


def test_file_cache_serves_a_fresh_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    first = discover()
    cache = tmp_path / "workspace-supervisor" / "pythons.json"
    assert json.loads(cache.read_text())["probe"] == pythons.PROBE_HASH
    pythons.clear_cache()  # as a new process would start
    forbid_subprocesses(monkeypatch)
    assert discover() == first


def test_corrupt_cache_is_ignored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    cache = tmp_path / "workspace-supervisor" / "pythons.json"
    cache.parent.mkdir()
    path = pyenv_python("3.8")
    for text in ("{not json", json.dumps([1, 2])):
        cache.write_text(text)
        pythons.clear_cache()
        assert probe(path).version == "3.8.18"
    # Right probe hash and mtime, but the entry is not probe data.
    entry = {"mtime_ns": os.stat(path).st_mtime_ns, "info": {"version": 38}}
    cache.write_text(json.dumps({"probe": pythons.PROBE_HASH, "entries": {path: entry}}))
    pythons.clear_cache()
    assert probe(path).version == "3.8.18"


def test_changed_mtime_means_probing_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A wrapper script stands in for an interpreter whose file changed."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    wrapper = tmp_path / "python"
    wrapper.write_text(f'#!/bin/sh\nexec {pyenv_python("3.8")} "$@"\n')
    wrapper.chmod(0o755)
    assert probe(wrapper).version == "3.8.18"
    stamp = os.stat(wrapper).st_mtime_ns

    # Now the wrapper runs 3.9, but its mtime is as before: the cache still answers.
    wrapper.write_text(f'#!/bin/sh\nexec {pyenv_python("3.9")} "$@"\n')
    os.utime(wrapper, ns=(stamp, stamp))
    pythons.clear_cache()
    assert probe(wrapper).version == "3.8.18"

    os.utime(wrapper, ns=(stamp + 10**9, stamp + 10**9))
    pythons.clear_cache()
    reprobed = probe(wrapper)
    assert (reprobed.version, reprobed.path) == ("3.9.18", str(wrapper))


def test_pythons_json_shape() -> None:
    rows = pythons_json(discover())
    assert rows and json.loads(json.dumps(rows)) == rows
    for row in rows:
        assert {"path", "version", "implementation", "source", "can_host"} <= row.keys()
    old = next(r for r in rows if r["version"] == "2.7.18")
    assert old["can_host"] is False and old["source"] == "pyenv"


def test_pythons_table_marks_those_that_cannot_host() -> None:
    lines = pythons_table(discover()).splitlines()
    assert lines[0].split() == ["VERSION", "IMPL", "SOURCE", "PATH"]
    old = next(line for line in lines if line.startswith("2.7.18"))
    new = next(line for line in lines if line.startswith("3.13.0"))
    assert "cannot host" in old and "cannot host" not in new
    assert pythons_table([]) == "no Python interpreters found"
