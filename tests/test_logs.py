"""Location logs: a size-capped rotating file, read back across rotations."""

from __future__ import annotations

import io
from pathlib import Path

from supervisor.supervision.logs import Console, RotatingLog, tail


def test_rotation_caps_the_size_and_tail_reads_across_files(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "loc.log"
    log = RotatingLog(path, max_bytes=1000, backups=2)
    for i in range(200):
        log.write(f"line {i:03d} ".encode() + b"x" * 20)
    log.close()
    files = sorted(p.name for p in path.parent.iterdir())
    assert files == ["loc.log", "loc.log.1", "loc.log.2"]
    assert all(p.stat().st_size <= 1000 + 40 for p in path.parent.iterdir())
    last = tail(path, 5)
    assert [line.split()[1] for line in last] == ["195", "196", "197", "198", "199"]
    assert tail(path, 0) == []


def test_console_prefixes_lines_and_has_no_colour_off_a_terminal() -> None:
    stream = io.StringIO()
    console = Console(stream, width=6)
    console.line("alpha", "hello\n")
    console.event("stopping")
    assert stream.getvalue().splitlines() == ["alpha  | hello", "supervisor | stopping"]
