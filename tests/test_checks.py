"""The verdicts of `supervisor check` on hand-made facts, on facts from a real interpreter,
and their table, JSON and JUnit renderings."""

from __future__ import annotations

import json
import os
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from supervisor.check.junit import write_junit
from supervisor.check.verdicts import (
    CHECKS,
    FACT_CHECKS,
    CheckResult,
    check_location,
    check_stable,
    check_unreachable,
    results_json,
    results_table,
    sort_results,
)
from supervisor.workspace.specs import LocationSpec
from tests.helpers import pyenv_python

BASE = "/opt/pythons/3.8.18"  # a base interpreter that need not exist: paths are only compared
ENV = "/w/envs/py3.8.18-abc"
SITE = f"{ENV}/lib/python3.8/site-packages"
STDLIB = f"{BASE}/lib/python3.8"
BASE_SITE = f"{STDLIB}/site-packages"
CODE = "/work/examples"
HOST = "3.11.7"


def dist(name: str, version: str, *requires: str, location: str = SITE) -> dict[str, Any]:
    return {"name": name, "version": version, "location": location, "requires": list(requires)}


def clean_facts() -> dict[str, Any]:
    """A location on CPython 3.8 with attrs and requests (and what they need) installed."""
    return {
        "python": {
            "version": "3.8.18",
            "implementation": "cpython",
            "executable": f"{ENV}/bin/python",
            "prefix": ENV,
            "base_prefix": BASE,
        },
        "paths": {"stdlib": STDLIB, "platstdlib": STDLIB, "purelib": SITE, "platlib": SITE},
        "sys_path": [
            CODE,
            f"{BASE}/lib/python38.zip",
            STDLIB,
            f"{STDLIB}/lib-dynload",
            SITE,
        ],
        "environ": {"VIRTUAL_ENV": ENV},
        "markers": {
            "python_version": "3.8",
            "python_full_version": "3.8.18",
            "sys_platform": "linux",
            "platform_machine": "x86_64",
            "implementation_name": "cpython",
            "os_name": "posix",
            "platform_system": "Linux",
            "platform_release": "6.1.0",
            "platform_python_implementation": "CPython",
            "implementation_version": "3.8.18",
            "platform_version": "#1 SMP",
        },
        "distributions": [
            dist(
                "attrs",
                "21.4.0",
                'importlib-metadata; python_version < "3.8"',
                'coverage[toml]>=5.0.2; extra == "tests"',
            ),
            dist(
                "requests",
                "2.31.0",
                "charset-normalizer<4,>=2",
                "idna<4,>=2.5",
                "urllib3<3,>=1.21.1",
                "certifi>=2017.4.17",
                'PySocks!=1.5.7,>=1.5.6; extra == "socks"',
            ),
            dist("charset-normalizer", "3.3.2"),
            dist("idna", "3.6"),
            dist("urllib3", "2.1.0"),
            dist("certifi", "2023.11.17"),
            dist("grpcio", "1.62.0", "six>=1.5.2"),
            dist("protobuf", "4.25.3"),
            dist("six", "1.16.0"),
        ],
        "runtime_path": f"{SITE}/supervisor",
        "load_error": None,
        "counts": {"assets": 3, "resources": 1, "schedules": 1},
    }


def spec(**changes: Any) -> LocationSpec:
    fields: dict[str, Any] = {
        "name": "a",
        "kind": "python_file",
        "line": 1,
        "python": "3.8",
        "requirements": ("attrs==21.4.0", "requests>=2.31"),
    }
    return LocationSpec(**{**fields, **changes})


def verdict(
    check: str,
    facts: dict[str, Any],
    location: LocationSpec | None = None,
    others: dict[str, set[str]] | None = None,
    host: str = HOST,
    allowed: tuple[str, ...] = (CODE,),
) -> CheckResult:
    results = check_location(location or spec(), facts, others or {}, host, allowed)
    assert [r.check for r in results] == list(FACT_CHECKS)
    return next(r for r in results if r.check == check)


