"""The verdicts of `supervisor check`: facts a location's own interpreter gathered (see
codeserver/facts.py), judged against its spec. Pure, bar one cached probe of an interpreter
named by path. Paths are compared as given and, failing that, with symlinks resolved.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from supervisor.launch.command import LEAKY_VARIABLES
from supervisor.pythons import PythonSpec, probe
from supervisor.render import table
from supervisor.workspace.specs import LocationSpec

CHECKS = ("interpreter", "requirements", "consistent", "isolated", "definitions", "stable")
# Judged from the facts a running server gives; `stable` is judged by watching it.
FACT_CHECKS = CHECKS[:-1]
# Every environment gets them for the code server: they and their dependencies are ours.
BASE_PACKAGES = ("grpcio", "protobuf")
SITE_DIRS = frozenset({"site-packages", "dist-packages"})
DETAIL_WIDTH = 100
_DISPLAY = {"cpython": "CPython", "pypy": "PyPy", "graalpy": "GraalPy"}

Facts = Mapping[str, Any]
Dists = dict[str, Mapping[str, Any]]
Verdict = tuple[bool, str]


@dataclass(frozen=True)
class CheckResult:
    """One verdict: which location, which check, whether it passed, and what was found."""

    location: str
    check: str  # one of CHECKS
    ok: bool
    detail: str  # what was found; for a failure, precisely what is wrong
    seconds: float = 0.0  # what this check took (the start and settle window for `stable`)


def check_location(
    spec: LocationSpec,
    facts: Facts,
    others_declared: Mapping[str, set[str]],
    host_version: str,
    allowed_paths: Sequence[str] = (),
) -> list[CheckResult]:
    """Judge one location's FACTS: one result per fact check, in order. OTHERS_DECLARED maps
    other locations to the names they declare; ALLOWED_PATHS may be on sys.path besides."""
    judges: dict[str, Callable[[], Verdict]] = {
        "interpreter": lambda: _interpreter(spec, facts, host_version),
        "requirements": lambda: _requirements(spec, facts),
    }
    if spec.is_remote:
        # A grpc_server runs elsewhere, from an environment the workspace does not describe.
        python = facts["python"]
        runs = f"{python['implementation']} {python['version']}"
        judges = {
            "interpreter": lambda: (True, f"remote location on {runs}; no spec to match"),
            "requirements": lambda: (True, "remote location; no requirements declared here"),
        }
    judges |= {
        "consistent": lambda: _consistent(spec, facts),
        "isolated": lambda: _isolated(spec, facts, others_declared, allowed_paths),
        "definitions": lambda: _definitions(facts),
    }
    results = []
    for check in FACT_CHECKS:
        try:
            ok, detail = judges[check]()
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            # Facts of another shape (an older runtime, say) fail the check, not the command.
            ok, detail = False, f"malformed facts: {type(exc).__name__}: {exc}"
        results.append(CheckResult(spec.name, check, ok, detail))
    return results


def check_unreachable(spec: LocationSpec, reason: str, seconds: float = 0.0) -> list[CheckResult]:
    """The location did not start, or could not be inspected: the reason is said once, on
    `stable`; the checks that need a running server say they were not run."""
    skipped = "not checked: the location is not serving (see its stable check)"
    results = [CheckResult(spec.name, check, False, skipped) for check in FACT_CHECKS]
    return [*results, CheckResult(spec.name, "stable", False, reason, seconds)]


def check_stable(
    spec: LocationSpec, settle: float, left: str | None, seconds: float
) -> CheckResult:
    """Whether the location kept serving for SETTLE seconds after it started; LEFT says why
    it stopped when it did not."""
    if left is None:
        return CheckResult(spec.name, "stable", True, f"served for {settle:g}s", seconds)
    return CheckResult(
        spec.name, "stable", False, f"stopped serving within {settle:g}s: {left}", seconds
    )


def sort_results(results: Iterable[CheckResult]) -> list[CheckResult]:
    """Failures first, then by location, then in CHECKS order."""
    order = {check: i for i, check in enumerate(CHECKS)}
    return sorted(results, key=lambda r: (r.ok, r.location, order.get(r.check, len(order))))


def results_json(results: Iterable[CheckResult]) -> list[dict[str, Any]]:
    """The `check --json` shape: a list of {location, check, ok, detail, seconds}."""
    return [
        {
            "location": r.location,
            "check": r.check,
            "ok": r.ok,
            "detail": r.detail,
            "seconds": round(r.seconds, 3),
        }
        for r in results
    ]


def results_table(results: Sequence[CheckResult]) -> str:
    """LOCATION CHECK RESULT DETAIL, one row per result, the detail's first line clipped."""
    if not results:
        return "no checks run"
    rows = [(r.location, r.check, "PASS" if r.ok else "FAIL", _clip(r.detail)) for r in results]
    return table(("LOCATION", "CHECK", "RESULT", "DETAIL"), rows)


