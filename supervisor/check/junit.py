"""`supervisor check --junit`: the results as JUnit XML, the report format CI systems read."""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

from supervisor.check.verdicts import CheckResult

# Characters XML 1.0 cannot hold at all, escaped or not (ANSI colour codes in a traceback).
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _text(value: str) -> str:
    return _NOT_XML.sub("\ufffd", value)


def _seconds(value: float) -> str:
    return f"{value:.3f}"


def write_junit(results: Sequence[CheckResult], path: Path, seconds: float = 0.0) -> None:
    """Write RESULTS to PATH: a testsuite per location, a testcase per check.

    Each testcase's time is its check's, a suite's the sum of its cases, and the whole
    report's SECONDS, the wall time of the run (locations are checked side by side).
    """
    by_location: dict[str, list[CheckResult]] = {}
    for result in results:
        by_location.setdefault(result.location, []).append(result)
    root = ET.Element(
        "testsuites",
        name="supervisor check",
        tests=str(len(results)),
        failures=str(sum(not r.ok for r in results)),
        errors="0",
        time=_seconds(seconds),
    )
    for location, cases in by_location.items():
        spent = sum(r.seconds for r in cases)
        suite = ET.SubElement(
            root,
            "testsuite",
            name=_text(location),
            tests=str(len(cases)),
            failures=str(sum(not r.ok for r in cases)),
            errors="0",
            skipped="0",
            time=_seconds(spent),
        )
        for result in cases:
            case = ET.SubElement(
                suite,
                "testcase",
                classname=_text(f"supervisor.check.{location}"),
                name=result.check,
                time=_seconds(result.seconds),
            )
            detail = _text(result.detail)
            if result.ok:
                ET.SubElement(case, "system-out").text = detail
            else:
                lines = detail.strip().splitlines()
                failure = ET.SubElement(
                    case, "failure", message=lines[0] if lines else "failed", type="CheckFailed"
                )
                failure.text = detail
    tree = ET.ElementTree(root)
    ET.indent(tree)
    _write_atomically(tree, path)


def _write_atomically(tree: ET.ElementTree, path: Path) -> None:
    """Write TREE beside PATH and rename it into place: a reader never sees half a report."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-")
    try:
        with os.fdopen(fd, "wb") as f:
            tree.write(f, encoding="utf-8", xml_declaration=True)
            f.write(b"\n")
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide the report from a CI uploader
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
