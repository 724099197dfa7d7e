"""Start a code server: load the location, bind, report readiness, serve until told to stop."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import socket
import stat
import sys
import threading
import time
from concurrent import futures

import grpc

import supervisor
from supervisor._proto import codeserver_pb2_grpc, health_pb2_grpc
from supervisor.codeserver import health, lifeline, loader
from supervisor.codeserver.servicer import CodeServerServicer

log = logging.getLogger("supervisor.codeserver")

SERVICE_NAME = "supervisor.codeserver.v1.CodeServer"
# Longest path a Unix socket address may have on Linux (sun_path less the NUL).
MAX_SOCKET_PATH = 107
STOP_GRACE_SECONDS = 0.5
EXIT_OK, EXIT_FAILED, EXIT_INTERRUPTED = 0, 1, 130


class StartError(Exception):
    """The server could not start listening."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m supervisor.codeserver",
        description="Serve one code location's Definitions over gRPC.",
    )
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("-m", "--module-name", help="import this module")
    what.add_argument("-f", "--python-file", help="load this file")
    parser.add_argument("-d", "--working-directory", help="put first on sys.path and chdir")
    parser.add_argument("-a", "--attribute", help="the Definitions variable to use")
    parser.add_argument("--location-name", help="defaults to the module name or file stem")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("-p", "--port", type=int, help="listen on TCP (0 picks a free port)")
    where.add_argument("-s", "--socket", help="listen on this Unix socket path")
    parser.add_argument("--host", default="127.0.0.1", help="TCP host (default 127.0.0.1)")
    parser.add_argument(
        "--heartbeat-timeout",
        type=float,
        help="stop when no Heartbeat call came for this many seconds",
    )
    parser.add_argument(
        "--values-dir", help="where asset values are stored (default ./.supervisor/values/NAME)"
    )
    parser.add_argument(
        "--drain-timeout",
        type=float,
        default=30.0,
        help="on stop, how long runs in progress may go on before they are ended (default 30)",
    )
    parser.add_argument("--ready-fd", type=int, help="write readiness here (supervised)")
    parser.add_argument("--parent-pid", type=int, help="stop when this process is gone")
    parser.add_argument("--max-workers", type=int, default=32, help=argparse.SUPPRESS)
    return parser


def address_for(args: argparse.Namespace) -> str:
    """Return the gRPC address to bind, checking Unix socket paths first."""
    if args.socket is None:
        host = args.host
        if ":" in host and not host.startswith("["):
            host = "[" + host + "]"
        return f"{host}:{args.port}"
    path = os.path.abspath(args.socket)
    if len(path.encode()) > MAX_SOCKET_PATH:
        raise StartError(
            f"socket path {path} is {len(path.encode())} bytes long;"
            f" Unix sockets allow {MAX_SOCKET_PATH} at most"
        )
    if os.path.exists(path):
        if not stat.S_ISSOCK(os.stat(path).st_mode):
            raise StartError(f"{path} exists and is not a socket")
        if _socket_answers(path):
            raise StartError(f"another server is listening on {path}")
        os.unlink(path)
    return "unix:" + path


def _socket_answers(path: str) -> bool:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except OSError:
        return False
    finally:
        probe.close()
    return True


def describe_listen(address: str, port: int) -> str:
    if address.startswith("unix:"):
        return "on socket " + address[len("unix:") :]
    return f"on port {port}"


