"""Fuzzing the edges: random workspace files at the parser, random bytes and random
valid-shaped messages at a code server and at the control socket of a running `up`.

The only outcomes allowed are a parsed workspace or a WorkspaceError naming the file,
a gRPC error status or a reply, and afterwards a server that still answers; never a
traceback. Each test runs a bounded number of examples so the file stays quick.
"""

from __future__ import annotations

import contextlib
import dataclasses
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml
from google.protobuf.message import DecodeError
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from supervisor._proto import codeserver_pb2 as cs
from supervisor._proto import health_pb2
from supervisor._proto_host import control_pb2 as pb
from supervisor.control.codeserver import CodeServerClient
from supervisor.errors import WorkspaceError
from supervisor.launch.blocking import BlockingServer, start_blocking
from supervisor.launch.command import code_server_command
from supervisor.supervision.statefile import control_socket
from supervisor.workspace import (
    WorkspaceSpec,
    check_paths,
    convert,
    envs_dir_problem,
    load_workspace,
)
from supervisor.workspace.specs import KINDS as SPEC_KINDS
from supervisor.workspace.specs import HealthSpec, RestartSpec
from tests.helpers import EXAMPLES, remove, short_tempdir
from tests.uphelp import SUPERVISOR, Up

# Each call's own deadline: an answer (reply or error status) comes well within it.
CALL_SECONDS = 10.0
FUZZ = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

# --- random workspace files ------------------------------------------------------------

# The parser's own vocabulary (so that a new key is fuzzed as soon as it exists), and keys
# it does not know yet but a user may well write (other issues' keys, Dagster's newest kind).
HEALTH_KEYS = tuple(f.name for f in dataclasses.fields(HealthSpec))
RESTART_KEYS = tuple(f.name for f in dataclasses.fields(RestartSpec))
OUR_KEYS = tuple(k for k in convert.OUR_KEYS if k not in ("health", "restart"))
KINDS = (*SPEC_KINDS, "autoload_defs_module")
NOT_YET = (
    *("runtime", "standby", "dagster", "webserver", "daemon", "version"),
    *("ui", "enabled", "token_file"),
)
KEYS = tuple(
    dict.fromkeys(
        (
            *KINDS,
            *convert.TOP_KEYS,
            *convert.TARGET_KEYS.values(),
            *convert.CODE_KEYS,
            *convert.GRPC_KEYS,
            *convert.OUR_KEYS,
            *HEALTH_KEYS,
            *RESTART_KEYS,
            *NOT_YET,
        )
    )
)
# Plausible values, so that the fuzzing also reaches the checks behind the type checks.
WORDS = (
    "3.11",
    ">=3.10,<3.12",
    "3.99",
    "always",
    "on-failure",
    "never",
    "512MiB",
    "12 parsecs",
    "-1",
    "localhost",
    "127.0.0.1",
    "examples/empty_location.py",
    "empty_location",
    "pandas==1.5.3",
    "not a requirement ==",
    "requirements.txt",
    ".",
    "..",
    "/",
    "/dev/null",
    "a/../../b",
    "supervisor",
    "dagster",
    "",
    "~",
    "~nobody/x",
    "\udcff",
    "x" * 300,  # longer than a file name may be
)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(WORDS)
    | st.sampled_from(KEYS)
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=10,
)
options = st.dictionaries(st.sampled_from(KEYS), values, max_size=6)
entries = st.dictionaries(st.sampled_from(KINDS), options | values, min_size=1, max_size=2)
documents = (
    st.fixed_dictionaries(
        {},
        optional={
            "envs_dir": values,
            "defaults": options | values,
            "load_from": st.lists(entries | values, max_size=4) | values,
            "dagster": values,
            "ui": options | values,
        },
    )
    | st.lists(entries, max_size=3)
    | values
)
# Well-shaped documents with random values where values go: past the shape checks.
TARGETS = {
    **{
        kind: (key, *(k for k in convert.CODE_KEYS if k != "executable_path"))
        for kind, key in convert.TARGET_KEYS.items()
    },
    "grpc_server": convert.GRPC_KEYS,
}
ours = st.fixed_dictionaries(
    {},
    optional={
        **dict.fromkeys(OUR_KEYS, values),
        "env": st.dictionaries(st.text(max_size=8), scalars, max_size=3) | values,
        "requirements": st.lists(st.sampled_from(WORDS) | st.text(max_size=12), max_size=3)
        | values,
        "health": st.dictionaries(st.sampled_from(HEALTH_KEYS), scalars, max_size=3),
        "restart": st.dictionaries(st.sampled_from(RESTART_KEYS), scalars, max_size=6),
        "executable_path": scalars,
    },
)


