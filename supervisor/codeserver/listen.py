"""Where a code server listens: its address (a Unix socket or a TCP port), TLS, and the
warning when it is exposed beyond this machine without TLS."""

from __future__ import annotations

import argparse
import ipaddress
import os
import socket
import ssl
import stat

import grpc

MAX_SOCKET_PATH = 107


class StartError(Exception):
    """The server could not start listening."""


def read_tls_files(cert_file: str, key_file: str) -> tuple[bytes, bytes]:
    """Read the certificate chain and private key, checking that both are PEM."""
    cert = _read_pem(cert_file, "--tls-cert", "CERTIFICATE")
    key = _read_pem(key_file, "--tls-key", "PRIVATE KEY")
    # gRPC only says "failed to bind" for a key that does not fit; the ssl module says why.
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(cert_file, key_file)
    except ssl.SSLError as exc:
        if exc.reason == "KEY_VALUES_MISMATCH":
            why = "the key does not belong to the certificate"
        else:
            why = f"OpenSSL cannot load them ({exc.reason or exc})"
        raise StartError(f"--tls-cert {cert_file} with --tls-key {key_file}: {why}") from None
    return cert, key


def _read_pem(path: str, flag: str, kind: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise StartError(f"{flag} {path}: cannot read it: {exc.strerror or exc}") from None
    labels = [
        line.strip().strip(b"-")[len(b"BEGIN ") :].decode("ascii", "replace")
        for line in data.splitlines()
        if line.startswith(b"-----BEGIN ")
    ]
    if not any(label.endswith(kind) for label in labels):
        raise StartError(f"{flag} {path}: not a PEM {kind.lower()} (no '-----BEGIN {kind}-----')")
    if any("ENCRYPTED" in label for label in labels) or b"Proc-Type: 4,ENCRYPTED" in data:
        raise StartError(f"{flag} {path}: the key is encrypted; gRPC needs it unencrypted")
    return data


def is_loopback(host: str) -> bool:
    """True when HOST is reachable from this machine only (127.0.0.0/8, ::1, localhost)."""
    host = host.strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name other than localhost may resolve to any interface


def exposure_warning(host: str, port: int) -> str:
    """The warning for a plaintext TCP port bound beyond loopback."""
    return (
        f"This code server listens on {host}:{port} without TLS: anyone who can reach"
        " that address can list this location's definitions, run its code (Materialize)"
        " and shut it down, and every call crosses the network in clear text. Bind"
        " 127.0.0.1 (the default --host) to keep it on this machine, or serve TLS with"
        " --tls-cert FILE --tls-key FILE."
    )


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


def bind(server: grpc.Server, address: str, tls: tuple[bytes, bytes] | None = None) -> int:
    try:
        if tls is None:
            port = server.add_insecure_port(address)
        else:
            credentials = grpc.ssl_server_credentials([(tls[1], tls[0])])
            port = server.add_secure_port(address, credentials)
    except RuntimeError as exc:
        raise StartError(f"cannot listen on {address}: {exc}") from None
    if port == 0 and not address.startswith("unix:"):
        raise StartError(f"cannot listen on {address}: address in use or not allowed")
    return port
