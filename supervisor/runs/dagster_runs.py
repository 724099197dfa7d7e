"""Materializing a Dagster location's assets: a worker in the location's own environment.

Dagster's code server runs runs only for a Dagster instance that launches them; for
`supervisor materialize` the supervisor starts codeserver/dagster_run.py with the location's
interpreter, environment and folder, reads the run's events (JSON lines) and hands them on
as our RunEvents, to be recorded in the run store like any run's.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import time
from collections import deque
from collections.abc import AsyncIterator
from pathlib import Path

from supervisor._proto import codeserver_pb2 as pb
from supervisor.errors import CodeServerError
from supervisor.launch.command import Launchable
from supervisor.workspace import LocationSpec

BOOTSTRAP = (
    "import sys; del sys.path[0]; from supervisor.codeserver.dagster_run import main;"
    " sys.exit(main())"
)
STDERR_LINES = 20
MAX_LINE = 16 * 1024 * 1024


def worker_argv(
    launchable: Launchable, spec: LocationSpec, request: pb.MaterializeRequest, instance: Path
) -> list[str]:
    """The worker's command line, --flag=value throughout (a key may start with "-")."""
    argv = [launchable.argv[0], "-c", BOOTSTRAP, f"--run-id={request.run_id}"]
    argv.append(f"--instance-dir={instance}")
    if spec.kind == "python_file" and spec.python_file is not None:
        argv.append(f"--python-file={spec.python_file}")
    elif spec.kind == "autoload_defs_module" and spec.module_name:
        argv.append(f"--autoload-defs-module={spec.module_name}")
    elif spec.module_name:
        argv.append(f"--module-name={spec.module_name}")
    if spec.working_directory is not None:
        argv.append(f"--working-directory={spec.working_directory}")
    if spec.attribute:
        argv.append(f"--attribute={spec.attribute}")
    argv += [f"--selection={key}" for key in request.selection]
    if request.upstream:
        argv.append("--upstream")
    return argv


def to_event(run_id: str, line: bytes) -> pb.RunEvent | None:
    """One JSON line of the worker as our RunEvent; None for a line that is not one."""
    try:
        data = json.loads(line)
        kind = pb.EventType.Value(str(data["type"]))
    except (ValueError, KeyError, TypeError):
        return None
    return pb.RunEvent(
        run_id=run_id,
        type=kind,
        time=float(data.get("time") or time.time()),
        step=str(data.get("step") or ""),
        message=str(data.get("message") or ""),
        error=str(data.get("error") or ""),
        traceback=str(data.get("traceback") or ""),
        pid=int(data.get("pid") or 0),
        level=str(data.get("level") or ""),
    )


async def materialize_dagster(
    launchable: Launchable,
    spec: LocationSpec,
    request: pb.MaterializeRequest,
    values_dir: Path,
) -> AsyncIterator[pb.RunEvent]:
    """Run REQUEST's selection with the location's interpreter; yield its events. A worker
    that ends without a final event gives a RUN_FAILURE naming its exit and its last lines;
    a caller that goes away ends the worker."""
    instance = values_dir / "dagster-instance"
    argv = worker_argv(launchable, spec, request, instance)
    process = await asyncio.create_subprocess_exec(
        *argv,
        env=launchable.env,
        cwd=launchable.cwd,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
        limit=MAX_LINE,
    )
    assert process.stdout is not None and process.stderr is not None
    said: deque[str] = deque(maxlen=STDERR_LINES)
    reader = asyncio.create_task(_drain(process.stderr, said))
    final = False
    try:
        async for line in process.stdout:
            event = to_event(request.run_id, line)
            if event is None:
                continue
            final = final or event.type in (pb.RUN_SUCCESS, pb.RUN_FAILURE, pb.RUN_CANCELED)
            yield event
        code = await process.wait()
        await reader
        if not final:
            tail = "\n".join(said)
            raise CodeServerError(
                spec.name,
                "Materialize",
                "-",
                f"the Dagster run worker exited with code {code} before the run ended"
                + (f"; its last lines:\n{tail}" if tail else ""),
            )
    finally:
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            await process.wait()
        reader.cancel()


async def _drain(stream: asyncio.StreamReader, into: deque[str]) -> None:
    async for line in stream:
        into.append(line.decode(errors="replace").rstrip())
