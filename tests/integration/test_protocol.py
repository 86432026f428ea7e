"""HTTP abuse at the edge, spoken over raw sockets: stalled and cut bodies, broken framing, idle
connections, missing Host, wrong content types and methods, oversized headers. Each answer is the
OpenAI envelope with the right status, and nothing holds a request (or its in-flight slot) forever."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.conftest import TEST_CATALOG, Mock, Router, start_router

CHAT = b'{"model": "gpt-5-mini", "messages": [{"role": "user", "content": "hi"}]}'
POST_ROUTES = ["/v1/chat/completions", "/v1/responses", "/v1/completions", "/v1/embeddings", "/v1/route"]


@pytest.fixture(scope="module")
def strict(mock_process: Mock, artifacts: Path) -> Iterator[Router]:
    """A router whose body and header deadlines are one second."""
    env = {"ROUTER_BODY_TIMEOUT_S": "1", "ROUTER_HEADER_TIMEOUT_S": "1"}
    router = start_router(mock_process, artifacts, TEST_CATALOG, "router-protocol", env=env)
    try:
        yield router
    finally:
        router.process.stop()


def exchange(
    router: Router, raw: bytes, *, half_close: bool = False, wait: float = 5.0
) -> tuple[float, bytes]:
    """Send ``raw`` on a fresh connection; what came back until the router closed it, and when."""
    port = int(router.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.settimeout(wait)
        started = time.monotonic()
        if raw:
            sock.sendall(raw)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        received = b""
        while True:
            try:
                data = sock.recv(65536)
            except TimeoutError:
                break
            if not data:
                break
            received += data
        return time.monotonic() - started, received


def parse(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:] if ": " in line)
    return int(lines[0].split()[1]), headers, body


def head(path: str = "/v1/chat/completions", extra: str = "") -> bytes:
    return f"POST {path} HTTP/1.1\r\nHost: router\r\nContent-Type: application/json\r\n{extra}".encode()


def in_flight(router: Router) -> int:
    traffic: dict[str, int] = router.http.get("/health").json()["traffic"]
    return traffic["in_flight"]


def test_a_body_slower_than_its_deadline_gets_408_and_frees_its_slot(strict: Router) -> None:
    took, raw = exchange(strict, head(extra="Content-Length: 100\r\n\r\n") + b'{"model"')
    status, headers, body = parse(raw)
    assert status == 408 and 0.9 < took < 3.0
    error = json.loads(body)["error"]
    assert error["code"] == "request_timeout" and "8 bytes of the 100 declared" in error["message"]
    assert headers["connection"] == "close"  # the rest of a late body is not read as a new request
    assert in_flight(strict) == 1  # the /health request asking


def test_a_body_shorter_than_its_content_length_is_called_incomplete(strict: Router) -> None:
    _, raw = exchange(strict, head(extra="Content-Length: 100\r\n\r\n") + b'{"model"', half_close=True)
    status, _, body = parse(raw)
    error = json.loads(body)["error"]
    assert status == 400 and error["code"] == "incomplete_body"
    assert "8 bytes of the 100 bytes it declared" in error["message"]
    assert "empty" not in error["message"]


def test_broken_chunked_framing_is_called_incomplete(strict: Router) -> None:
    _, raw = exchange(strict, head(extra="Transfer-Encoding: chunked\r\n\r\n") + b"ZZ\r\nabc\r\n0\r\n\r\n")
    status, _, body = parse(raw)
    assert status == 400 and json.loads(body)["error"]["code"] == "incomplete_body"


def test_a_connection_that_never_sends_a_byte_is_closed(strict: Router) -> None:
    took, raw = exchange(strict, b"", wait=10.0)
    assert raw == b"" and took < 3.0


def test_http11_without_host_is_refused_and_http10_is_served(strict: Router) -> None:
    _, raw = exchange(strict, b"GET /v1/models HTTP/1.1\r\n\r\n")
    status, _, body = parse(raw)
    assert status == 400 and "Host" in json.loads(body)["error"]["message"]
    _, raw = exchange(strict, b"GET /v1/models HTTP/1.0\r\n\r\n")
    assert parse(raw)[0] == 200


@pytest.mark.parametrize("path", POST_ROUTES)
@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_post_bodies_must_be_declared_json(router: Router, path: str, content_type: str | None) -> None:
    headers = {"content-type": content_type} if content_type else {}
    answer = httpx.post(router.url + path, content=CHAT, headers=headers)
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "unsupported_content_type"
    answer = httpx.post(
        router.url + path, content=CHAT, headers={"content-type": "Application/JSON; charset=utf-8"}
    )
    assert answer.json().get("error", {}).get("code") != "unsupported_content_type"


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("GET", "/v1/chat/completions", "POST, OPTIONS"),
        ("PUT", "/v1/embeddings", "POST, OPTIONS"),
        ("GET", "/route", "POST, OPTIONS"),
        ("POST", "/v1/models", "GET, OPTIONS"),
        ("PUT", "/v1/responses/resp_1", "DELETE, GET, OPTIONS"),
    ],
)
def test_a_wrong_method_is_405_with_allow_and_the_method_to_use(
    router: Router, method: str, path: str, allow: str
) -> None:
    answer = router.http.request(method, path)
    assert answer.status_code == 405
    assert set(answer.headers["allow"].split(", ")) == set(allow.split(", "))
    message = answer.json()["error"]["message"]
    assert method in message and allow.split(", ")[0] in message
    options = router.http.options(path)
    assert options.status_code == 204 and options.headers["allow"] == allow


def test_headers_over_the_limits_get_431(router: Router) -> None:
    # Over the catalog's max_headers (default 64): the router's own answer, in the envelope.
    answer = router.http.get("/v1/models", headers={f"x-pad-{i}": "1" for i in range(70)})
    assert answer.status_code == 431
    assert answer.json()["error"]["code"] == "request_header_fields_too_large"
    # Over 100, the HTTP server answers before the router sees the request (documented: empty body).
    answer = router.http.get("/v1/models", headers={f"x-pad-{i}": "1" for i in range(120)})
    assert answer.status_code == 431


def test_the_catalog_cannot_allow_more_headers_than_the_server_reads(tmp_path: Path) -> None:
    from router.catalog import CatalogError, load_catalog

    text = TEST_CATALOG.read_text() + "\naccess:\n  max_headers: 150\n"
    path = tmp_path / "catalog.yaml"
    path.write_text(text)
    with pytest.raises(CatalogError) as info:
        load_catalog(str(path), {})
    assert "max_headers" in str(info.value)