def test_clean_location_passes_every_check() -> None:
    results = check_location(spec(), clean_facts(), {"b": {"pandas"}}, HOST, [CODE])
    details = {r.check: r.detail for r in results if r.ok}
    assert details == {
        "interpreter": "CPython 3.8.18 satisfies 3.8",
        "requirements": "2 requirements satisfied",
        # attrs's importlib-metadata (3.7 only) and coverage (extra only) are not installed.
        "consistent": "the requirements of all 9 installed distributions are met",
        "isolated": "sys.path and 9 distributions all from this environment",
        "definitions": "3 assets, 1 resource, 1 schedule",
    }
    assert {r.location for r in results} == {"a"}


# interpreter


def test_interpreter_version_outside_the_spec_fails() -> None:
    facts = clean_facts()
    facts["python"]["version"] = "3.9.18"
    result = verdict("interpreter", facts)
    assert not result.ok
    assert result.detail == "CPython 3.9.18 does not satisfy 3.8"


def test_interpreter_implementation_must_match() -> None:
    result = verdict("interpreter", clean_facts(), spec(python="pypy3.8"))
    assert (result.ok, result.detail) == (False, "CPython 3.8.18 does not satisfy pypy3.8")
    assert verdict("interpreter", clean_facts(), spec(python="cpython>=3.8,<3.9")).ok


def test_interpreter_default_is_the_supervisors_own_version() -> None:
    ok = verdict("interpreter", clean_facts(), spec(python=None), host="3.8.18")
    assert (ok.ok, ok.detail) == (True, "CPython 3.8.18 matches the supervisor's own Python 3.8.18")
    bad = verdict("interpreter", clean_facts(), spec(python=None), host="3.11.7")
    assert not bad.ok
    assert bad.detail == "CPython 3.8.18 does not match the supervisor's own Python 3.11.7"


def test_interpreter_executable_path_is_taken_as_is() -> None:
    location = spec(python=None, executable_path=Path("/usr/bin/python3"))
    result = verdict("interpreter", clean_facts(), location)
    assert (result.ok, result.detail) == (True, "executable_path: CPython 3.8.18")


def test_interpreter_path_spec_compares_with_a_probe(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))  # the probe's cache stays here
    python = pyenv_python("3.8")
    version = Path(python).parent.parent.name  # pyenv's folder is named for the version
    facts = clean_facts()
    facts["python"]["version"] = version
    ok = verdict("interpreter", facts, spec(python=python))
    assert ok.ok, ok.detail
    assert ok.detail == f"CPython {version} matches {python} (CPython {version})"
    facts["python"]["version"] = "3.8.1"
    assert not verdict("interpreter", facts, spec(python=python)).ok
    missing = verdict("interpreter", facts, spec(python=str(tmp_path / "nope" / "python")))
    assert not missing.ok and "is not a working Python interpreter" in missing.detail


def test_interpreter_invalid_spec_fails() -> None:
    result = verdict("interpreter", clean_facts(), spec(python="jython2"))
    assert not result.ok and result.detail.startswith("python 'jython2' is not a valid spec")


# requirements


def test_requirements_wrong_version_and_missing_are_named() -> None:
    facts = clean_facts()
    facts["distributions"][0]["version"] = "23.2.0"
    location = spec(requirements=("attrs==21.4.0", "six>=1.16", "Pillow", "requests>=2.31"))
    result = verdict("requirements", facts, location)
    assert not result.ok
    assert result.detail.splitlines() == [
        "attrs: installed 23.2.0 does not satisfy ==21.4.0",
        "Pillow: not installed",
    ]


