"""The host's client of a real Dagster code server (`dagster api grpc` in a dagster env).

The host has no dagster: the servers run on the `dagster_python` interpreter, and the client
reads their answers through our own declaration of Dagster's wire interface.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import textwrap
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from supervisor._proto import codeserver_pb2 as pb
from supervisor.control.codeserver import CodeServerClient, aio_channel, definitions_to_dict
from supervisor.control.dagster import (
    AsyncDagsterServer,
    definitions_from_repository,
    error_text,
    load_error_from,
)
from supervisor.errors import CodeServerError
from tests.helpers import FIXTURES, remove, short_tempdir, wait_for

T = TypeVar("T")
START_TIMEOUT = 90.0  # the first import of dagster in a fresh env compiles its bytecode
LOCATION = "dg_loc"
SNAPSHOT = FIXTURES / "dagster_repository_snapshot.json"

# The definitions the snapshot in tests/fixtures/ was recorded from (dagster 1.13.29).
GOOD_DEFS = textwrap.dedent(
    """
    from dagster import (
        ConfigurableResource, Definitions, ScheduleDefinition, asset, define_asset_job, sensor,
    )


    class Greeting(ConfigurableResource):
        text: str = "hello"


    @asset(group_name="raw", description="The numbers.")
    def numbers() -> list:
        return [1, 2, 3]


    @asset
    def total(numbers: list, greeting: Greeting) -> int:
        \"\"\"Their sum.\"\"\"
        return sum(numbers)


    totals_job = define_asset_job("totals_job", selection=["total"])
    nightly = ScheduleDefinition(
        name="nightly",
        job=totals_job,
        cron_schedule="0 3 * * *",
        execution_timezone="Europe/Paris",
        description="Every night.",
    )


    @sensor(job=totals_job)
    def watch(context):
        return None


    defs = Definitions(
        assets=[numbers, total],
        jobs=[totals_job],
        schedules=[nightly],
        sensors=[watch],
        resources={"greeting": Greeting()},
    )
    """
)

BROKEN_DEFS = textwrap.dedent(
    """
    from dagster import Definitions

    raise RuntimeError("crash_on_import: the warehouse is unreachable")
    """
)


@dataclass
class Server:
    """One `dagster api grpc` process serving on a Unix socket."""

    process: subprocess.Popen[bytes]
    address: str
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]


def answers(server: Server) -> bool:
    """True once the server answers the standard health check; fail if it exited first."""
    if server.process.poll() is not None:
        raise AssertionError(
            f"dagster api grpc exited with {server.process.returncode} before it answered;"
            f" its output:\n{server.log_text()}"
        )
    try:
        with CodeServerClient(server.address, LOCATION, timeout=1.0) as client:
            return client.health(timeout=1.0) == "SERVING"
    except CodeServerError:
        return False


def start_server(python: str, folder: Path, source: str) -> Server:
    """Write SOURCE as defs.py in FOLDER and serve it with Dagster's own code server."""
    (folder / "defs.py").write_text(source)
    socket = folder / "s.sock"
    log = folder / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                python,
                "-m",
                "dagster",
                "api",
                "grpc",
                "-f",
                "defs.py",
                "--location-name",
                LOCATION,
                "--socket",
                str(socket),
                "--lazy-load-user-code",
                "--log-format",
                "json",
            ],
            cwd=folder,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(process, "unix:" + str(socket), log)
    try:
        wait_for(
            lambda: answers(server),
            START_TIMEOUT,
            f"dagster api grpc to answer on {socket}",
            seen=server.log_text,
        )
    except BaseException:
        stop(server)
        raise
    return server


def stop(server: Server) -> None:
    """SIGTERM, then SIGKILL to its session: Dagster maps SIGTERM to its SIGINT handler, so a
    server that inherited SIGINT ignored (a test run started in the background) keeps going."""
    if server.process.poll() is None:
        server.process.terminate()
        try:
            server.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(server.process.pid, signal.SIGKILL)
            server.process.wait(timeout=10)


