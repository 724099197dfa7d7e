"""TLS and exposure: `api grpc --tls-cert/--tls-key`, `ls --address --tls`, the warning for a
plaintext port beyond loopback; real servers, a certificate made with the openssl command."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from supervisor.codeserver.listen import is_loopback
from supervisor.control.codeserver import CodeServerClient, TlsSettings, open_channel
from supervisor.errors import CodeServerError, SupervisorError
from tests.helpers import EXAMPLES, wait_for
from tests.uphelp import SUPERVISOR, Up

STARTED = re.compile(r"Started code server for .* on port (\d+) in process (\d+)")
WARNING = "without TLS"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0
CLI_TIMEOUT = 60.0
EMPTY = str(EXAMPLES / "empty_location.py")


class Certs:
    """A test CA and a server certificate it signed, valid for 127.0.0.1 and localhost."""

    def __init__(self, root: Path) -> None:
        self.ca = root / "ca.pem"
        self.cert = root / "server.pem"
        self.key = root / "server.key"
        self.other_key = root / "other.key"


def _openssl(*args: str) -> None:
    result = subprocess.run(["openssl", *args], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"openssl {' '.join(args)}:\n{result.stderr}"


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    if shutil.which("openssl") is None:
        raise AssertionError("these tests make their certificates with `openssl`; none on PATH")
    root = tmp_path_factory.mktemp("tls")
    made = Certs(root)
    # Elliptic-curve keys: made in milliseconds where RSA takes a while on a busy machine.
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    ca_key = root / "ca.key"
    ca = ("-x509", "-days", "2", "-subj", "/CN=workspace-supervisor test CA")
    _openssl("req", *ca, *ec, "-keyout", str(ca_key), "-out", str(made.ca))
    server = ("-subj", "/CN=localhost", "-keyout", str(made.key))
    _openssl("req", *ec, *server, "-out", str(root / "server.csr"))
    (root / "ext.cnf").write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
        "basicConstraints=CA:FALSE\n"
        "extendedKeyUsage=serverAuth\n"
    )
    _openssl(
        "x509",
        "-req",
        "-in",
        str(root / "server.csr"),
        "-CA",
        str(made.ca),
        "-CAkey",
        str(ca_key),
        "-set_serial",
        "1",
        "-days",
        "2",
        "-extfile",
        str(root / "ext.cnf"),
        "-out",
        str(made.cert),
    )
    other = ("-subj", "/CN=other", "-keyout", str(made.other_key))
    _openssl("req", *ec, *other, "-out", str(root / "other.csr"))
    return made


class Served:
    """A `supervisor api grpc` process; its stderr lines are collected as they come."""

    def __init__(self, *args: str) -> None:
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            [SUPERVISOR, "api", "grpc", "-f", EMPTY, "--port", "0", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        # Drained to the end, so that gRPC's own log lines never fill the pipe.
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))

    def seen(self) -> str:
        return f"exit code {self.proc.poll()}, stderr: {self.lines}"

    def wait_started(self) -> int:
        """Wait for the "Started code server" line; return the port it names."""

        def started() -> re.Match[str] | None:
            for line in list(self.lines):
                match = STARTED.search(line)
                if match:
                    return match
            assert self.proc.poll() is None, f"the server exited: {self.seen()}"
            return None

        match = wait_for(started, START_TIMEOUT, "the Started code server line", self.seen)
        assert isinstance(match, re.Match)
        assert int(match.group(2)) == self.proc.pid, self.seen()
        return int(match.group(1))

    def before_started(self) -> list[str]:
        lines = list(self.lines)
        ends = [i for i, line in enumerate(lines) if STARTED.search(line)]
        return lines[: ends[0]] if ends else lines

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(STOP_TIMEOUT)
        self._reader.join(STOP_TIMEOUT)


@pytest.fixture(scope="module")
def tls_server(certs: Certs) -> Iterator[tuple[Served, int]]:
    """A TLS server bound to every interface: TLS makes that fine, so no warning."""
    served = Served("--host", "0.0.0.0", "--tls-cert", str(certs.cert), "--tls-key", str(certs.key))
    try:
        yield served, served.wait_started()
    finally:
        served.stop()


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SUPERVISOR, *args],
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
        stdin=subprocess.DEVNULL,
    )


def test_tls_client_with_the_ca_lists_definitions(
    certs: Certs, tls_server: tuple[Served, int]
) -> None:
    served, port = tls_server
    tls = TlsSettings.from_ca_file(certs.ca)
    for host in ("127.0.0.1", "localhost"):
        with CodeServerClient(f"{host}:{port}", "tls", timeout=10, tls=tls) as client:
            reply = client.list_definitions()
        assert [a.key for a in reply.assets] == ["empty_data"], served.seen()
    assert not [line for line in served.before_started() if WARNING in line], served.seen()


def test_plaintext_client_of_a_tls_server_fails_clearly(tls_server: tuple[Served, int]) -> None:
    served, port = tls_server
    with (
        CodeServerClient(f"127.0.0.1:{port}", "plain", timeout=10) as client,
        pytest.raises(CodeServerError) as caught,
    ):
        client.list_definitions()
    message = str(caught.value)
    assert "ListDefinitions failed" in message and f"127.0.0.1:{port}" in message, message
    assert "connect with TLS" in message, f"{message}; server: {served.seen()}"


def test_ls_address_with_tls_and_the_ca(certs: Certs, tls_server: tuple[Served, int]) -> None:
    served, port = tls_server
    address = f"127.0.0.1:{port}"
    result = run_cli("ls", "--address", address, "--tls", "--tls-ca", str(certs.ca), "--json")
    assert result.returncode == 0, f"{result.stderr}; server: {served.seen()}"
    entries = json.loads(result.stdout)
    assert [a["key"] for a in entries[0]["assets"]] == ["empty_data"], result.stdout
    # The system's roots do not know the test CA: a clear handshake failure, not a hang.
    result = run_cli("ls", "--address", address, "--tls", "--timeout", "10")
    assert result.returncode == 1, result.stderr
    assert "TLS handshake failed" in result.stderr, result.stderr


def test_binding_all_interfaces_without_tls_warns_once() -> None:
    served = Served("--host", "0.0.0.0")
    try:
        served.wait_started()
        warnings = [line for line in served.before_started() if WARNING in line]
        assert len(warnings) == 1, served.seen()
        assert "0.0.0.0" in warnings[0] and "--tls-cert" in warnings[0], warnings[0]
        assert "127.0.0.1" in warnings[0], warnings[0]
    finally:
        served.stop()


@pytest.mark.parametrize(
    ("given", "missing"), [("--tls-cert", "--tls-key"), ("--tls-key", "--tls-cert")]
)
def test_one_tls_flag_without_the_other_is_bad_usage(
    certs: Certs, given: str, missing: str
) -> None:
    path = certs.cert if given == "--tls-cert" else certs.key
    result = run_cli("api", "grpc", "-f", EMPTY, "--port", "0", given, str(path))
    assert result.returncode == 2, result.stderr
    assert f"{given} needs {missing}" in result.stderr, result.stderr


def test_tls_on_a_unix_socket_is_refused(certs: Certs, tmp_path: Path) -> None:
    socket = str(tmp_path / "cs.sock")
    tls = ("--tls-cert", str(certs.cert), "--tls-key", str(certs.key))
    result = run_cli("api", "grpc", "-f", EMPTY, "--socket", socket, *tls)
    assert result.returncode == 2, result.stderr
    assert "--socket" in result.stderr and "TCP" in result.stderr, result.stderr
    assert not Path(socket).exists()


def test_unreadable_or_wrong_tls_files_are_named(certs: Certs, tmp_path: Path) -> None:
    missing = tmp_path / "missing.pem"
    cases = [
        (missing, certs.key, f"--tls-cert {missing}: cannot read it"),
        (certs.key, certs.key, f"--tls-cert {certs.key}: not a PEM certificate"),
        (certs.cert, certs.cert, f"--tls-key {certs.cert}: not a PEM private key"),
        (certs.cert, certs.other_key, "the key does not belong to the certificate"),
    ]
    for cert, key, expected in cases:
        tls = ("--tls-cert", str(cert), "--tls-key", str(key))
        result = run_cli("api", "grpc", "-f", EMPTY, "--port", "0", *tls)
        assert result.returncode == 2, result.stderr
        assert expected in result.stderr, result.stderr


def test_the_code_server_itself_checks_its_tls_flags(certs: Certs) -> None:
    """`python -m supervisor.codeserver` (what `api grpc` runs) refuses the same misuse."""
    base = [sys.executable, "-m", "supervisor.codeserver", "-f", EMPTY]
    result = subprocess.run(
        [*base, "--port", "0", "--tls-cert", str(certs.cert)],
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
    )
    assert result.returncode == 2 and "--tls-cert needs --tls-key" in result.stderr, result.stderr


def test_is_loopback() -> None:
    for host in ("127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost", "LOCALHOST"):
        assert is_loopback(host), host
    for host in ("0.0.0.0", "::", "192.168.1.20", "10.0.0.1", "example.com", "fe80::1"):
        assert not is_loopback(host), host


def test_tls_settings_name_a_bad_ca_file(certs: Certs, tmp_path: Path) -> None:
    assert TlsSettings.from_ca_file(None) == TlsSettings(None)
    assert TlsSettings.from_ca_file(certs.ca).root_certificates == certs.ca.read_bytes()
    with pytest.raises(SupervisorError, match=r"missing\.pem: cannot read it"):
        TlsSettings.from_ca_file(tmp_path / "missing.pem")
    with pytest.raises(SupervisorError, match=r"server\.key: not a PEM certificate"):
        TlsSettings.from_ca_file(certs.key)
    with pytest.raises(SupervisorError, match="TCP addresses"):
        open_channel(str(tmp_path / "cs.sock"), TlsSettings())


def test_a_grpc_server_entry_with_ssl_true_connects_with_tls(
    certs: Certs, tls_server: tuple[Served, int], tmp_path: Path
) -> None:
    """Dagster's `ssl: true`: `up` reaches the TLS server, trusting the roots gRPC is given
    (GRPC_DEFAULT_SSL_ROOTS_FILE_PATH, here the test CA); the same server without ssl is
    never reached."""
    served, port = tls_server
    workspace = tmp_path / "workspace.yaml"
    workspace.write_text(
        "load_from:\n"
        f"  - grpc_server: {{host: localhost, port: {port}, ssl: true,"
        " additional_metadata: {team: data, tier: 2}}\n"
        f"  - grpc_server: {{host: localhost, port: {port}, location_name: plain}}\n"
    )
    up = Up(workspace, env={"GRPC_DEFAULT_SSL_ROOTS_FILE_PATH": str(certs.ca)})
    try:
        entry = up.wait_state(f"grpc:localhost:{port}", "SERVING", timeout=START_TIMEOUT)
        assert entry["pid"] == served.proc.pid, up.log()
        assert entry["metadata"] == {"team": "data", "tier": "2"}, entry
        plain = up.wait(
            "plain", lambda e: e["state"] == "UNREACHABLE", START_TIMEOUT, "UNREACHABLE"
        )
        assert "if that server serves TLS, connect with TLS" in plain["last_error"], plain
    finally:
        assert up.stop() == 0, up.log()