def test_requirements_missing_with_specifier_names_it() -> None:
    facts = clean_facts()
    facts["distributions"] = [d for d in facts["distributions"] if d["name"] != "six"]
    result = verdict("requirements", facts, spec(requirements=("six>=1.16", "attrs==21.4.0")))
    assert (result.ok, result.detail) == (False, "six: not installed (wanted >=1.16)")


def test_requirements_markers_and_names_are_honoured() -> None:
    location = spec(
        requirements=(
            'importlib-metadata>=4; python_version < "3.8"',  # skipped on 3.8
            "Charset_Normalizer>=3",  # matched by canonical name
            "urllib3>=2.1.0rc1",  # a prerelease bound still admits 2.1.0
        )
    )
    result = verdict("requirements", clean_facts(), location)
    assert (result.ok, result.detail) == (True, "2 requirements satisfied (1 skipped by marker)")
    facts = clean_facts()
    facts["distributions"][4]["version"] = "2.2.0b1"  # urllib3: prereleases satisfy too
    assert verdict("requirements", facts, spec(requirements=("urllib3>=2",))).ok
    none = verdict("requirements", clean_facts(), spec(requirements=()))
    assert (none.ok, none.detail) == (True, "no requirements declared")


# consistent


def test_consistent_names_missing_and_mismatched_dependencies() -> None:
    facts = clean_facts()
    facts["distributions"] = [d for d in facts["distributions"] if d["name"] != "idna"]
    facts["distributions"][3]["version"] = "3.0.0"  # urllib3
    result = verdict("consistent", facts)
    assert not result.ok
    assert result.detail.splitlines() == [
        "requests 2.31.0 requires idna<4,>=2.5, but idna is not installed",
        "requests 2.31.0 requires urllib3<3,>=1.21.1, but urllib3 3.0.0 is installed",
    ]


def test_consistent_honours_extras_our_requirements_ask_for() -> None:
    result = verdict("consistent", clean_facts(), spec(requirements=("requests[socks]>=2.31",)))
    assert not result.ok
    assert result.detail == (
        "requests[socks] 2.31.0 requires PySocks!=1.5.7,>=1.5.6, but PySocks is not installed"
    )


def test_consistent_marker_true_requirement_is_enforced() -> None:
    facts = clean_facts()
    facts["markers"].update(python_version="3.7", python_full_version="3.7.16")
    result = verdict("consistent", facts)
    assert not result.ok
    assert (
        "attrs 21.4.0 requires importlib-metadata, but importlib-metadata is not" in result.detail
    )


# isolated


def test_pythonpath_and_pythonhome_leak() -> None:
    facts = clean_facts()
    facts["environ"].update(PYTHONPATH="/host/lib:/other", PYTHONHOME="/usr")
    result = verdict("isolated", facts)
    assert not result.ok
    assert result.detail.splitlines() == [
        "PYTHONPATH is set: /host/lib:/other",
        "PYTHONHOME is set: /usr",
    ]
    facts["environ"] = {"PYTHONPATH": ""}  # Python ignores an empty one
    assert verdict("isolated", facts).ok


def test_base_interpreters_site_packages_on_sys_path_leaks() -> None:
    facts = clean_facts()
    facts["sys_path"].append(BASE_SITE)
    facts["distributions"].append(dist("pip", "23.0.1", location=BASE_SITE))
    result = verdict("isolated", facts)
    assert not result.ok
    assert result.detail.splitlines() == [
        f"sys.path entry outside this environment: {BASE_SITE}",
        f"1 distribution from outside this environment, in {BASE_SITE}: pip 23.0.1",
    ]


@pytest.mark.parametrize(
    "entry",
    [
        "/work/main/.venv/lib/python3.11/site-packages",  # the host's environment
        "/w/envs/py3.8.18-abcd/lib/python3.8/site-packages",  # a sibling, same name prefix
        f"{CODE}/sub",  # allowed folders count exactly, not their subfolders
        "/usr/lib/python3/dist-packages",
        "relative/dir",
    ],
)
def test_foreign_sys_path_entries_leak(entry: str) -> None:
    facts = clean_facts()
    facts["sys_path"].insert(1, entry)
    result = verdict("isolated", facts)
    assert not result.ok
    assert entry in result.detail and result.detail.count("\n") == 0


