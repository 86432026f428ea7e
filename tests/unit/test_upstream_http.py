"""The upstream HTTP/1.1 client against scripted servers on real sockets: every body framing, reuse of
keep-alive connections, the pool's limit, timeouts, and each way an upstream can break."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar, cast

import pytest
import uvloop
from hypothesis import given, settings
from hypothesis import strategies as st

from router.catalog import parse_catalog
from router.errors import StreamInterrupted, UpstreamBadResponse, UpstreamTimeout, UpstreamUnreachable
from router.providers._http import UpstreamClient
from router.providers._wire import Connection

Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
T = TypeVar("T")
Run = Callable[[Coroutine[Any, Any, T]], T]


@pytest.fixture(params=["asyncio", "uvloop"])
def run(request: pytest.FixtureRequest) -> Run[Any]:
    """Each test runs on both event loops: the router serves on uvloop, tests often use asyncio's."""
    factory = uvloop.new_event_loop if request.param == "uvloop" else asyncio.new_event_loop

    def run_on(coro: Coroutine[Any, Any, T]) -> T:
        with asyncio.Runner(loop_factory=factory) as runner:
            return runner.run(coro)

    return run_on


def client(max_connections: int = 8, read: float = 5.0, total: float = 10.0) -> UpstreamClient:
    catalog = parse_catalog(
        f"""
providers:
  p: {{kind: openai, base_url: "http://127.0.0.1:1/v1", max_connections: {max_connections},
      timeouts: {{connect: 2, read: {read}, total: {total}}}}}
models:
  m: {{provider: p, context_window: 1000, max_output: 100, quality: 1,
      price: {{input: 1, output: 1}}, speed: {{ttft_ms: 1, tokens_per_s: 1}}}}
""",
        {},
    )
    return UpstreamClient(catalog.providers["p"])


async def read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    """One request's head and body (by its content-length)."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    return head, await reader.readexactly(length)


class Server:
    """A loopback server that runs ``script`` on each connection and counts connections."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.connections = 0
        self.heads: list[bytes] = []
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> str:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.connections += 1
            try:
                await self.script(reader, writer)
            except (ConnectionError, asyncio.IncompleteReadError):
                pass
            finally:
                writer.close()

        self.server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/v1/chat/completions"

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()


def answer(body: bytes, *headers: str, status: str = "200 OK") -> bytes:
    lines = [f"HTTP/1.1 {status}", f"content-length: {len(body)}", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def keep_answering(reply: Callable[[bytes, bytes], bytes], heads: list[bytes] | None = None) -> Script:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                head, body = await read_request(reader)
            except asyncio.IncompleteReadError:
                return
            if heads is not None:
                heads.append(head)
            writer.write(reply(head, body))
            await writer.drain()

    return script


def test_a_json_answer_and_the_connection_is_reused(run: Run[Any]) -> None:
    heads: list[bytes] = []
    server = Server(keep_answering(lambda _h, body: answer(b'{"echo":' + body + b"}"), heads))

    async def scenario() -> list[bytes]:
        http = client()
        async with server as url:
            try:
                answers = [await http.post(url, {"authorization": "Bearer k"}, b'"%d"' % i) for i in range(5)]
            finally:
                await http.aclose()
        assert all(a.status == 200 for a in answers)
        return [a.body for a in answers]

    assert run(scenario()) == [b'{"echo":"%d"}' % i for i in range(5)]
    assert server.connections == 1
    assert heads[0].startswith(b"POST /v1/chat/completions HTTP/1.1\r\n")
    assert b"\r\nhost: 127.0.0.1:" in heads[0] and b"\r\nauthorization: Bearer k\r\n" in heads[0]


def test_header_names_are_lower_case_and_repeated_ones_joined(run: Run[Any]) -> None:
    reply = answer(b"{}", "X-RateLimit-Remaining-Requests: 7", "Via: a", "via: b", "Retry-After:  3 ")
    server = Server(keep_answering(lambda _h, _b: reply))

    async def scenario() -> dict[str, str]:
        http = client()
        async with server as url:
            try:
                return dict((await http.post(url, {}, b"{}")).headers)
            finally:
                await http.aclose()

    headers = run(scenario())
    assert headers["x-ratelimit-remaining-requests"] == "7"
    assert headers["via"] == "a, b"
    assert headers["retry-after"] == "3"


def chunked(*pieces: bytes, trailer: bytes = b"") -> bytes:
    out = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-type: text/event-stream\r\n\r\n"
    for piece in pieces:
        out += b"%x;ext=1\r\n" % len(piece) + piece + b"\r\n"
    return out + b"0\r\n" + trailer + b"\r\n"


@pytest.mark.parametrize("step", [1, 3, 1000])
def test_a_chunked_answer_split_anywhere_is_unframed_exactly(run: Run[Any], step: int) -> None:
    pieces = [b"data: %d\n\n" % i for i in range(30)]
    wire = chunked(*pieces, trailer=b"x-trailer: 1\r\n")

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await read_request(reader)
            for i in range(0, len(wire), step):
                writer.write(wire[i : i + step])
                await writer.drain()

    server = Server(script)

    async def scenario() -> tuple[bytes, bytes]:
        http = client()
        async with server as url:
            try:
                streamed = b""
                async with http.stream(url, {}, b"{}") as response:
                    assert response.headers["content-type"] == "text/event-stream"
                    async for chunk in response.chunks():
                        streamed += chunk
                whole = (await http.post(url, {}, b"{}")).body
            finally:
                await http.aclose()
        return streamed, whole

    streamed, whole = run(scenario())
    assert streamed == whole == b"".join(pieces)
    assert server.connections == 1  # the stream was read to its end, so its connection was reused


def test_a_body_delimited_by_the_close_and_an_interim_answer(run: Run[Any]) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.0 200 OK\r\ncontent-type: application/json\r\n\r\n"
        )
        writer.write(b'{"a":')
        await writer.drain()
        writer.write(b"1}")

    server = Server(script)

    async def scenario() -> list[bytes]:
        http = client()
        async with server as url:
            try:
                return [(await http.post(url, {}, b"{}")).body for _ in range(2)]
            finally:
                await http.aclose()

    assert run(scenario()) == [b'{"a":1}', b'{"a":1}']
    assert server.connections == 2  # such a connection cannot carry a second request


