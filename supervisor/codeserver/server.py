"""Start a code server: load the location, bind, report readiness, serve until told to stop."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import sys
import threading
import time
from concurrent import futures

import grpc

import supervisor
from supervisor._proto import codeserver_pb2_grpc, health_pb2_grpc
from supervisor.codeserver import health, lifeline, loader
from supervisor.codeserver.listen import (
    StartError,
    address_for,
    bind,
    describe_listen,
    exposure_warning,
    is_loopback,
    read_tls_files,
)
from supervisor.codeserver.servicer import CodeServerServicer

# After the drain deadline, how long ended runs have to report their failure.
DRAIN_REPORT_SECONDS = 5.0
log = logging.getLogger("supervisor.codeserver")

SERVICE_NAME = "supervisor.codeserver.v1.CodeServer"
# Longest path a Unix socket address may have on Linux (sun_path less the NUL).
STOP_GRACE_SECONDS = 0.5
EXIT_OK, EXIT_FAILED, EXIT_INTERRUPTED = 0, 1, 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m supervisor.codeserver",
        description="Serve one code location's Definitions over gRPC.",
    )
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("-m", "--module-name", help="import this module")
    what.add_argument("-f", "--python-file", help="load this file")
    what.add_argument(
        "--autoload-defs-module",
        help="import this module and all its submodules; gather what they define",
    )
    parser.add_argument("-d", "--working-directory", help="put first on sys.path and chdir")
    parser.add_argument("-a", "--attribute", help="the Definitions variable to use")
    parser.add_argument(
        "--location-name", help="defaults to Dagster's: the module or file name[:attribute]"
    )
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("-p", "--port", type=int, help="listen on TCP (0 picks a free port)")
    where.add_argument("-s", "--socket", help="listen on this Unix socket path")
    parser.add_argument("--host", default="127.0.0.1", help="TCP host (default 127.0.0.1)")
    parser.add_argument(
        "--tls-cert", metavar="FILE", help="serve TLS on the TCP port: this PEM certificate chain"
    )
    parser.add_argument("--tls-key", metavar="FILE", help="the PEM private key of --tls-cert")
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
    parser.add_argument(
        "--no-parent-death-signal",
        action="store_true",
        help="for tests: do not ask the kernel for a signal when the parent dies, so that"
        " the heartbeat watchdog alone notices",
    )
    parser.add_argument("--max-workers", type=int, default=32, help=argparse.SUPPRESS)
    parser.add_argument(
        "--warm-workers",
        type=int,
        choices=(0, 1),
        default=1,
        help="keep a run worker started, the code imported, for the next run (default 1)",
    )
    return parser


def check_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse flag combinations argparse cannot express (exits 2, as parse errors do)."""
    if (args.tls_cert is None) != (args.tls_key is None):
        given, missing = (
            ("--tls-cert", "--tls-key") if args.tls_key is None else ("--tls-key", "--tls-cert")
        )
        parser.error(f"{given} needs {missing}: give both or neither")
    if args.tls_cert is not None and args.socket is not None:
        parser.error(
            "--tls-cert/--tls-key apply to a TCP port (--port) only, not to --socket:"
            " a Unix socket is reached only on this machine, guarded by its file mode"
        )


