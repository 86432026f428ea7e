"""One HTTP/1.1 client connection to an upstream: writes a request, parses the answer as it arrives.

A plain ``asyncio.Protocol``: the head is parsed once it is complete, the body is unframed by its
``content-length``, by ``transfer-encoding: chunked`` or by the connection's close, and handed out
either whole (``whole()``: one wake-up for a JSON answer) or piece by piece (``piece()``: a stream).
A deadline check replaces per-request timeout objects: one timer, re-armed only when it fires early.
Errors are raised as ``WireError`` (malformed HTTP), ``TimeoutError`` or ``ConnectionError``; the
client maps them once, with the provider's name.
"""

from __future__ import annotations

import asyncio
import zlib
from collections import deque
from typing import cast

MAX_HEAD = 64 * 1024  # bytes of status line and headers
HIGH_WATER = 1024 * 1024  # buffered body bytes that pause reading until the consumer catches up
_NO_BODY = (204, 304)


class WireError(Exception):
    """The upstream's bytes are not valid HTTP/1.x."""


class CutOff(WireError):
    """The connection closed after part of the answer had arrived."""


class ReadTimeout(TimeoutError):
    """No byte arrived for longer than the read timeout, or the total deadline passed."""


class _Decoder:
    """``content-encoding: gzip`` or ``deflate``, in case an upstream compresses unasked."""

    __slots__ = ("_z",)

    def __init__(self, encoding: str) -> None:
        self._z = zlib.decompressobj(16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS)

    def feed(self, data: bytes) -> bytes:
        try:
            return self._z.decompress(data)
        except zlib.error as exc:
            raise WireError(f"a compressed body that does not decompress ({exc})") from None