def test_connection_close_and_http10_are_not_reused_and_gzip_is_decoded(run: Run[Any]) -> None:
    packed = gzip.compress(b'{"ok":true}')
    replies = [
        answer(b"{}", "connection: close"),
        answer(b"{}").replace(b"HTTP/1.1", b"HTTP/1.0"),
        answer(packed, "content-encoding: gzip"),
    ]
    server = Server(keep_answering(lambda _h, _b: replies[server.connections - 1]))

    async def scenario() -> list[bytes]:
        http = client()
        async with server as url:
            try:
                return [(await http.post(url, {}, b"{}")).body for _ in range(3)]
            finally:
                await http.aclose()

    assert run(scenario()) == [b"{}", b"{}", b'{"ok":true}']
    assert server.connections == 3


def test_the_pool_limit_queues_requests_on_its_connections(run: Run[Any]) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await read_request(reader)
            await asyncio.sleep(0.02)
            writer.write(answer(b"{}"))

    server = Server(script)

    async def scenario() -> list[int]:
        http = client(max_connections=2)
        async with server as url:
            try:
                answers = await asyncio.gather(*(http.post(url, {}, b"{}") for _ in range(10)))
            finally:
                await http.aclose()
        return [a.status for a in answers]

    assert run(scenario()) == [200] * 10
    assert server.connections == 2


def test_a_connection_the_upstream_closed_while_idle_is_replaced(run: Run[Any]) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(answer(b"{}"))  # keep-alive announced, then closed once idle
        await writer.drain()

    server = Server(script)

    async def scenario() -> list[int]:
        http = client()
        async with server as url:
            try:
                first = await http.post(url, {}, b"{}")
                await asyncio.sleep(0.1)
                second = await http.post(url, {}, b"{}")
            finally:
                await http.aclose()
        return [first.status, second.status]

    assert run(scenario()) == [200, 200]
    assert server.connections == 2


def broken(wire: bytes) -> Script:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(wire)
        await writer.drain()

    return script


