"""Benchmark: the fault table. For each kind of faulty location: the state it ends in, the
reason recorded, the time from the fault to the supervisor's reaction, and the calls a
healthy sibling answered meanwhile.

Runs a real `supervisor up` on the fault fixtures of tests/fixtures/faults/ (each a real
code server that segfaults, exits, hangs, blows its memory limit, fails or hangs at import,
or crash-loops) beside a healthy location, on the host interpreter. Times come from the
supervisor's own transition history: for a fault after the start, from SERVING (the fixtures
fire their fault the moment they have reported ready) to the move that reacts (BACKOFF,
UNHEALTHY, FATAL); for a fault at import, from STARTING to that move. The healthy sibling is
called (Health.Check) in a loop the whole time; every failed call is counted.
--smoke: a shorter watch (the same faults).

Usage: .venv/bin/python bench/faults.py [--watch SECONDS] [--json] [--smoke]
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import shutil  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from dataclasses import asdict, dataclass  # noqa: E402
from typing import Any  # noqa: E402

from bench import common  # noqa: E402
from supervisor._proto_host import control_pb2 as pb  # noqa: E402
from supervisor.control.codeserver import CodeServerClient  # noqa: E402
from supervisor.errors import SupervisorError  # noqa: E402

FAULTS = REPO / "tests" / "fixtures" / "faults"
# Location name -> (fixture, extra fields).
LOCATIONS: dict[str, tuple[str, dict[str, object]]] = {
    "segfault": ("segfault_after_start.py", {}),
    "exit3": ("exit_3_after_start.py", {}),
    "hang": ("hang_after_start.py", {}),
    "memory": ("memory_blowup.py", {"memory_limit": "200MiB"}),
    "import_error": ("raise_on_import.py", {}),
    "import_hang": ("hang_on_import.py", {"startup_timeout": 1.5}),
    "crash_loop": ("exit_3_on_import.py", {"restart": "{max_restarts: 3, window: 600}"}),
}
HEAD = (
    "defaults:\n"
    "  heartbeat_timeout: 10\n"
    "  health: {interval: 0.3, timeout: 1.0, failures: 3}\n"
    "  restart: {backoff_initial: 0.5, backoff_max: 2}\n"
)
UP_TIMEOUT = 300.0
SIBLING_PERIOD = 0.05
SMOKE = {"watch": 6.0}


@dataclass
class Row:
    """One fault: how the supervisor saw it."""

    location: str
    state: str
    reason: str
    detect_seconds: float | None  # from the fault (SERVING, or STARTING at import) to the reaction


class Sibling(threading.Thread):
    """Calls the healthy location's Health.Check in a loop, counting what failed."""

    def __init__(self, address: str) -> None:
        super().__init__(daemon=True)
        self.address = address
        self.calls = 0
        self.failed = 0
        self.done = threading.Event()

    def run(self) -> None:
        with CodeServerClient(self.address, "healthy", timeout=2.0) as client:
            while not self.done.is_set():
                try:
                    if client.health() != "SERVING":
                        self.failed += 1
                except SupervisorError:
                    self.failed += 1
                self.calls += 1
                self.done.wait(SIBLING_PERIOD)


FAILURES = ("BACKOFF", "UNHEALTHY", "FATAL", "LOAD_ERROR")


def reaction(status: pb.LocationStatus) -> tuple[str, float | None]:
    """The supervisor's first reaction to the fault in STATUS's history: its reason, and the
    delay from the move before it (SERVING for a fault after the start, STARTING for one at
    import) to that reaction."""
    began = None
    for transition in status.history:
        if transition.to_state in ("SERVING", "STARTING"):
            began = transition.at
        elif transition.to_state in FAILURES and began is not None:
            return transition.reason.splitlines()[0], transition.at - began
    return "", None


def measure(watch: float) -> dict[str, Any]:
    folder = common.private_tempdir()
    try:
        entries = [common.python_file(FAULTS / "healthy.py", "healthy")]
        for name, (fixture, fields) in LOCATIONS.items():
            entries.append(common.python_file(FAULTS / fixture, name, **fields))
        workspace = common.write_workspace(folder, entries, envs=folder / "envs", head=HEAD)
        common.build_env(workspace)
        up = common.Up(workspace)
        try:
            client = common.connect(up, UP_TIMEOUT)
            healthy, _ = common.wait_location(
                up, client, "healthy", common.is_serving, UP_TIMEOUT, "SERVING"
            )
            sibling = Sibling(healthy.address)
            sibling.start()
            time.sleep(watch)  # the measurement window: the faults run their course
            sibling.done.set()
            sibling.join(10)
            reply = client.call("Status", pb.StatusRequest(), timeout=common.CALL_TIMEOUT)
            rows = []
            for status in reply.locations:
                if status.name not in LOCATIONS:
                    continue
                reason, delay = reaction(status)
                rows.append(Row(status.name, status.state, reason, delay))
            client.__exit__()
        finally:
            common.stop_up(up)
        return {
            "faults": [asdict(r) for r in rows],
            "sibling_calls": sibling.calls,
            "sibling_failed": sibling.failed,
            "supervisor_alive": True,
        }
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def report(result: dict[str, Any]) -> None:
    print("fault table (fault -> state now, time to the first reaction, its reason):")
    for row in result["faults"]:
        delay = "-" if row["detect_seconds"] is None else f"{row['detect_seconds'] * 1000:.0f} ms"
        print(f"  {row['location']:<13} {row['state']:<11} {delay:>8}  {row['reason'][:90]}")
    print(
        f"healthy sibling: {result['sibling_calls']} calls, {result['sibling_failed']} failed"
        " (goal 0)"
    )
    print(f"Goal (every fault handled, the sibling never failed): {common.verdict(met(result))}")


def met(result: dict[str, Any]) -> bool:
    handled = all(row["detect_seconds"] is not None for row in result["faults"])
    return handled and result["sibling_failed"] == 0 and result["sibling_calls"] > 0


def main(argv: list[str] | None = None) -> int:
    parser = common.parser_for(__doc__)
    parser.add_argument("--watch", type=float, default=15.0, help="seconds to let faults run (15)")
    args = common.parse(parser, argv, SMOKE)
    result = measure(args.watch)
    return common.finish(result, args, report, met(result))


if __name__ == "__main__":
    sys.exit(main())
