"""A code server's Beats stream, read on the supervisor's event loop: the server's health at
every whole multiple of an interval, for as long as the stream is read.

One open stream costs the supervisor a quarter of the CPU of a Health.Check every interval
(no call to set up per check; the beats of all its servers come in one turn of its loop).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import grpc

from supervisor._proto import codeserver_pb2 as pb
from supervisor.errors import CodeServerError

# For annotations only: codeserver.py imports this module, so the import goes one way.
if TYPE_CHECKING:
    from supervisor.control.codeserver import AsyncCalls

CALL = "Beats"


class BeatStream:
    """One Beats call of CLIENT's server; `next` reads the next beat."""

    def __init__(self, client: AsyncCalls, call: grpc.aio.UnaryStreamCall) -> None:
        self.client = client
        self._call = call
        self.unimplemented = False  # the server is of a runtime without Beats

    async def next(self, timeout: float) -> str:
        """The next beat's status name ("SERVING", ...), within TIMEOUT seconds; a beat that
        does not come in time ends the stream."""
        client = self.client
        try:
            beat = await asyncio.wait_for(self._call.read(), timeout)
        except asyncio.TimeoutError:
            self.cancel()
            why = f"no beat within {timeout:g}s"
            raise CodeServerError(client.location, CALL, client.address, why) from None
        except grpc.RpcError as error:
            self.unimplemented = error.code() == grpc.StatusCode.UNIMPLEMENTED
            raise client.failed(error, CALL, None) from None
        except asyncio.CancelledError:
            raise client.closed_under(CALL) from None
        if beat is grpc.aio.EOF:
            why = "the server ended its beats (it is stopping)"
            raise CodeServerError(client.location, CALL, client.address, why)
        assert isinstance(beat, pb.Beat)
        return beat.status

    def cancel(self) -> None:
        self._call.cancel()