@pytest.mark.parametrize(
    ("wire", "error", "words"),
    [
        (b"", UpstreamUnreachable, "closed the connection without answering"),
        (b"SSH-2.0-OpenSSH\r\n\r\n", UpstreamBadResponse, "not valid HTTP"),
        (b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", UpstreamBadResponse, "malformed header"),
        (b"HTTP/1.1 200 OK\r\ncontent-length: x\r\n\r\n", UpstreamBadResponse, "content-length"),
        (b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n{}", UpstreamBadResponse, "cut off"),
        (b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n", UpstreamBadResponse, "chunk size"),
        (
            b"HTTP/1.1 200 OK\r\ncontent-encoding: br\r\ncontent-length: 2\r\n\r\n{}",
            UpstreamBadResponse,
            "br",
        ),
    ],
)
def test_each_broken_answer_is_a_clear_error(
    run: Run[Any], wire: bytes, error: type[Exception], words: str
) -> None:
    server = Server(broken(wire))

    async def scenario() -> None:
        http = client()
        async with server as url:
            try:
                with pytest.raises(error, match=words):
                    await http.post(url, {}, b"{}")
            finally:
                await http.aclose()

    run(scenario())


def test_a_stream_closed_mid_body_yields_everything_then_raises(run: Run[Any]) -> None:
    events = [b"data: %d\n\n" % i for i in range(50)]
    server = Server(broken(chunked(*events)[:-5]))  # no final chunk: the body ends without its terminator

    async def scenario() -> bytes:
        http = client()
        received = b""
        async with server as url:
            try:
                async with http.stream(url, {}, b"{}") as answer_:
                    await asyncio.sleep(0.2)  # everything arrives and is buffered before it is read
                    with pytest.raises(StreamInterrupted, match="broke off"):
                        async for chunk in answer_.chunks():
                            received += chunk
            finally:
                await http.aclose()
        return received

    assert run(scenario()) == b"".join(events)


def test_silence_past_the_read_timeout_and_the_total_deadline(run: Run[Any]) -> None:
    async def stall_after_head(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{")
        await asyncio.sleep(5)

    async def trickle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n")
        for _ in range(100):
            await asyncio.sleep(0.05)
            writer.write(b" ")

    async def scenario(script: Script, read: float, total: float) -> float:
        http = client(read=read, total=total)
        loop = asyncio.get_running_loop()
        async with Server(script) as url:
            start = loop.time()
            try:
                with pytest.raises(UpstreamTimeout, match="did not answer in time"):
                    await http.post(url, {}, b"{}")
            finally:
                await http.aclose()
        return loop.time() - start

    assert 0.25 <= run(scenario(stall_after_head, read=0.3, total=10)) < 1.5
    assert 0.5 <= run(scenario(trickle, read=0.3, total=0.6)) < 2.0  # each byte is in time


def test_a_slow_reader_is_not_a_silent_upstream(run: Run[Any]) -> None:
    events = [b"data: %d\n\n" % i for i in range(5)]
    server = Server(broken(chunked(*events)))

    async def scenario() -> bytes:
        http = client(read=0.2)
        received = b""
        async with server as url:
            try:
                async with http.stream(url, {}, b"{}") as response:
                    async for chunk in response.chunks():
                        received += chunk
                        await asyncio.sleep(0.3)  # the router's client is slower than the read timeout
            finally:
                await http.aclose()
        return received

    assert run(scenario()) == b"".join(events)


def test_refused_and_unresolvable_upstreams(run: Run[Any]) -> None:
    async def scenario(url: str) -> UpstreamUnreachable:
        http = client()
        try:
            with pytest.raises(UpstreamUnreachable) as caught:
                await http.post(url, {}, b"{}")
        finally:
            await http.aclose()
        return caught.value

    refused = run(scenario("http://127.0.0.1:9/v1/chat/completions"))
    assert "connection failed" in refused.message and refused.client_should_retry is False
    unknown = run(scenario("http://router-test.invalid/v1/chat/completions"))
    assert "connection failed" in unknown.message


def test_a_stream_left_early_closes_its_connection(run: Run[Any]) -> None:
    events = [b"data: %d\n\n" % i for i in range(5)]
    wire = chunked(*events)
    split = wire.index(b"data: 1")

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await read_request(reader)
            writer.write(wire[:split])
            await asyncio.sleep(0.1)
            writer.write(wire[split:])

    server = Server(script)

    async def scenario() -> None:
        http = client()
        async with server as url:
            try:
                async with http.stream(url, {}, b"{}") as response:
                    async for _chunk in response.chunks():
                        break  # the client went away: the upstream must see the connection close
                assert (await http.post(url, {}, b"{}")).body == b"".join(events)
            finally:
                await http.aclose()

    run(scenario())
    assert server.connections == 2


class _Transport:
    """Enough of a transport for the parser alone."""

    def write(self, data: bytes) -> None:
        pass

    def writelines(self, data: object) -> None:
        pass

    def close(self) -> None:
        pass

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


@settings(max_examples=300, deadline=None)
@given(
    pieces=st.lists(st.binary(min_size=0, max_size=300), max_size=12),
    cuts=st.lists(st.integers(min_value=1, max_value=4000), max_size=30),
    gzipped=st.booleans(),
)
def test_any_chunked_body_split_at_any_points_is_unframed_exactly(
    pieces: list[bytes], cuts: list[int], gzipped: bool
) -> None:
    body = b"".join(pieces)
    data = gzip.compress(body) if gzipped else body
    parts = [data[i : i + 97] for i in range(0, len(data), 97)] if gzipped else [p for p in pieces if p]
    head = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n"
    head += b"content-encoding: gzip\r\n\r\n" if gzipped else b"\r\n"
    wire = head + b"".join(b"%x\r\n" % len(p) + p + b"\r\n" for p in parts) + b"0\r\n\r\n"
    loop = asyncio.new_event_loop()
    try:
        conn = Connection(loop)
        conn.connection_made(cast(asyncio.Transport, _Transport()))
        conn.send(b"", b"", 60.0, loop.time() + 60.0)
        start = 0
        for cut in sorted(set(cuts)):
            if start < cut < len(wire):
                conn.data_received(wire[start:cut])
                start = cut
        conn.data_received(wire[start:])
        assert conn.complete and conn.reusable()
        received = b"".join(conn._body)
        conn.done()
    finally:
        loop.close()
    assert received == body