@pytest.fixture(scope="module")
def good_server(dagster_python: str) -> Iterator[Server]:
    folder = short_tempdir()
    server = start_server(dagster_python, folder, GOOD_DEFS)
    yield server
    stop(server)
    remove(folder)


@pytest.fixture(scope="module")
def broken_server(dagster_python: str) -> Iterator[Server]:
    folder = short_tempdir()
    server = start_server(dagster_python, folder, BROKEN_DEFS)
    yield server
    stop(server)
    remove(folder)


def call(server: Server, use: Callable[[AsyncDagsterServer], Awaitable[T]]) -> T:
    """Run USE with a client of SERVER on a fresh event loop, closing its channel after."""

    async def run() -> T:
        channel = aio_channel(server.address)
        try:
            return await use(AsyncDagsterServer(channel, LOCATION, server.address))
        finally:
            await channel.close()

    return asyncio.run(run())


def snapshot() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SNAPSHOT.read_text())
    return data


@pytest.mark.timeout(900)  # the first test of the session may build the dagster env
def test_list_definitions_of_a_real_dagster_location(good_server: Server) -> None:
    reply = call(good_server, lambda s: s.list_definitions(timeout=60))
    shown = definitions_to_dict(reply)
    assets = {a["key"]: a for a in shown["assets"]}
    assert sorted(assets) == ["numbers", "total"], shown
    assert assets["numbers"]["deps"] == [] and assets["numbers"]["group"] == "raw"
    assert assets["numbers"]["description"] == "The numbers."
    assert assets["total"]["deps"] == ["numbers"] and assets["total"]["group"] == "default"
    assert assets["total"]["description"] == "Their sum."
    assert assets["total"]["resources"] == ["greeting"]
    assert shown["resources"] == ["greeting"]
    assert shown["jobs"] == ["totals_job"]  # without Dagster's implicit __ASSET_JOB
    assert shown["sensors"] == ["watch"]
    assert shown["schedules"] == [
        {
            "name": "nightly",
            "cron": "0 3 * * *",
            "targets": ["totals_job"],
            "description": "Every night.",
        }
    ]
    assert reply.schedules[0].timezone == "Europe/Paris"
    assert shown["location"] == LOCATION and shown["runtime"] == "dagster"
    assert shown["load_error"] is None


def test_the_recorded_snapshot_still_matches_the_live_server(good_server: Server) -> None:
    """If Dagster's snapshot shape moves, the unit test below would test a stale shape."""
    live = call(good_server, lambda s: s.list_definitions(timeout=60))
    assert definitions_from_repository(LOCATION, snapshot()) == live


def test_calls_that_keep_a_dagster_server_supervised(good_server: Server) -> None:
    async def use(server: AsyncDagsterServer) -> tuple[Any, ...]:
        await server.ping(timeout=5)
        await server.heartbeat(timeout=5)
        return (
            await server.health(timeout=5),
            await server.server_id(timeout=5),
            await server.server_id(timeout=5),
            await server.current_runs(timeout=5),
            await server.load_error(timeout=10),
        )

    health, first_id, second_id, runs, load_error = call(good_server, use)
    assert health == "SERVING"
    assert first_id and first_id == second_id
    assert runs == []
    assert load_error is None


def test_a_location_that_fails_to_import_serves_dagsters_error(broken_server: Server) -> None:
    async def use(server: AsyncDagsterServer) -> tuple[str | None, pb.DefinitionsReply, str]:
        return (
            await server.load_error(timeout=10),
            await server.list_definitions(timeout=30),
            await server.health(timeout=5),
        )

    load_error, reply, health = call(broken_server, use)
    assert health == "SERVING"  # Dagster serves its load error rather than exiting
    assert load_error is not None
    assert "crash_on_import: the warehouse is unreachable" in load_error, load_error
    assert "defs.py" in load_error  # the stack, through the causes
    assert reply.HasField("load_error") and reply.location_name == LOCATION
    # The first line is Dagster's wrapper; the user's own exception must be in the message too.
    assert "crash_on_import: the warehouse is unreachable" in reply.load_error.message
    assert "defs.py" in reply.load_error.traceback
    shown = definitions_to_dict(reply)
    assert "crash_on_import: the warehouse is unreachable" in shown["load_error"]
    assert shown["assets"] == [] and shown["runtime"] == "dagster"


