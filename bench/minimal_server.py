"""A minimal gRPC server with the standard health service: the reference for our code server.

Usage: python minimal_server.py SOCKET_PATH --ready-fd FD [--parent-pid PID]

Binds a Unix socket at SOCKET_PATH, answers Health.Check with SERVING, writes one JSON line
to FD once listening, and serves until SIGTERM or SIGINT. It takes the flags the supervisor
adds to every code server's command line, so that both start the same way (it does not watch
the parent). Runs on CPython 3.8 and later with only the standard library, grpcio and the
project's generated stubs.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from concurrent import futures

import grpc

from supervisor._proto import health_pb2, health_pb2_grpc

USAGE = "usage: minimal_server.py SOCKET_PATH --ready-fd FD [--parent-pid PID]\n"


class Health(health_pb2_grpc.HealthServicer):
    """Answers every Check with SERVING."""

    def Check(self, request, context):
        return health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)


def main(argv: list[str]) -> int:
    """Serve until a stop signal; return the exit code."""
    # Parsed by hand: the reference imports nothing it does not need (no argparse).
    flags = {argv[i]: argv[i + 1] for i in range(1, len(argv) - 1, 2)}
    if (
        len(argv) % 2 == 0
        or set(flags) - {"--ready-fd", "--parent-pid"}
        or "--ready-fd" not in flags
    ):
        sys.stderr.write(USAGE)
        return 2
    socket_path, ready_fd = os.path.abspath(argv[0]), int(flags["--ready-fd"])
    stop = threading.Event()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    health_pb2_grpc.add_HealthServicer_to_server(Health(), server)
    server.add_insecure_port("unix:" + socket_path)
    server.start()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    with os.fdopen(ready_fd, "w") as pipe:
        pipe.write(json.dumps({"pid": os.getpid(), "address": "unix:" + socket_path}) + "\n")
    stop.wait()
    server.stop(0.5).wait()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