@st.composite
def shaped_entries(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(sorted(TARGETS)))
    keys = TARGETS[kind]
    body: dict[str, Any] = {keys[0]: draw(scalars)}
    body.update(draw(st.dictionaries(st.sampled_from(keys), scalars, max_size=3)))
    if kind != "grpc_server" or draw(st.booleans()):
        body.update(draw(ours))
    return {kind: body if draw(st.integers(0, 9)) else draw(scalars)}


shaped = st.fixed_dictionaries(
    {"load_from": st.lists(shaped_entries(), max_size=4)},
    optional={"envs_dir": scalars, "defaults": ours},
)
documents = shaped | documents

# YAML that safe_dump never writes: anchors, tags, merge keys, bad indentation.
FRAGMENTS = (
    "&a ",
    "*a",
    "*nope",
    "<<: *a\n",
    "!!python/object:os.system ",
    "!!binary ",
    "!!set ",
    "? ",
    "\t",
    "\n  ",
    ": ",
    "- ",
    "{",
    "]",
    "'",
    '"',
    "%YAML 1.1\n",
    "---\n",
    "...\n",
    "\x00",
    "\ufeff",
)


@st.composite
def yamlish(draw: st.DrawFn) -> bytes:
    """A dumped document, maybe with fragments spliced in and its end cut off."""
    text = yaml.safe_dump(draw(documents), default_flow_style=draw(st.sampled_from([None, True])))
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.sampled_from(FRAGMENTS)) + text[at:]
    if draw(st.booleans()):
        text = text[: draw(st.integers(0, len(text)))]
    return text.encode("utf-8", "surrogatepass")


workspace_files = st.binary(max_size=300) | st.text(max_size=200).map(str.encode) | yamlish()


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz-workspace")


def named(exc: WorkspaceError, path: Path) -> WorkspaceError:
    unnamed = [p for p in exc.problems if not p.startswith(str(path))]
    assert not unnamed, f"problems that do not name {path}: {unnamed}"
    return exc


def parse_outcome(path: Path) -> WorkspaceSpec | WorkspaceError:
    """Load PATH; a WorkspaceError is returned (each problem must name the file), else raised."""
    try:
        spec = load_workspace(path)
    except WorkspaceError as exc:
        return named(exc, path)
    assert isinstance(spec, WorkspaceSpec), spec
    return spec


TOO_LONG = b"x" * 300


@pytest.mark.timeout(120)
@FUZZ
@given(content=workspace_files)
# Once OSError (ENAMETOOLONG) from Path.is_file and Path.exists: a requirements "file",
# a python_file and an envs_dir whose names are too long to look up.
@example(content=b"load_from: [{python_file: {relative_path: a.py, requirements: %s}}]" % TOO_LONG)
@example(content=b"envs_dir: %s\nload_from: [{python_file: %s}]" % (TOO_LONG, TOO_LONG))
def test_random_workspace_files_parse_or_fail_naming_the_file(
    fuzz_dir: Path, content: bytes
) -> None:
    path = fuzz_dir / "workspace.yaml"
    path.write_bytes(content)
    spec = parse_outcome(path)
    if isinstance(spec, WorkspaceSpec):
        # What `up` and `check` do next; envs_dir is made there, so keep it in our folder.
        try:
            check_paths(dataclasses.replace(spec, envs_dir=fuzz_dir / "envs"))
        except WorkspaceError as exc:
            named(exc, path)


