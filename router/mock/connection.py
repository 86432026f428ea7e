"""Socket tricks that act faults out on a fake provider's connection: close, reset, abort mid-answer."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import time
from typing import Final

from aiohttp import web

_LINGER_RESET: Final = struct.pack("ii", 1, 0)


def drop_connection(request: web.BaseRequest) -> web.Response:
    """Close the connection with no response; return the handler's (never delivered) result.

    aiohttp then fails to write that response to the closed transport, which it treats as a client
    disconnect (no 500, no log line).
    """
    transport = request.transport
    if transport is not None:
        transport.close()
    return web.Response(status=499)


def reset_connection(request: web.BaseRequest) -> web.Response:
    """Abort the connection with a TCP RST (``SO_LINGER`` zero) and no response; like ``drop_connection``
    the returned response is never delivered."""
    transport = request.transport
    if transport is not None:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
        transport.abort()
    return web.Response(status=499)


async def abort_connection(
    request: web.BaseRequest, *, flush_timeout: float = 1.0, graceful: bool = False
) -> None:
    """End the connection with no clean end of the body once what was written has left the buffer:
    abruptly (what the peer has not read yet may be lost), or ``graceful`` with a FIN after it."""
    transport = request.transport
    if transport is None:
        return
    deadline = time.monotonic() + flush_timeout
    # No event signals an empty write buffer; on loopback this loop almost never turns.
    while transport.get_write_buffer_size() > 0 and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.001)
    if graceful:
        transport.close()
    else:
        transport.abort()
