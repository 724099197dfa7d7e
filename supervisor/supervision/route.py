"""Where a local location's calls go: one channel to its serving server and, for a Dagster
location, the stable pass-through address in front of it that outlives every server."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

# For annotations only: gRPC loads once `up` has started its servers.
if TYPE_CHECKING:
    import grpc

    from supervisor.supervision.passthrough import PassThrough


class Route:
    """The channel of the current server (made by CONNECT from its address), and the
    pass-through at SOCKET_PATH once opened, holding calls while COMING_UP() says so."""

    def __init__(
        self,
        socket_path: Path,
        coming_up: Callable[[], bool],
        connect: Callable[[str], grpc.aio.Channel | None],
    ) -> None:
        self._socket_path = socket_path
        self._coming_up = coming_up
        self._connect = connect
        self.channel: grpc.aio.Channel | None = None
        self.passthrough: PassThrough | None = None

    def switch(self, address: str) -> grpc.aio.Channel | None:
        """Send calls to the server at ADDRESS from now on, in one step (no call ever finds
        no channel); return the channel calls went to until now."""
        old, self.channel = self.channel, self._connect(address)
        if self.passthrough is not None:
            self.passthrough.notify()
        return old

    async def close_channel(self) -> None:
        channel, self.channel = self.channel, None
        if channel is not None:
            await channel.close()

    async def open_passthrough(self) -> None:
        if self.passthrough is None:
            from supervisor.supervision.passthrough import PassThrough

            passthrough = PassThrough(self._socket_path, lambda: self.channel, self._coming_up)
            await passthrough.start()
            self.passthrough = passthrough

    async def close_passthrough(self) -> None:
        passthrough, self.passthrough = self.passthrough, None
        if passthrough is not None:
            await passthrough.stop()