def test_allowed_folders_and_empty_entry_pass() -> None:
    facts = clean_facts()
    facts["sys_path"] = ["", "/work/main", *facts["sys_path"]]
    facts["distributions"].append(dist("workspace-supervisor", "0.1.0", location="/work/main"))
    assert not verdict("isolated", facts).ok  # /work/main is not allowed yet
    result = verdict("isolated", facts, allowed=(CODE, "/work/main"))
    assert result.ok, result.detail


def test_environment_kept_inside_an_allowed_folder_still_leaks() -> None:
    other = "/w/envs/py3.12-xyz/lib/python3.12/site-packages"
    facts = clean_facts()
    facts["sys_path"].append(other)
    facts["distributions"].append(dist("pandas", "2.2.0", location=other))
    result = verdict("isolated", facts, allowed=(CODE, "/w"))
    assert result.detail.splitlines() == [
        f"sys.path entry outside this environment: {other}",
        f"1 distribution from outside this environment, in {other}: pandas 2.2.0",
    ]


def test_allowed_site_packages_of_the_host_still_leaks() -> None:
    # A runtime imported from the host's site-packages would make that folder "allowed".
    host = "/work/main/.venv/lib/python3.11/site-packages"
    facts = clean_facts()
    facts["sys_path"].append(host)
    facts["distributions"].append(dist("click", "8.1.7", location=host))
    result = verdict("isolated", facts, allowed=(CODE, host))
    assert result.detail.splitlines() == [
        f"sys.path entry outside this environment: {host}",
        f"1 distribution from outside this environment, in {host}: click 8.1.7",
    ]


def test_transitive_dependency_declared_elsewhere_is_not_a_leak() -> None:
    # requests needs urllib3, grpcio (a base package) needs six: both ours, whoever declares them.
    others = {"b": {"urllib3", "six"}, "a": {"attrs"}}
    result = verdict("isolated", clean_facts(), others=others)
    assert result.ok, result.detail


def test_distribution_declared_only_by_another_location_leaks() -> None:
    facts = clean_facts()
    facts["distributions"].append(dist("pandas", "1.5.3"))
    others = {"b": {"pandas", "urllib3"}, "c": {"pandas"}, "d": {"numpy"}}
    result = verdict("isolated", facts, others=others)
    assert not result.ok
    assert result.detail == (
        "pandas 1.5.3 is importable, but only locations b, c declared it"
        " and nothing this location declares needs it"
    )
    # Once this location needs it through one of its own requirements, it is no leak.
    facts["distributions"][1]["requires"].append("pandas>=1")
    assert verdict("isolated", facts, others=others).ok


def test_requirement_skipped_by_marker_does_not_make_its_dependencies_ours() -> None:
    facts = clean_facts()
    facts["distributions"].append(dist("colorama", "0.4.6"))
    location = spec(requirements=("attrs==21.4.0", 'click; sys_platform == "win32"'))
    facts["distributions"].append(dist("click", "8.1.7", 'colorama; platform_system == "Windows"'))
    result = verdict("isolated", facts, location, others={"b": {"colorama"}})
    # click is declared here (so never a leak); colorama is only needed on Windows.
    assert result.detail.startswith("colorama 0.4.6 is importable, but only location b")


def test_extras_of_our_requirements_are_ours() -> None:
    facts = clean_facts()
    facts["distributions"].append(dist("PySocks", "1.7.1"))
    others = {"b": {"pysocks"}}
    assert not verdict("isolated", facts, others=others).ok
    location = spec(requirements=("attrs==21.4.0", "requests[socks]>=2.31"))
    assert verdict("isolated", facts, location, others=others).ok