def _clip(detail: str, width: int = DETAIL_WIDTH) -> str:
    lines = detail.strip().splitlines() or [""]
    more = f" (+{len(lines) - 1} more)" if len(lines) > 1 else ""
    first = lines[0]
    if len(first) + len(more) > width:
        first = first[: max(width - len(more) - 3, 0)] + "..."
    return first + more


def _verdict(problems: list[str], passed: str) -> Verdict:
    return (False, "\n".join(problems)) if problems else (True, passed)


def _plural(count: int, noun: str) -> str:
    """COUNT NOUN, NOUN given in the plural as the counts' keys are: "1 asset", "3 assets"."""
    return f"{count} {noun.removesuffix('s') if count == 1 else noun}"


def _same_version(a: str, b: str) -> bool:
    try:
        return Version(a) == Version(b)
    except InvalidVersion:  # "3.14.0a1+" from a source build
        return a == b


def _satisfies(specifier: SpecifierSet, version: str) -> bool:
    """Whether VERSION is in SPECIFIER; prereleases count, as an installer chose them."""
    try:
        return not len(specifier) or specifier.contains(version, prereleases=True)
    except InvalidVersion:  # older packaging raises where newer returns False
        return False


def _parse(text: str) -> Requirement | None:
    try:
        return Requirement(text)
    except InvalidRequirement:
        return None


def _node(req: Requirement) -> tuple[str, set[str]]:
    return canonicalize_name(req.name), {canonicalize_name(e) for e in req.extras}


def _active(req: Requirement, markers: Mapping[str, str], extras: Iterable[str] = ()) -> bool:
    """Whether REQ applies under MARKERS with no extra, or with any of EXTRAS, requested."""
    if req.marker is None:
        return True
    try:
        return any(req.marker.evaluate({**markers, "extra": e}) for e in ("", *extras))
    except ValueError:  # a comparison packaging cannot make: assume the need, hide nothing
        return True


def _index(facts: Facts) -> Dists:
    """The distributions by canonical name; the first on sys.path is the importable one."""
    dists: Dists = {}
    for dist in facts.get("distributions") or ():
        dists.setdefault(canonicalize_name(dist["name"]), dist)
    return dists


def _closure(spec: LocationSpec, dists: Dists, markers: Mapping[str, str]) -> dict[str, set[str]]:
    """Everything BASE_PACKAGES and SPEC's applicable requirements need, transitively, as
    canonical name -> the extras asked of it."""
    roots = [Requirement(name) for name in BASE_PACKAGES] + [
        r for r in map(_parse, spec.requirements) if r is not None and _active(r, markers)
    ]
    needed: dict[str, set[str]] = {}
    stack = [_node(r) for r in roots]
    while stack:
        name, extras = stack.pop()
        if name in needed and extras <= needed[name]:
            continue
        # A name seen again with new extras is walked again: those extras may need more.
        wanted = needed.setdefault(name, set())
        wanted |= extras
        for req in map(_parse, (dists.get(name) or {}).get("requires") or ()):
            if req is not None and _active(req, markers, wanted):
                stack.append(_node(req))
    return needed