class Connection(asyncio.Protocol):
    """One keep-alive connection. A request at a time: ``send``, then ``head``, then the body."""

    __slots__ = (
        "_body",
        "_buffered",
        "_chunk_left",
        "_deadline",
        "_decoder",
        "_error",
        "_framing",
        "_head_buf",
        "_head_done",
        "_left",
        "_loop",
        "_paused",
        "_read_timeout",
        "_timer",
        "_waiter",
        "_whole",
        "closed",
        "complete",
        "headers",
        "idle_since",
        "keep_alive",
        "last_read",
        "origin",
        "received",
        "status",
        "transport",
    )

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self.origin: tuple[str, str, int] = ("", "", 0)
        self._reset()

    def _reset(self) -> None:
        self._head_buf = bytearray()
        self._head_done = False
        self._body: deque[bytes] = deque()
        self._buffered = 0
        self._framing = 0  # 1 length, 2 chunked, 3 until close
        self._left = 0
        self._chunk_left = -1  # chunked: -1 reading a size line, >0 data, 0 the data's CRLF
        self._decoder: _Decoder | None = None
        self._error: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._whole = False
        self._paused = False
        self._timer: asyncio.TimerHandle | None = None
        self._deadline = 0.0
        self._read_timeout = 0.0
        self.status = 0
        self.headers: dict[str, str] = {}
        self.complete = False
        self.keep_alive = True
        self.received = False
        self.last_read = 0.0

    # -- the request side -------------------------------------------------------------------------

    def send(self, head: bytes, body: bytes, read_timeout: float, deadline: float) -> None:
        """Write one request; the answer is awaited with ``head()``."""
        self._reset()
        self._read_timeout = read_timeout
        self._deadline = deadline
        self.last_read = self._loop.time()
        self._arm(min(deadline, self.last_read + read_timeout))
        transport = self.transport
        assert transport is not None
        if len(body) < 16 * 1024:
            transport.write(head + body)
        else:
            transport.writelines((head, body))

    async def head(self) -> None:
        """Until the status and headers are in."""
        if not self._head_done and self._error is None:
            await self._wait()
        if not self._head_done and self._error is not None:
            raise self._error

    async def whole(self) -> bytes:
        """The rest of the body, at once (one wake-up when it all arrives together)."""
        self._whole = True
        while not self.complete and self._error is None:
            if self._paused:
                self._resume()
            await self._wait()
        if self._error is not None and not self.complete:
            raise self._error
        data = b"".join(self._body)
        self._body.clear()
        self._buffered = 0
        return data

    async def piece(self) -> bytes:
        """The next part of the body as it arrives; ``b""`` at its end. Everything received before a
        break is handed out before the break is raised."""
        while not self._body:
            if self.complete:
                return b""
            if self._error is not None:
                raise self._error
            await self._wait()
        data = self._body.popleft()
        self._buffered -= len(data)
        if self._paused and self._buffered < HIGH_WATER // 2:
            self._resume()
        return data

    def done(self) -> None:
        """The answer was used; cancels the timer."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def reusable(self) -> bool:
        return self.complete and self.keep_alive and not self.closed and self._error is None

    def close(self) -> None:
        self.done()
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    async def _wait(self) -> None:
        waiter = self._loop.create_future()
        self._waiter = waiter
        try:
            await waiter
        finally:
            self._waiter = None

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _resume(self) -> None:
        self._paused = False
        if self.transport is not None and not self.closed:
            self.transport.resume_reading()

    # -- time -------------------------------------------------------------------------------------

    def _arm(self, when: float) -> None:
        self._timer = self._loop.call_at(when, self._check_time)

    def _check_time(self) -> None:
        self._timer = None
        if self.complete or self._error is not None:
            return
        now = self._loop.time()
        if self._paused or (self._body and not self._whole):
            self.last_read = now  # the consumer is behind: the upstream is not the one silent
        if now >= self._deadline:
            self._fail(ReadTimeout("the total deadline passed"))
        elif now - self.last_read >= self._read_timeout:
            self._fail(ReadTimeout("no data within the read timeout"))
        else:
            self._arm(min(self._deadline, self.last_read + self._read_timeout))

    def _fail(self, error: BaseException) -> None:
        if self._error is None:
            self._error = error
        self.keep_alive = False
        self.closed = True
        if self.transport is not None:
            self.transport.close()
        self._wake()

    # -- asyncio.Protocol -------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.complete or self._error is not None:
            return
        if self._head_done and self._framing == 3 and exc is None:
            self._finish()  # a body delimited by the close
            return
        if self.received:
            self._error = CutOff("the connection closed mid-answer")
        elif exc is None or not isinstance(exc, ConnectionError):
            reason = f" ({exc})" if exc is not None else ""
            self._error = ConnectionResetError(f"the connection closed{reason}")
        else:
            self._error = exc
        self._wake()

    def data_received(self, data: bytes) -> None:
        self.last_read = self._loop.time()
        self.received = True
        try:
            if not self._head_done:
                self._head_buf += data
                data = self._parse_head()
                if not self._head_done:
                    return
                if not data and not self.complete:
                    self._wake()
                    return
            if data:
                self._feed(data)
        except WireError as exc:
            self._fail(exc)
            return
        if self.complete or not self._whole:
            self._wake()
        if self._buffered > HIGH_WATER and not self._whole and not self._paused and not self.complete:
            self._pause()

    def _pause(self) -> None:
        self._paused = True
        if self.transport is not None:
            self.transport.pause_reading()

    def eof_received(self) -> bool | None:
        return None  # close the transport; connection_lost follows

    # -- parsing ----------------------------------------------------------------------------------

    def _parse_head(self) -> bytes:
        """Parse the head once complete; returns the body bytes that followed it."""
        buf = self._head_buf
        while True:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > MAX_HEAD:
                    raise WireError("a response head larger than 64 KiB")
                return b""
            lines = bytes(buf[:end]).decode("latin-1").split("\r\n")
            rest = bytes(buf[end + 4 :])
            status_line = lines[0]
            if not status_line.startswith("HTTP/1.") or len(status_line) < 12:
                raise WireError(f"a status line that is not HTTP/1.x: {status_line[:60]!r}")
            code = status_line[9:12]
            if not code.isdigit():
                raise WireError(f"a status line without a status code: {status_line[:60]!r}")
            status = int(code)
            if 100 <= status < 200 and status != 101:
                buf = self._head_buf = bytearray(rest)  # an interim answer: the real one follows
                continue
            headers: dict[str, str] = {}
            for line in lines[1:]:
                name, sep, value = line.partition(":")
                if not sep or not name or name[-1] in " \t":
                    raise WireError(f"a malformed header line: {line[:60]!r}")
                name = name.lower()
                value = value.strip()
                previous = headers.get(name)
                headers[name] = value if previous is None else f"{previous}, {value}"
            self._head_buf = bytearray()
            self._start(status, headers, status_line.startswith("HTTP/1.0"))
            return rest

    def _start(self, status: int, headers: dict[str, str], http10: bool) -> None:
        self.status = status
        self.headers = headers
        self._head_done = True
        connection = headers.get("connection", "").lower()
        self.keep_alive = "close" not in connection and (not http10 or "keep-alive" in connection)
        encoding = headers.get("content-encoding", "").lower()
        if encoding in ("gzip", "deflate"):
            self._decoder = _Decoder(encoding)
        elif encoding not in ("", "identity"):
            raise WireError(f"a body in an unsupported content-encoding: {encoding!r}")
        if status in _NO_BODY:
            self._finish()
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            self._framing = 2
        elif (length := headers.get("content-length")) is not None:
            if not length.isdigit():
                raise WireError(f"an invalid content-length: {length[:40]!r}")
            self._framing = 1
            self._left = int(length)
            if self._left == 0:
                self._finish()
        else:
            self._framing = 3
            self.keep_alive = False

    def _feed(self, data: bytes) -> None:
        if self.complete:
            if data.strip():
                self.keep_alive = False  # bytes after the answer: never reuse this connection
            return
        if self._framing == 1:
            if len(data) >= self._left:
                if len(data) > self._left:
                    self.keep_alive = False
                self._emit(data[: self._left])
                self._left = 0
                self._finish()
            else:
                self._left -= len(data)
                self._emit(data)
        elif self._framing == 2:
            self._feed_chunked(data)
        else:
            self._emit(data)

    def _feed_chunked(self, data: bytes) -> None:
        buf = self._head_buf  # what an earlier read left of a size line or a chunk's CRLF
        if buf:
            buf += data
            data = bytes(buf)
            buf.clear()
        pos = 0
        size = len(data)
        while pos < size and not self.complete:
            left = self._chunk_left
            if left > 0:
                take = left if left < size - pos else size - pos
                self._emit(data[pos : pos + take] if pos or take < size else data)
                pos += take
                self._chunk_left = left - take
                continue
            eol = data.find(b"\r\n", pos)
            if eol < 0:
                if size - pos > 4096:
                    raise WireError("a chunk size line longer than 4 KiB")
                buf += data[pos:]
                return
            line = data[pos:eol]
            pos = eol + 2
            if left == 0:  # the CRLF that ends a chunk's data
                if line:
                    raise WireError("a chunk whose data does not end with CRLF")
                self._chunk_left = -1
                continue
            if left == -2:  # trailers, until an empty line
                if not line:
                    self._finish()
                continue
            try:
                length = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise WireError(f"an invalid chunk size line: {line[:40]!r}") from None
            if length < 0:
                raise WireError("a negative chunk size")
            self._chunk_left = length if length else -2

    def _emit(self, data: bytes) -> None:
        if self._decoder is not None:
            data = self._decoder.feed(data)
        if data:
            self._body.append(data)
            self._buffered += len(data)

    def _finish(self) -> None:
        self.complete = True
        self.done()
        self._wake()
