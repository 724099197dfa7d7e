"""Plain-text tables and JSON for the CLI."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Return rows as left-aligned columns under HEADERS."""
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    return "\n".join(lines)


def to_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=False)


def definitions_text(entry: dict[str, Any]) -> str:
    """Render one location's definitions (the `ls` JSON shape) for people."""
    out = [f"location {entry['location']}"]
    if entry["load_error"]:
        out.append("  load error: " + entry["load_error"].rstrip().replace("\n", "\n    "))
        return "\n".join(out)
    assets = entry["assets"]
    if assets:
        rows = [
            (a["key"], a["group"], ", ".join(a["deps"]) or "-", a["description"].split("\n")[0])
            for a in assets
        ]
        out.append(_indent(table(("ASSET", "GROUP", "DEPS", "DESCRIPTION"), rows)))
    else:
        out.append("  no assets")
    if entry["resources"]:
        out.append("  resources: " + ", ".join(entry["resources"]))
    for s in entry["schedules"]:
        out.append(f"  schedule {s['name']}: {s['cron']} -> {', '.join(s['targets'])}")
    if entry.get("jobs"):
        out.append("  jobs: " + ", ".join(entry["jobs"]))
    if entry.get("sensors"):
        out.append("  sensors: " + ", ".join(entry["sensors"]))
    return "\n".join(out)


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())


def size(num_bytes: int) -> str:
    """Return a size for people: 812 B, 3.4 MiB."""
    value = float(num_bytes)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def iso_utc(at: float | None = None, timespec: str = "seconds") -> str:
    """A POSIX time (now by default) as ISO 8601 UTC: 2024-05-01T12:00:03Z, or with
    TIMESPEC "milliseconds" 2024-05-01T12:00:03.250Z. The one formatter of times."""
    moment = datetime.fromtimestamp(time.time() if at is None else at, tz=timezone.utc)
    return moment.isoformat(timespec=timespec).replace("+00:00", "Z")