@pytest.mark.parametrize("order", [("tool", "requests>=2.31"), ("requests>=2.31", "tool")])
def test_extras_asked_deeper_down_are_ours_whatever_the_order(order: tuple[str, str]) -> None:
    # requests is reached plain (declared) and with [socks] (through tool), in either order.
    facts = clean_facts()
    facts["distributions"] += [dist("tool", "1.0", "requests[socks]"), dist("PySocks", "1.7.1")]
    result = verdict("isolated", facts, spec(requirements=order), others={"b": {"pysocks"}})
    assert result.ok, result.detail
    assert verdict("consistent", facts, spec(requirements=order)).ok


def test_not_a_venv_its_site_packages_is_the_environment() -> None:
    facts = clean_facts()
    facts["python"]["prefix"] = BASE
    facts["sys_path"] = [f"{BASE}/lib/python38.zip", STDLIB, f"{STDLIB}/lib-dynload", BASE_SITE]
    for d in facts["distributions"]:
        d["location"] = BASE_SITE
    result = verdict("isolated", facts, spec(python=None, executable_path=Path(BASE)))
    assert result.ok, result.detail


# definitions, unreachable, malformed


def test_definitions_counts_and_load_error() -> None:
    facts = clean_facts()
    facts["counts"] = {"assets": 1, "resources": 2, "schedules": 0}
    assert verdict("definitions", facts).detail == "1 asset, 2 resources, 0 schedules"
    facts["load_error"] = "RuntimeError: boom\nTraceback (most recent call last):\n  ..."
    result = verdict("definitions", facts)
    assert not result.ok and result.detail.splitlines()[0] == "RuntimeError: boom"


def test_a_location_that_did_not_start_says_why_once() -> None:
    results = check_unreachable(spec(), "startup timed out after 60s", seconds=61.5)
    skipped = "not checked: the location is not serving (see its stable check)"
    assert [(r.location, r.check, r.ok, r.detail) for r in results] == [
        *[("a", c, False, skipped) for c in FACT_CHECKS],
        ("a", "stable", False, "startup timed out after 60s"),
    ]
    assert [r.seconds for r in results] == [0.0] * len(FACT_CHECKS) + [61.5]


def test_stable_passes_only_when_it_kept_serving() -> None:
    kept = check_stable(spec(), 3.0, None, 4.25)
    assert (kept.check, kept.ok, kept.detail, kept.seconds) == (
        "stable",
        True,
        "served for 3s",
        4.25,
    )
    left = check_stable(spec(), 3.0, "code server killed by SIGSEGV", 1.5)
    assert (left.ok, left.detail) == (
        False,
        "stopped serving within 3s: code server killed by SIGSEGV",
    )


def test_malformed_facts_fail_checks_instead_of_raising() -> None:
    facts = clean_facts()
    del facts["python"]
    results = {r.check: r for r in check_location(spec(), facts, {}, HOST)}
    assert not results["interpreter"].ok
    assert results["interpreter"].detail == "malformed facts: KeyError: 'python'"
    assert results["requirements"].ok and results["definitions"].ok


# renderings


def sample() -> list[CheckResult]:
    return [
        *check_location(spec(name="b"), clean_facts(), {}, HOST, [CODE]),
        check_stable(spec(name="b"), 3.0, None, 12.25),
        *check_unreachable(spec(name="c"), "exited with code 1\nTraceback ...", 60.0),
        CheckResult("a", "isolated", False, "PYTHONPATH is set: /x\nsecond"),
        CheckResult("a", "interpreter", True, "CPython 3.8.18 satisfies 3.8"),
    ]


def test_sort_failures_first_then_location_then_check_order() -> None:
    ordered = [(r.location, r.check, r.ok) for r in sort_results(sample())]
    assert ordered[:7] == [("a", "isolated", False)] + [("c", c, False) for c in CHECKS]
    assert ordered[7:] == [("a", "interpreter", True)] + [("b", c, True) for c in CHECKS]