def _interpreter(spec: LocationSpec, facts: Facts, host_version: str) -> Verdict:
    impl, version = facts["python"]["implementation"], facts["python"]["version"]
    have = f"{_DISPLAY.get(impl, impl)} {version}"
    if spec.python is None:
        if spec.executable_path is not None:  # taken as is: whatever it is, it is right
            return True, f"executable_path: {have}"
        ok = _same_version(version, host_version)
        verb = "matches" if ok else "does not match"
        return ok, f"{have} {verb} the supervisor's own Python {host_version}"
    try:
        wanted = PythonSpec.parse(spec.python)
    except ValueError as exc:
        return False, f"python {spec.python!r} is not a valid spec: {exc}"
    if wanted.path is not None:
        info = probe(wanted.path)
        if info is None:
            return False, f"{have}, but {wanted.path} is not a working Python interpreter"
        ok = info.implementation == impl and _same_version(info.version, version)
        what = f"{_DISPLAY.get(info.implementation, info.implementation)} {info.version}"
        return ok, f"{have} {'matches' if ok else 'does not match'} {wanted.path} ({what})"
    ok = wanted.implementation in (None, impl) and (
        wanted.specifier is None or _satisfies(wanted.specifier, version)
    )
    return ok, f"{have} {'satisfies' if ok else 'does not satisfy'} {wanted.raw}"


def _requirements(spec: LocationSpec, facts: Facts) -> Verdict:
    if not spec.requirements:
        return True, "no requirements declared"
    dists, problems, met, skipped = _index(facts), [], 0, 0
    for text in spec.requirements:
        req = _parse(text)
        if req is None:
            problems.append(f"{text}: not a valid requirement")
            continue
        if not _active(req, facts["markers"]):
            skipped += 1
            continue
        dist, wanted = dists.get(canonicalize_name(req.name)), str(req.specifier)
        if dist is None:
            problems.append(
                f"{req.name}: not installed" + (f" (wanted {wanted})" if wanted else "")
            )
        elif not _satisfies(req.specifier, dist["version"]):
            problems.append(f"{req.name}: installed {dist['version']} does not satisfy {wanted}")
        else:
            met += 1
    note = f" ({skipped} skipped by marker)" if skipped else ""
    return _verdict(problems, f"{_plural(met, 'requirements')} satisfied{note}")


def _consistent(spec: LocationSpec, facts: Facts) -> Verdict:
    markers, dists, prefix = facts["markers"], _index(facts), facts["python"]["prefix"]
    asked = _closure(spec, dists, markers)
    problems: list[str] = []
    judged = 0
    for name, dist in dists.items():
        # Only what is installed here: strays are `isolated`'s business, and a source tree's
        # metadata in the working directory describes an install somewhere else.
        if _relative(dist.get("location") or "", prefix) is None:
            continue
        judged += 1
        extras = asked.get(name, set())
        for req in map(_parse, dist.get("requires") or ()):
            if req is None or not _active(req, markers, extras):
                continue
            label, plain = f"{dist['name']} {dist['version']}", str(req).split(";")[0].strip()
            if not _active(req, markers):  # needed only for extras that one of ours asked for
                label = f"{dist['name']}[{','.join(sorted(extras))}] {dist['version']}"
            found = dists.get(canonicalize_name(req.name))
            if found is None:
                problems.append(f"{label} requires {plain}, but {req.name} is not installed")
            elif not _satisfies(req.specifier, found["version"]):
                installed = f"{found['name']} {found['version']} is installed"
                problems.append(f"{label} requires {plain}, but {installed}")
    return _verdict(problems, f"the requirements of all {judged} installed distributions are met")


def _relative(path: str, root: str) -> str | None:
    """PATH relative to ROOT ("." for ROOT itself) when inside it, else None."""
    if not path or not root:
        return None
    for resolve in (os.path.normpath, os.path.realpath):
        p, r = resolve(path), resolve(root)
        try:
            if os.path.commonpath([p, r]) == r:
                return os.path.relpath(p, r)
        except ValueError:  # one relative, one absolute
            continue
    return None