def test_an_envs_dir_too_long_to_look_up_is_a_problem(fuzz_dir: Path) -> None:
    # Path.exists raised OSError (ENAMETOOLONG) while explaining why mkdir failed.
    path = fuzz_dir / "long-envs.yaml"
    path.write_bytes(b"envs_dir: %s\nload_from: [{python_file: a.py}]" % TOO_LONG)
    spec = load_workspace(path)
    problem = envs_dir_problem(spec)
    assert problem is not None
    assert problem.startswith(f"{path}:1 envs_dir: cannot hold environments (File name too long)")


@pytest.mark.timeout(120)
@settings(FUZZ, max_examples=3)
@given(document=documents, broken=st.booleans())
def test_the_cli_refuses_a_random_workspace_without_a_traceback(
    fuzz_dir: Path, document: Any, broken: bool
) -> None:
    if isinstance(document, dict):
        # `env list` looks into envs_dir: keep it inside the test's folder.
        document["envs_dir"] = str(fuzz_dir / "envs")
    text = yaml.safe_dump(document) + ("\n: [&\n" if broken else "")
    path = fuzz_dir / "cli-workspace.yaml"
    path.write_text(text)
    expected = parse_outcome(path)
    out = subprocess.run(
        [SUPERVISOR, "env", "list", "-w", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    seen = f"exit {out.returncode}\nstdout:\n{out.stdout}\nstderr:\n{out.stderr}\ninput:\n{text}"
    assert "Traceback" not in out.stderr, seen
    if isinstance(expected, WorkspaceError):
        assert out.returncode == 2, seen
        assert str(path) in out.stderr, seen
    else:
        assert out.returncode in (0, 1), seen


# --- random bytes and messages at a code server ------------------------------------------

HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
CODESERVER = "/supervisor.codeserver.v1.CodeServer/"
HEALTH = "/grpc.health.v1.Health/"

random_text = st.text(max_size=20)
random_names = st.lists(random_text, max_size=3)
# A NUL in a run id or an asset key kills the stream of a code server's Materialize
# (subprocess refuses it in the worker's argv: ValueError, logged with its traceback).
# Reported, not ours to fix here: those inputs are left out of the Materialize fuzzing.
argv_text = st.text(st.characters(exclude_characters="\x00"), max_size=20)


def send_raw(path: Path, data: bytes) -> None:
    """Connect to the Unix socket PATH, send DATA, read what comes back for a moment, close."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(CALL_SECONDS)
        sock.connect(str(path))
        with contextlib.suppress(OSError):
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
            # The server answers (a SETTINGS frame, GOAWAY) or hangs up: either ends this.
            sock.settimeout(0.2)
            while sock.recv(4096):
                pass


def call_raw(
    channel: grpc.Channel, method: str, request: bytes, stream: bool = False
) -> grpc.RpcError | None:
    """Call METHOD with REQUEST's bytes as they are; return its error status, None for OK.

    Any status is fine but two: UNKNOWN (an exception escaped the handler) and a deadline
    (no answer at all).
    """
    # No serializers: the bytes go out as they are (Any: the stubs cannot type that).
    rpc: Any = channel.unary_stream(method) if stream else channel.unary_unary(method)
    try:
        if stream:
            for _ in rpc(request, timeout=CALL_SECONDS):
                pass
        else:
            rpc(request, timeout=CALL_SECONDS)
    except grpc.RpcError as exc:
        seen = f"{method} on {request!r}: {exc.code()} {exc.details()}"
        assert exc.code() not in (grpc.StatusCode.UNKNOWN, grpc.StatusCode.DEADLINE_EXCEEDED), seen
        return exc
    return None


def call_message(channel: grpc.Channel, method: str, message: Any, stream: bool = False) -> None:
    call_raw(channel, method, message.SerializeToString(), stream)


def watch_once(channel: grpc.Channel, request: bytes) -> None:
    """Health.Watch streams for ever: take its first answer, then hang up."""
    watch: Any = channel.unary_stream(HEALTH + "Watch")
    call = watch(request, timeout=CALL_SECONDS)
    try:
        next(call, None)
    except grpc.RpcError as exc:
        assert exc.code() != grpc.StatusCode.DEADLINE_EXCEEDED, "Watch: no answer in time"
    finally:
        call.cancel()


@pytest.fixture(scope="module")
def code_server(
    child_envs: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[BlockingServer, Path, Path]]:
    """A code server on the host Python serving examples/empty_location.py: (it, socket, log)."""
    root = tmp_path_factory.mktemp("fuzz-codeserver")
    sock_dir = short_tempdir()
    path = sock_dir / "cs.sock"
    log = root / "server.log"
    argv = code_server_command(
        child_envs["host"],
        python_file=str(EXAMPLES / "empty_location.py"),
        location_name="fuzzed",
        socket=str(path),
    )
    # In its own folder: runs store their values under the working directory.
    server = start_blocking(argv, location="fuzzed", output=log, cwd=str(root), startup_timeout=60)
    try:
        yield server, path, log
    finally:
        server.close()
        remove(sock_dir)


def assert_code_server_answers(server: BlockingServer, path: Path, log: Path) -> None:
    assert server.poll() is None, f"the code server exited {server.poll()}:\n{log.read_text()}"
    with CodeServerClient(f"unix:{path}", "fuzzed", timeout=CALL_SECONDS) as client:
        assert client.ping("still here").echo == "still here"
        assert client.health() == "SERVING"
    output = log.read_text(errors="replace")
    assert "Traceback" not in output, output


@pytest.mark.timeout(300)
@FUZZ
@given(data=st.binary(max_size=200), preface=st.booleans())
def test_random_bytes_on_a_code_server_socket(
    code_server: tuple[BlockingServer, Path, Path], data: bytes, preface: bool
) -> None:
    server, path, log = code_server
    send_raw(path, (HTTP2_PREFACE if preface else b"") + data)
    assert server.poll() is None, log.read_text()


# Every unary CodeServer call but Shutdown, with its request type.
CODESERVER_REQUESTS = {
    "Ping": cs.PingRequest,
    "GetServerInfo": cs.GetServerInfoRequest,
    "ListDefinitions": cs.ListDefinitionsRequest,
    "Heartbeat": cs.HeartbeatRequest,
    "CancelRun": cs.CancelRunRequest,
    "Inspect": cs.InspectRequest,
}


def varint(value: int) -> bytes:
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        out.append(low | (0x80 if value else 0))
        if not value:
            return bytes(out)


@st.composite
def wire_messages(draw: st.DrawFn, depth: int = 2) -> bytes:
    """Random fields in protobuf's wire format: known and unknown numbers, any wire type."""
    out = bytearray()
    for _ in range(draw(st.integers(0, 5))):
        number = draw(st.integers(1, 12) | st.integers(1, 2**29 - 1))
        wire = draw(st.sampled_from([0, 1, 2, 5]))
        out += varint(number << 3 | wire)
        if wire == 0:
            out += varint(draw(st.integers(0, 2**64 - 1)))
        elif wire == 1:
            out += draw(st.binary(min_size=8, max_size=8))
        elif wire == 5:
            out += draw(st.binary(min_size=4, max_size=4))
        else:
            inner = st.binary(max_size=16) | st.text(max_size=12).map(str.encode)
            if depth:
                inner |= wire_messages(depth - 1)
            payload = draw(inner)
            out += varint(len(payload)) + payload
    return bytes(out)


def decodes(message_type: Any, data: bytes) -> bool:
    """Whether DATA parses as MESSAGE_TYPE.

    Bytes that do not are left out of the calls: grpc's own deserializer logs each one as
    an ERROR with a traceback on the server's output (reported; not ours to change here).
    """
    try:
        message_type.FromString(data)
    except DecodeError:
        return False
    return True


@pytest.mark.timeout(300)
@FUZZ
@given(method=st.sampled_from(sorted(CODESERVER_REQUESTS)), request=wire_messages())
def test_random_request_bytes_at_every_code_server_rpc(
    code_server: tuple[BlockingServer, Path, Path], method: str, request: bytes
) -> None:
    server, path, log = code_server
    assume(decodes(CODESERVER_REQUESTS[method], request))
    with grpc.insecure_channel(f"unix:{path}") as channel:
        call_raw(channel, CODESERVER + method, request)
        if decodes(health_pb2.HealthCheckRequest, request):
            call_raw(channel, HEALTH + "Check", request)
    assert server.poll() is None, log.read_text()


code_server_messages = st.one_of(
    st.builds(lambda e: ("Ping", cs.PingRequest(echo=e)), random_text),
    st.just(("GetServerInfo", cs.GetServerInfoRequest())),
    st.just(("ListDefinitions", cs.ListDefinitionsRequest())),
    st.builds(lambda s: ("Heartbeat", cs.HeartbeatRequest(sender=s)), random_text),
    st.builds(lambda r: ("CancelRun", cs.CancelRunRequest(run_id=r)), random_text),
    st.just(("Inspect", cs.InspectRequest())),
    st.builds(lambda s: (HEALTH + "Check", health_pb2.HealthCheckRequest(service=s)), random_text),
)


@pytest.mark.timeout(300)
@FUZZ
@given(call=code_server_messages)
def test_random_messages_at_every_code_server_rpc(
    code_server: tuple[BlockingServer, Path, Path], call: tuple[str, Any]
) -> None:
    server, path, log = code_server
    method, message = call
    with grpc.insecure_channel(f"unix:{path}") as channel:
        call_message(channel, method if method.startswith("/") else CODESERVER + method, message)
    assert server.poll() is None, log.read_text()


@pytest.mark.timeout(300)
@settings(FUZZ, max_examples=8)
@given(
    request=st.builds(
        cs.MaterializeRequest,
        run_id=argv_text,
        selection=st.lists(argv_text, max_size=3),
        upstream=st.booleans(),
    ).map(cs.MaterializeRequest.SerializeToString)
    | wire_messages()
)
def test_random_materialize_and_watch_requests_at_a_code_server(
    code_server: tuple[BlockingServer, Path, Path], request: bytes
) -> None:
    server, path, log = code_server
    assume(decodes(cs.MaterializeRequest, request))
    # Values are stored under values_dir: only the server's own (in its folder) will do.
    decoded = cs.MaterializeRequest.FromString(request)
    assume(not decoded.values_dir)
    assume("\x00" not in decoded.run_id + "".join(decoded.selection))
    with grpc.insecure_channel(f"unix:{path}") as channel:
        call_raw(channel, CODESERVER + "Materialize", request, stream=True)
        if decodes(health_pb2.HealthCheckRequest, request):
            watch_once(channel, request)
    assert server.poll() is None, log.read_text()


@pytest.mark.timeout(300)
def test_the_code_server_answers_after_the_fuzzing(
    code_server: tuple[BlockingServer, Path, Path],
) -> None:
    assert_code_server_answers(*code_server)


# --- random bytes and messages at the control socket of a running `up` -------------------

LOCATION = "fuzzed"
CONTROL = "/supervisor.control.v1.Supervisor/"
# Every call but Shutdown, with its request type and whether it streams.
CONTROL_REQUESTS = {
    "Status": (pb.StatusRequest, False),
    "Start": (pb.LocationsRequest, False),
    "Stop": (pb.LocationsRequest, False),
    "Restart": (pb.LocationsRequest, False),
    "Reload": (pb.ReloadRequest, False),
    "ListDefinitions": (pb.LocationsRequest, False),
    "Materialize": (pb.MaterializeRequest, True),
    "CancelRun": (pb.CancelRunRequest, False),
}


@pytest.fixture(scope="module")
def running_up(tmp_path_factory: pytest.TempPathFactory, shared_envs_dir: Path) -> Iterator[Up]:
    """`supervisor up` on one python_file location, serving."""
    root = tmp_path_factory.mktemp("fuzz-up")
    workspace = root / "workspace.yaml"
    workspace.write_text(
        f"envs_dir: {shared_envs_dir}\n"
        "load_from:\n"
        "  - python_file:\n"
        f"      relative_path: {EXAMPLES / 'empty_location.py'}\n"
        f"      location_name: {LOCATION}\n"
    )
    up = Up(workspace)
    try:
        up.wait_state(LOCATION, "SERVING", timeout=120)
        yield up
    finally:
        up.stop()


def touches_the_location(method: str, request: bytes) -> bool:
    """Whether REQUEST would stop or restart the real location (no names means all)."""
    if method not in ("Stop", "Restart") or not decodes(pb.LocationsRequest, request):
        return False
    decoded = pb.LocationsRequest.FromString(request)
    return decoded.all or not decoded.locations or LOCATION in decoded.locations


def assert_up_alive(up: Up) -> None:
    assert up.proc.poll() is None, f"supervisor exited {up.proc.returncode}:\n{up.log(200)}"


@pytest.mark.timeout(300)
@FUZZ
@given(data=st.binary(max_size=200), preface=st.booleans())
def test_random_bytes_on_the_control_socket(running_up: Up, data: bytes, preface: bool) -> None:
    send_raw(control_socket(running_up.workspace_file), (HTTP2_PREFACE if preface else b"") + data)
    assert_up_alive(running_up)


@pytest.mark.timeout(300)
@FUZZ
@given(
    method=st.sampled_from(sorted(CONTROL_REQUESTS)),
    request=wire_messages() | st.binary(max_size=100),
)
def test_random_request_bytes_at_every_control_rpc(
    running_up: Up, method: str, request: bytes
) -> None:
    message_type, stream = CONTROL_REQUESTS[method]
    assume(not touches_the_location(method, request))
    with grpc.insecure_channel(f"unix:{control_socket(running_up.workspace_file)}") as channel:
        error = call_raw(channel, CONTROL + method, request, stream)
    if not decodes(message_type, request):
        assert error is not None, f"{method} accepted {request!r}"
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error
        assert (error.details() or "").startswith(
            f"malformed {message_type.DESCRIPTOR.full_name}: "
        )
    assert_up_alive(running_up)


@pytest.mark.timeout(300)
def test_a_control_request_that_does_not_parse_is_invalid_argument(running_up: Up) -> None:
    # A field number of 0 never parses.
    with grpc.insecure_channel(f"unix:{control_socket(running_up.workspace_file)}") as channel:
        for method, (message_type, stream) in CONTROL_REQUESTS.items():
            error = call_raw(channel, CONTROL + method, b"\x07\xff", stream)
            assert error is not None, f"{method} accepted bytes that do not parse"
            assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error
            name = message_type.DESCRIPTOR.full_name
            assert (error.details() or "").startswith(f"malformed {name}: "), error.details()
    assert_up_alive(running_up)


names = st.lists(random_text | st.just(LOCATION), max_size=3)
control_messages = st.one_of(
    st.builds(lambda n: ("Status", pb.StatusRequest(locations=n)), names),
    *(
        st.builds(
            lambda n, a, m=method: (m, pb.LocationsRequest(locations=n, all=a)),
            names,
            st.booleans(),
        )
        for method in ("Start", "ListDefinitions")
    ),
    *(
        # Never the real location: these would take it down.
        st.builds(
            lambda n, m=method: (m, pb.LocationsRequest(locations=n)),
            st.lists(random_text.filter(lambda t: t != LOCATION), min_size=1, max_size=3),
        )
        for method in ("Stop", "Restart")
    ),
    st.just(("Reload", pb.ReloadRequest())),
    st.builds(
        lambda a, loc, all_, up: (
            "Materialize",
            pb.MaterializeRequest(assets=a, location=loc, all=all_, upstream=up),
        ),
        names,
        random_text | st.just(LOCATION),
        st.booleans(),
        st.booleans(),
    ),
    st.builds(lambda r: ("CancelRun", pb.CancelRunRequest(run_id=r)), random_text),
)


@pytest.mark.timeout(300)
@FUZZ
@given(call=control_messages)
def test_random_messages_at_every_control_rpc(running_up: Up, call: tuple[str, Any]) -> None:
    method, message = call
    with grpc.insecure_channel(f"unix:{control_socket(running_up.workspace_file)}") as channel:
        call_message(channel, CONTROL + method, message, CONTROL_REQUESTS[method][1])
    assert_up_alive(running_up)


@pytest.mark.timeout(300)
def test_up_answers_after_the_fuzzing(running_up: Up) -> None:
    out = subprocess.run(
        [SUPERVISOR, "status", "-w", str(running_up.workspace_file)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, f"exit {out.returncode}:\n{out.stdout}\n{out.stderr}"
    assert LOCATION in out.stdout, out.stdout
    assert_up_alive(running_up)
    log = running_up.log_path.read_text(errors="replace")
    assert "Traceback" not in log, log
    assert "Task exception was never retrieved" not in log, log