def test_json_shape() -> None:
    data = results_json(sort_results(sample()))
    assert data[0] == {
        "location": "a",
        "check": "isolated",
        "ok": False,
        "detail": "PYTHONPATH is set: /x\nsecond",
        "seconds": 0.0,
    }
    assert all(list(d) == ["location", "check", "ok", "detail", "seconds"] for d in data)
    json.dumps(data)  # plain data


def test_table_shows_first_line_clipped() -> None:
    long = CheckResult("b", "consistent", False, "x" * 300)
    lines = results_table([*sort_results(sample()), long]).splitlines()
    assert lines[0].split() == ["LOCATION", "CHECK", "RESULT", "DETAIL"]
    assert lines[1].split() == [
        "a",
        "isolated",
        "FAIL",
        "PYTHONPATH",
        "is",
        "set:",
        "/x",
        "(+1",
        "more)",
    ]
    assert lines[2].split()[:5] == ["c", "interpreter", "FAIL", "not", "checked:"]
    assert [line.split()[:4] for line in lines if line.startswith("c ")][-1] == [
        "c",
        "stable",
        "FAIL",
        "exited",
    ]
    assert any(line.split()[:3] == ["b", "definitions", "PASS"] for line in lines)
    assert lines[-1].endswith("x...") and len(lines[-1].split()[-1]) == 100
    assert results_table([]) == "no checks run"


def test_junit_report_reads_back(tmp_path: Path) -> None:
    results = sort_results(sample())
    results.append(CheckResult("d", "definitions", False, "ValueError: \x1b[31mbad\x1b[0m <&>"))
    path = tmp_path / "reports" / "junit.xml"
    write_junit(results, path, 73.75)
    assert path.read_bytes().startswith(b"<?xml version='1.0' encoding='utf-8'?>")
    assert os.listdir(path.parent) == ["junit.xml"]  # no temporary file left behind
    root = ET.parse(path).getroot()
    assert root.tag == "testsuites"
    assert root.attrib["name"] == "supervisor check"
    assert (root.attrib["tests"], root.attrib["failures"]) == (str(len(results)), "8")
    assert float(root.attrib["time"]) == pytest.approx(73.75)
    suites = {s.attrib["name"]: s for s in root.iter("testsuite")}
    assert list(suites) == ["a", "c", "b", "d"]
    b = suites["b"]
    assert (b.attrib["tests"], b.attrib["failures"], b.attrib["time"]) == ("6", "0", "12.250")
    cases = b.findall("testcase")
    assert [c.attrib["name"] for c in cases] == list(CHECKS)
    assert {c.attrib["classname"] for c in cases} == {"supervisor.check.b"}
    assert sum(float(c.attrib["time"]) for c in cases) == pytest.approx(12.25)
    assert cases[0].find("system-out").text == "CPython 3.8.18 satisfies 3.8"
    assert all(c.find("failure") is None for c in cases)
    failure = suites["c"].find("testcase[@name='stable']/failure")
    assert failure.attrib == {"message": "exited with code 1", "type": "CheckFailed"}
    assert failure.text == "exited with code 1\nTraceback ..."
    assert suites["c"].attrib["failures"] == "6"
    assert suites["c"].attrib["time"] == "60.000"
    odd = suites["d"].find("testcase/failure")
    assert odd.attrib["message"] == "ValueError: \ufffd[31mbad\ufffd[0m <&>"
    assert suites["d"].attrib["time"] == "0.000"


# real facts from a real interpreter