def test_shutdown_makes_the_server_exit(dagster_python: str) -> None:
    folder = short_tempdir()
    server = start_server(dagster_python, folder, GOOD_DEFS)
    try:
        call(server, lambda s: s.shutdown(timeout=10))
        try:
            code = server.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"dagster api grpc still running 30s after ShutdownServer:\n{server.log_text()}"
            ) from None
        assert code == 0, server.log_text()
    finally:
        stop(server)
        remove(folder)


def test_a_call_to_a_gone_server_names_the_location_and_the_call() -> None:
    folder = short_tempdir()
    address = "unix:" + str(folder / "nobody.sock")

    async def use() -> None:
        channel = aio_channel(address)
        try:
            await AsyncDagsterServer(channel, LOCATION, address).server_id(timeout=2)
        finally:
            await channel.close()

    try:
        with pytest.raises(CodeServerError) as caught:
            asyncio.run(use())
    finally:
        remove(folder)
    text = str(caught.value)
    assert LOCATION in text and "GetServerId" in text and address in text, text


def test_definitions_from_a_recorded_repository_snapshot() -> None:
    reply = definitions_from_repository("recorded", snapshot())
    shown = definitions_to_dict(reply)
    assert shown["location"] == "recorded" and shown["runtime"] == "dagster"
    assert [(a["key"], a["deps"], a["group"]) for a in shown["assets"]] == [
        ("numbers", [], "raw"),
        ("total", ["numbers"], "default"),
    ]
    assert shown["jobs"] == ["totals_job"] and shown["sensors"] == ["watch"]
    assert shown["resources"] == ["greeting"]
    assert [(s.name, s.cron, s.timezone, list(s.targets)) for s in reply.schedules] == [
        ("nightly", "0 3 * * *", "Europe/Paris", ["totals_job"])
    ]
    assert shown["load_error"] is None


def test_definitions_from_a_snapshot_with_prefixed_keys_and_source_assets() -> None:
    data = snapshot()
    nodes = data["external_asset_graph_data"]
    nodes[0]["asset_key"]["path"] = ["warehouse", "numbers"]
    nodes[1]["dependencies"][0]["upstream_asset_key"]["path"] = ["warehouse", "numbers"]
    nodes.append({**nodes[0], "asset_key": {"path": ["outside"]}, "is_source": True})
    shown = definitions_to_dict(definitions_from_repository("recorded", data))
    assert [(a["key"], a["deps"]) for a in shown["assets"]] == [
        ("warehouse/numbers", []),
        ("total", ["warehouse/numbers"]),
    ]


def test_dagsters_error_info_as_text_and_as_our_load_error() -> None:
    error = {
        "__class__": "SerializableErrorInfo",
        "message": "DagsterUserCodeLoadError: Error occurred during the loading\nof definitions\n",
        "stack": ['  File "server.py", line 1, in load\n'],
        "cls_name": "DagsterUserCodeLoadError",
        "cause": {
            "__class__": "SerializableErrorInfo",
            "message": "RuntimeError: boom\n",
            "stack": ['  File "defs.py", line 2, in <module>\n'],
            "cls_name": "RuntimeError",
            "cause": None,
            "context": None,
        },
        "context": None,
    }
    assert error_text(error) == (
        "DagsterUserCodeLoadError: Error occurred during the loading\nof definitions\n"
        '  File "server.py", line 1, in load\n'
        "\nThe above was caused by:\n"
        "RuntimeError: boom\n"
        '  File "defs.py", line 2, in <module>'
    )
    loaded = load_error_from(error)
    assert loaded.message == (
        "DagsterUserCodeLoadError: Error occurred during the loading\nof definitions"
        "\ncaused by: RuntimeError: boom"
    )
    assert loaded.traceback.startswith('  File "server.py"') and "defs.py" in loaded.traceback
