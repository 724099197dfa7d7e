"""Running a real `supervisor up` in tests: start it, read its status, wait on states."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from supervisor._proto_host import control_pb2 as pb
from supervisor.control.client import ControlClient
from supervisor.control.codeserver import CodeServerClient
from supervisor.control.snapshot import status_to_dict
from supervisor.errors import SupervisorError
from tests.helpers import wait_for

SUPERVISOR = str(Path(sys.executable).parent / "supervisor")
CLI_TIMEOUT = 300.0


def cli(
    *args: str, timeout: float = CLI_TIMEOUT, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the real `supervisor ARGS...` to its end; its exit code and text output."""
    return subprocess.run(
        [SUPERVISOR, *args], capture_output=True, text=True, timeout=timeout, cwd=cwd
    )


class Up:
    """A `supervisor up -w FILE` child process and ways to look at it."""

    def __init__(
        self,
        workspace_file: Path,
        *extra: str,
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.workspace_file = workspace_file
        self.log_path = workspace_file.parent / f"up-{time.monotonic_ns()}.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [SUPERVISOR, "up", "-w", str(workspace_file), *extra],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=cwd,
            env=None if env is None else {**os.environ, **env},
        )

    def log(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def status(self) -> dict[str, dict[str, Any]]:
        """Each location's `status --json` entry, by name ({} while nothing answers)."""
        try:
            with ControlClient(self.workspace_file, timeout=10) as client:
                reply = client.call("Status", pb.StatusRequest())
        except SupervisorError:
            return {}
        return {s.name: status_to_dict(s) for s in reply.locations}

    def wait(
        self, name: str, condition: Callable[[dict[str, Any]], bool], timeout: float, what: str
    ) -> dict[str, Any]:
        """Wait until location NAME's status satisfies CONDITION; fail showing what was seen."""

        def check() -> dict[str, Any] | None:
            assert self.proc.poll() is None, (
                f"supervisor exited {self.proc.returncode}:\n{self.log()}"
            )
            entry = self.status().get(name)
            return entry if entry and condition(entry) else None

        return wait_for(
            check, timeout, f"{name}: {what}", lambda: f"{self.status().get(name)}\n{self.log()}"
        )

    def wait_state(self, name: str, state: str, timeout: float = 60) -> dict[str, Any]:
        return self.wait(name, lambda e: e["state"] == state, timeout, f"state {state}")

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 60) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signum)
        try:
            return self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            self._log.close()


class HealthMonitor:
    """Calls a code server's health check in a loop on a thread, counting failures."""

    def __init__(self, address: str, period: float = 0.1) -> None:
        self.address = address
        self.period = period
        self.calls = 0
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with CodeServerClient(self.address, "sibling", timeout=2.0) as client:
            while not self._stop.is_set():
                try:
                    status = client.health()
                    if status != "SERVING":
                        self.failures.append(status)
                except SupervisorError as exc:
                    self.failures.append(str(exc))
                self.calls += 1
                self._stop.wait(self.period)

    def stop(self) -> None:
        self._stop.set()
        # Its calls time out after 2 s: it ends within one of them.
        self._thread.join(5)
        assert not self._thread.is_alive(), "the health monitor did not stop"


def dashboard_entry(workspace_file: Path, timeout: float = 60) -> dict[str, Any]:
    """`supervisor ui --json` once the dashboard listens (it starts after the locations)."""
    import json

    def shown() -> dict[str, Any] | None:
        done = cli("ui", "--json", "-w", str(workspace_file), timeout=30)
        return json.loads(done.stdout) if done.returncode == 0 else None

    found = wait_for(
        shown, timeout, "the dashboard's address", lambda: cli("ui", "-w", str(workspace_file))
    )
    return found  # type: ignore[return-value]