class CodeServer:
    """One running server: its gRPC server, health service, and the reason it stops."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.target = loader.CodeTarget(
            args.module_name or args.autoload_defs_module,
            os.path.abspath(args.python_file) if args.python_file else None,
            os.path.abspath(args.working_directory) if args.working_directory else None,
            args.attribute,
            autoload=bool(args.autoload_defs_module),
        )
        self.location_name = args.location_name or self.target.default_location_name()
        self.stop_requested = threading.Event()
        self.stop_reason = ""
        self.exit_code = EXIT_OK
        self.health = health.HealthServicer()
        self.watchdog: lifeline.HeartbeatWatchdog | None = None
        self.servicer: CodeServerServicer | None = None
        self.parent: lifeline.Parent | None = None

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
        if not self._hold_parent():
            return EXIT_FAILED
        try:
            address = address_for(self.args)
            tls = (
                read_tls_files(self.args.tls_cert, self.args.tls_key)
                if self.args.tls_cert
                else None
            )
        except StartError as exc:
            return self._fail(str(exc))
        started = time.monotonic()
        result = self._load()
        load_seconds = time.monotonic() - started
        server = self._make_server(address, result)
        try:
            port = bind(server, address, tls)
        except StartError as exc:
            return self._fail(str(exc))
        if tls is None and not address.startswith("unix:") and not is_loopback(self.args.host):
            log.warning("%s", exposure_warning(self.args.host, port))
        self._start(server, address)
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
        if self.servicer is not None:
            self.servicer.warm.start()
        self.stop_requested.wait()
        return self._stop(server, address)

    def _hold_parent(self) -> bool:
        """Tie our life to our parent's; False when it is already gone."""
        parent = lifeline.Parent(self.args.parent_pid) if self.args.parent_pid else None
        if parent is not None:
            if self.args.no_parent_death_signal:
                alive = parent.is_alive()
            else:
                alive = lifeline.ask_for_parent_death_signal(parent)
            if not alive:
                log.error("parent process %s is already gone; not starting", parent.pid)
                return False
        self.parent = parent
        # Before user code runs: a daemon it double-forks stays ours to end when we stop.
        lifeline.become_subreaper()
        return True

    def _load(self) -> loader.LoadResult:
        """Import the location's code (from its working directory); a failure is kept."""
        if self.target.working_directory and os.path.isdir(self.target.working_directory):
            # Relative paths in user code resolve as they would when run from there.
            os.chdir(self.target.working_directory)
        result = loader.load(self.target)
        if result.failure is not None:
            log.error(
                "could not load %s: %s\n%s",
                self.target.describe(),
                result.failure.message,
                result.failure.traceback,
            )
        return result

    def _make_server(self, address: str, result: loader.LoadResult) -> grpc.Server:
        """The gRPC server with our services (and the heartbeat watchdog, when asked for)."""
        values_dir = os.path.abspath(
            self.args.values_dir or os.path.join(".supervisor", "values", self.location_name)
        )
        server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=self.args.max_workers),
            options=[("grpc.so_reuseport", 0)],
        )
        if self.args.heartbeat_timeout:
            self.watchdog = lifeline.HeartbeatWatchdog(
                self.args.heartbeat_timeout, self.request_stop, self.parent
            )
            self.health.on_check = self.watchdog.beat
        self.servicer = CodeServerServicer(
            self.location_name,
            supervisor.__version__,
            address,
            result,
            self.request_stop,
            self.watchdog.beat if self.watchdog else None,
            self.target,
            values_dir,
            self.args.warm_workers,
            self.health.beats,
        )
        codeserver_pb2_grpc.add_CodeServerServicer_to_server(self.servicer, server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        return server

    def _start(self, server: grpc.Server, address: str) -> None:
        """Serve, private on a socket, healthy, with our signal handlers and watchdog."""
        server.start()
        if address.startswith("unix:"):
            os.chmod(address[len("unix:") :], 0o600)
        self.health.set("", health.SERVING)
        self.health.set(SERVICE_NAME, health.SERVING)
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._on_signal)
        if self.watchdog is not None:
            self.watchdog.start()

    def _stop(self, server: grpc.Server, address: str) -> int:
        log.info("Stopping code server (%s)", self.stop_reason)
        if self.watchdog is not None:
            self.watchdog.stop()
        self.health.set_all(health.NOT_SERVING)
        if self.parent is not None and not self.parent.is_alive():
            # Nobody is left to hear how runs end: end them now, not at the drain deadline.
            ended = self.servicer.runs.cancel_all("the supervisor is gone") if self.servicer else 0
            if ended:
                log.info("Ended %d runs: the supervisor is gone", ended)
        else:
            self._drain()
        # Whatever user code does in a worker thread, the process ends soon.
        killer = threading.Timer(STOP_GRACE_SECONDS + 2.0, os._exit, (self.exit_code,))
        killer.daemon = True
        killer.start()
        self.health.close()  # a Beats call ends only when told: the grace is for the others
        server.stop(STOP_GRACE_SECONDS).wait()
        if self.servicer is not None:
            self.servicer.warm.close()
        # Run workers and whatever user code started (adopted as a subreaper) end with us.
        lifeline.end_descendants()
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
        if runs.wait_idle(deadline):
            return
        ended = runs.cancel_all(
            f"the code server was stopped and its drain deadline of {timeout:g}s passed"
        )
        if ended:
            log.info("Ended %d runs at the drain deadline", ended)
        # Their streams report the failure before the server goes.
        runs.wait_idle(deadline + DRAIN_REPORT_SECONDS)

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


def configure_logging() -> None:
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s - supervisor.codeserver - %(levelname)s - %(message)s",
    )


def main(argv: list[str] | None = None) -> int:
    """Run one code server until it is stopped; return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    check_args(parser, args)
    configure_logging()
    return CodeServer(args).run()