FACTS_SCRIPT = """
import json, os, platform, sys, sysconfig
from importlib import metadata
impl = sys.implementation
dists, seen = [], set()
for d in metadata.distributions():
    name = d.metadata["Name"]
    if name and name.lower() not in seen:
        seen.add(name.lower())
        dists.append({"name": name, "version": d.version, "location": str(d.locate_file("")),
                      "requires": list(d.requires or [])})
print(json.dumps({
    "python": {"version": platform.python_version(), "implementation": impl.name,
               "executable": sys.executable, "prefix": sys.prefix, "base_prefix": sys.base_prefix},
    "paths": {k: v for k, v in sysconfig.get_paths().items()
              if k in ("stdlib", "platstdlib", "purelib", "platlib")},
    "sys_path": sys.path,
    "environ": {k: os.environ[k] for k in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")
                if k in os.environ},
    "markers": {"python_version": "%d.%d" % sys.version_info[:2],
                "python_full_version": platform.python_version(),
                "sys_platform": sys.platform, "platform_machine": platform.machine(),
                "implementation_name": impl.name, "os_name": os.name,
                "platform_system": platform.system(), "platform_release": platform.release(),
                "platform_python_implementation": platform.python_implementation(),
                "implementation_version": platform.python_version(),
                "platform_version": platform.version()},
    "distributions": dists,
    "runtime_path": "",
    "load_error": None,
    "counts": {"assets": 0},
}))
"""


def real_facts(python: str) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    out = subprocess.run(
        [python, "-I", "-c", FACTS_SCRIPT], capture_output=True, text=True, check=True, env=env
    )
    return json.loads(out.stdout)


def make_venv(base: str, where: Path, *flags: str) -> str:
    subprocess.run([base, "-m", "venv", "--without-pip", *flags, str(where)], check=True)
    return str(where / "bin" / "python")


def test_real_plain_interpreter_is_isolated() -> None:
    python = pyenv_python("3.8")
    facts = real_facts(python)
    assert facts["python"]["prefix"] == facts["python"]["base_prefix"]  # not a venv
    names = {d["name"].lower() for d in facts["distributions"]}
    assert "pip" in names  # its own site-packages holds something to judge
    results = {r.check: r for r in check_location(spec(requirements=()), facts, {}, HOST, [])}
    for check in ("interpreter", "requirements", "consistent", "isolated"):
        assert results[check].ok, (check, results[check].detail)
    assert results["interpreter"].detail.startswith("CPython 3.8.")
    assert results["isolated"].detail == (
        f"sys.path and {len(facts['distributions'])} distributions all from this environment"
    )
    # Another location declaring pip makes it a leak here: nothing of ours needs it.
    leaky = check_location(spec(requirements=()), facts, {"b": {"pip"}}, HOST, [])
    assert "only location b declared it" in leaky[CHECKS.index("isolated")].detail


def test_real_venv_is_isolated_and_system_site_packages_leak(tmp_path: Path) -> None:
    base = pyenv_python("3.8")
    clean = real_facts(make_venv(base, tmp_path / "clean"))
    assert clean["python"]["prefix"] != clean["python"]["base_prefix"]
    result = verdict("isolated", clean, spec(requirements=()), allowed=())
    assert result.ok, result.detail

    leaky = real_facts(make_venv(base, tmp_path / "leaky", "--system-site-packages"))
    result = verdict("isolated", leaky, spec(requirements=()), allowed=())
    assert not result.ok
    base_site = next(
        p
        for p in leaky["sys_path"]
        if p.startswith(leaky["python"]["base_prefix"]) and p.endswith("site-packages")
    )
    assert f"sys.path entry outside this environment: {base_site}" in result.detail
    assert f"from outside this environment, in {base_site}: " in result.detail
    assert "pip " in result.detail


def test_a_remote_location_has_no_spec_to_match() -> None:
    remote = LocationSpec(
        name="far", kind="grpc_server", line=3, host="localhost", port=4500, python=None
    )
    results = {r.check: r for r in check_location(remote, clean_facts(), {}, "3.11.7")}
    assert results["interpreter"].ok and "remote location on" in results["interpreter"].detail
    assert results["requirements"].ok
    assert results["definitions"].ok
