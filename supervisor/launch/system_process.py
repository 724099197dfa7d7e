"""Dagster's webserver or daemon as one supervised process, started and stopped like a code
server (its own session, the stop ladder, the sweep by token).

Readiness: the record each logs once it works ("Serving dagster-webserver on ...", "Instance
is configured with the following daemons"); for the webserver, then `/server_info`
answering (it logs that it serves a moment before it listens).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from supervisor.dagsterui import WEBSERVER
from supervisor.dagsterui.graphql import Webserver, WebserverError
from supervisor.errors import CodeServerError
from supervisor.launch.dagster_process import DagsterLogProcess
from supervisor.launch.process import OutputHandler, Ready

MARKERS = {
    WEBSERVER: "Serving dagster-webserver on",
    "dagster-daemon": "Instance is configured with the following daemons",
}
SERVER_INFO_TIMEOUT = 5.0
SERVER_INFO_POLL_SECONDS = 0.1


class SystemProcess(DagsterLogProcess):
    """The webserver (URL: where it serves) or the daemon (URL "")."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        env: Mapping[str, str],
        cwd: str | None,
        on_output: OutputHandler,
        url: str = "",
    ) -> None:
        super().__init__(name, argv, env, cwd, on_output)
        self.marker = MARKERS[name]
        self.url = url

    async def start(self, startup_timeout: float) -> Ready:
        loop = asyncio.get_running_loop()
        started = loop.time()
        await self._spawn_until_marker(startup_timeout)
        if self.url:
            # It logs that it serves a moment before it listens.
            deadline = started + startup_timeout
            while True:
                try:
                    await asyncio.to_thread(Webserver(self.url).server_info, SERVER_INFO_TIMEOUT)
                    break
                except WebserverError as exc:
                    if self.returncode is not None or loop.time() > deadline:
                        await self.kill()
                        raise CodeServerError(
                            self.location, "start", self.url, str(exc) + self.tail_text()
                        ) from None
                await asyncio.sleep(SERVER_INFO_POLL_SECONDS)
        assert self.pid is not None
        self.ready = Ready(
            pid=self.pid,
            address=self.url,
            load_error=None,
            load_seconds=0.0,
            ready_seconds=loop.time() - started,
        )
        return self.ready