def _in_site_dir(path: str) -> bool:
    """Whether PATH is, or is inside, a site-packages or dist-packages folder."""
    return bool(SITE_DIRS & set(os.path.normpath(path).split(os.sep)))


def _stdlib(facts: Facts) -> tuple[list[str], list[str]]:
    """The base interpreter's stdlib folders, and its entries to match exactly: the zip, which
    lies outside them ("python3.13t" -> "python313t.zip"), and lib-dynload, for clarity."""
    py, paths = facts["python"], facts.get("paths") or {}
    folders = [p for p in (paths.get("stdlib"), paths.get("platstdlib")) if p]
    major, minor = py["version"].split(".")[:2]
    exact = [os.path.join(py["base_prefix"], "lib", f"python{major}{minor}.zip")]
    for folder in folders:
        name = os.path.basename(os.path.normpath(folder)).replace(".", "") + ".zip"
        exact += [os.path.join(os.path.dirname(folder), name), os.path.join(folder, "lib-dynload")]
    return folders, exact


def _sys_path_ok(entry: str, facts: Facts, allowed: Sequence[str]) -> bool:
    """Whether ENTRY is of this environment, the base stdlib (not its site-packages!), or one
    of ALLOWED exactly: a folder of the location's code, never a site-packages of others."""
    ours = _relative(entry, facts["python"]["prefix"]) is not None
    if ours or _in_site_dir(entry):  # the base's own site-packages, another environment's
        return ours
    folders, exact = _stdlib(facts)
    return any(_relative(entry, e) == "." for e in [*exact, *allowed]) or any(
        _relative(entry, f) is not None for f in folders
    )


def _isolated(
    spec: LocationSpec,
    facts: Facts,
    others_declared: Mapping[str, set[str]],
    allowed: Sequence[str],
) -> Verdict:
    environ, prefix = facts.get("environ") or {}, facts["python"]["prefix"]
    # Python ignores these when empty, so only a value leaks anything in.
    problems = [f"{var} is set: {environ[var]}" for var in LEAKY_VARIABLES if environ.get(var)]
    for entry in facts["sys_path"]:
        if entry == "":  # the current folder: the location's own code
            continue
        if not os.path.isabs(entry):
            problems.append(f"sys.path holds a relative entry: {entry}")
        elif not _sys_path_ok(entry, facts, allowed):
            problems.append(f"sys.path entry outside this environment: {entry}")

    dists = _index(facts)
    strays: dict[str, dict[str, str]] = {}
    for name, dist in dists.items():
        where = dist.get("location") or ""
        # The location's own folders may hold its source tree's metadata; a site-packages
        # under them (another environment kept in the working directory) is still a leak.
        ours = not _in_site_dir(where) and any(_relative(where, a) is not None for a in allowed)
        if _relative(where, prefix) is None and not ours:
            strays.setdefault(where, {})[name] = f"{dist['name']} {dist['version']}"
    for where, found in strays.items():
        count = _plural(len(found), "distributions")
        listed = ", ".join(found.values())
        problems.append(f"{count} from outside this environment, in {where or '?'}: {listed}")

    own = {canonicalize_name(r.name) for r in map(_parse, spec.requirements) if r is not None}
    needed = _closure(spec, dists, facts["markers"])
    skip = own | set(needed) | {name for found in strays.values() for name in found}
    for name, dist in dists.items():
        claimants = sorted(
            other
            for other, names in others_declared.items()
            if other != spec.name and name in {canonicalize_name(n) for n in names}
        )
        if claimants and name not in skip:
            which = "location" if len(claimants) == 1 else "locations"
            problems.append(
                f"{dist['name']} {dist['version']} is importable, but only {which}"
                f" {', '.join(claimants)} declared it and nothing this location declares needs it"
            )
    return _verdict(problems, f"sys.path and {len(dists)} distributions all from this environment")


def _definitions(facts: Facts) -> Verdict:
    error = facts.get("load_error")
    if error:
        return False, str(error).strip() or "the definitions failed to load"
    counts = facts.get("counts") or {}
    return True, ", ".join(_plural(n, kind) for kind, n in counts.items()) or "loaded"