class CodeServer:
    """One running server: its gRPC server, health service, and the reason it stops."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.target = loader.CodeTarget(
            args.module_name,
            os.path.abspath(args.python_file) if args.python_file else None,
            os.path.abspath(args.working_directory) if args.working_directory else None,
            args.attribute,
        )
        self.location_name = args.location_name or self.target.default_location_name()
        self.stop_requested = threading.Event()
        self.stop_reason = ""
        self.exit_code = EXIT_OK
        self.health = health.HealthServicer()
        self.watchdog: lifeline.HeartbeatWatchdog | None = None
        self.servicer: CodeServerServicer | None = None

    def request_stop(self, reason: str, exit_code: int = EXIT_OK) -> None:
        if not self.stop_requested.is_set():
            self.stop_reason = reason
            self.exit_code = exit_code
            self.stop_requested.set()

    def _on_signal(self, signum: int, frame: object) -> None:
        name = signal.Signals(signum).name
        self.request_stop(
            "received " + name, EXIT_INTERRUPTED if signum == signal.SIGINT else EXIT_OK
        )

    def run(self) -> int:
        parent = lifeline.Parent(self.args.parent_pid) if self.args.parent_pid else None
        if parent is not None and not lifeline.ask_for_parent_death_signal(parent):
            log.error("parent process %s is already gone; not starting", parent.pid)
            return EXIT_FAILED
        try:
            address = address_for(self.args)
        except StartError as exc:
            return self._fail(str(exc))
        values_dir = os.path.abspath(
            self.args.values_dir or os.path.join(".supervisor", "values", self.location_name)
        )
        started = time.monotonic()
        if self.target.working_directory and os.path.isdir(self.target.working_directory):
            # Relative paths in user code resolve as they would when run from there.
            os.chdir(self.target.working_directory)
        result = loader.load(self.target)
        load_seconds = time.monotonic() - started
        if result.failure is not None:
            log.error(
                "could not load %s: %s\n%s",
                self.target.describe(),
                result.failure.message,
                result.failure.traceback,
            )
        server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=self.args.max_workers),
            options=[("grpc.so_reuseport", 0)],
        )
        if self.args.heartbeat_timeout:
            self.watchdog = lifeline.HeartbeatWatchdog(
                self.args.heartbeat_timeout, self.request_stop, parent
            )
            self.health.on_check = self.watchdog.beat
        servicer = CodeServerServicer(
            self.location_name,
            supervisor.__version__,
            address,
            result,
            self.request_stop,
            self.watchdog.beat if self.watchdog else None,
            self.target,
            values_dir,
        )
        self.servicer = servicer
        codeserver_pb2_grpc.add_CodeServerServicer_to_server(servicer, server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        try:
            port = _bind(server, address)
        except StartError as exc:
            return self._fail(str(exc))
        server.start()
        if address.startswith("unix:"):
            os.chmod(address[len("unix:") :], 0o600)
        self.health.set("", health.SERVING)
        self.health.set(SERVICE_NAME, health.SERVING)
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._on_signal)
        if self.watchdog is not None:
            self.watchdog.start()
        log.info(
            "Started code server for %s %s in process %s",
            self.target.describe(),
            describe_listen(address, port),
            os.getpid(),
        )
        self._report_ready(
            {
                "pid": os.getpid(),
                "address": address if address.startswith("unix:") else f"{self.args.host}:{port}",
                "load_seconds": round(load_seconds, 4),
                "load_error": result.failure.message if result.failure else None,
            }
        )
        self.stop_requested.wait()
        return self._stop(server, address)

    def _stop(self, server: grpc.Server, address: str) -> int:
        log.info("Stopping code server (%s)", self.stop_reason)
        if self.watchdog is not None:
            self.watchdog.stop()
        self.health.set_all(health.NOT_SERVING)
        self._drain()
        # Whatever user code does in a worker thread, the process ends soon.
        killer = threading.Timer(STOP_GRACE_SECONDS + 2.0, os._exit, (self.exit_code,))
        killer.daemon = True
        killer.start()
        server.stop(STOP_GRACE_SECONDS).wait()
        if address.startswith("unix:"):
            with contextlib.suppress(OSError):
                os.unlink(address[len("unix:") :])
        return self.exit_code

    def _drain(self) -> None:
        """Let runs in progress finish, up to the drain deadline; end the rest as failed."""
        runs = self.servicer.runs if self.servicer else None
        if runs is None or not runs.active():
            return
        timeout = self.args.drain_timeout
        log.info("Draining %d runs for up to %gs", len(runs.active()), timeout)
        deadline = time.monotonic() + timeout
        while runs.active() and time.monotonic() < deadline:
            time.sleep(0.05)
        ended = runs.cancel_all(
            f"the code server was stopped and its drain deadline of {timeout:g}s passed"
        )
        if ended:
            log.info("Ended %d runs at the drain deadline", ended)
        while runs.active() and time.monotonic() < deadline + 5:
            time.sleep(0.05)  # their streams report the failure before the server goes

    def _fail(self, message: str) -> int:
        log.error("%s", message)
        self._report_ready({"pid": os.getpid(), "error": message})
        return EXIT_FAILED

    def _report_ready(self, message: dict) -> None:
        if self.args.ready_fd is None:
            return
        try:
            with os.fdopen(self.args.ready_fd, "w") as pipe:
                pipe.write(json.dumps(message) + "\n")
        except OSError as exc:
            log.warning("could not report readiness on fd %s: %s", self.args.ready_fd, exc)


def _bind(server: grpc.Server, address: str) -> int:
    try:
        port = server.add_insecure_port(address)
    except RuntimeError as exc:
        raise StartError(f"cannot listen on {address}: {exc}") from None
    if port == 0 and not address.startswith("unix:"):
        raise StartError(f"cannot listen on {address}: address in use or not allowed")
    return port


def configure_logging() -> None:
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s - supervisor.codeserver - %(levelname)s - %(message)s",
    )


def main(argv: list[str] | None = None) -> int:
    """Run one code server until it is stopped; return the exit code."""
    args = build_parser().parse_args(argv)
    configure_logging()
    return CodeServer(args).run()
