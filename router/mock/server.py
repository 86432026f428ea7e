"""One aiohttp app hosting every fake provider under its own path prefix, plus the ``/__mock__`` control API.

``build_mock_app`` composes it; ``MockServer`` runs it on a real loopback socket (tests, benchmark);
``serve_forever`` is what the ``mock`` CLI command runs.
"""

from __future__ import annotations

import asyncio
import ipaddress
from types import TracebackType
from typing import Final

import msgspec
from aiohttp import web
from aiohttp.typedefs import Handler

from router.mock.anthropic_fake import AnthropicFake
from router.mock.azure_fake import AzureFake
from router.mock.azure_wire import PREFIX as AZURE_PREFIX
from router.mock.bedrock_fake import BedrockFake
from router.mock.faults import ANY_MODEL, MockState
from router.mock.faultspec import Fault
from router.mock.gemini_fake import GeminiFake
from router.mock.openai_fake import OpenAIFake
from router.mock.openai_wire import PREFIX as OPENAI_PREFIX
from router.mock.openai_wire import invalid_request, not_found
from router.mock.requestlog import note_disconnect
from router.mock.vertex_fake import VertexFake
from router.mock.vertex_wire import PREFIX as VERTEX_PREFIX

STATE_KEY: Final = web.AppKey("mock_state", MockState)
CONTROL_PREFIX: Final = "/__mock__"
MAX_BODY_BYTES: Final = 64 * 1024 * 1024
_OK: Final = b'{"ok":true}'


class _FaultBody(msgspec.Struct, forbid_unknown_fields=True):
    """``POST /__mock__/faults``: see ``FaultStore.add`` (``times`` defaults to 1, or -1 with ``for_s``)."""

    fault: Fault
    provider: str = "openai"
    model: str = ANY_MODEL
    times: int | None = None
    for_s: float | None = None
    ratio: float = 1.0
    seed: int | None = None


class _BehaviourBody(msgspec.Struct, forbid_unknown_fields=True):
    provider: str = "openai"
    model: str = ANY_MODEL
    ttft_ms: float = 0.0
    tokens_per_s: float | None = None
    latency_ms: float = 0.0
    simulate_generation_time: bool = False


class _KeyBody(msgspec.Struct, forbid_unknown_fields=True):
    key: str | None
    provider: str = "openai"


def _json(payload: object, status: int = 200) -> web.Response:
    return web.Response(status=status, body=msgspec.json.encode(payload), content_type="application/json")


def _ok() -> web.Response:
    return web.Response(body=_OK, content_type="application/json")


class _ControlApi:
    """``/__mock__``: script faults, speed and keys, and read the request log over HTTP."""

    def __init__(self, state: MockState) -> None:
        self._state = state

    def add_routes(self, app: web.Application) -> None:
        router = app.router
        router.add_get(f"{CONTROL_PREFIX}/faults", self.list_faults)
        router.add_post(f"{CONTROL_PREFIX}/faults", self.add_fault)
        router.add_delete(f"{CONTROL_PREFIX}/faults", self.clear_faults)
        router.add_post(f"{CONTROL_PREFIX}/behaviour", self.set_behaviour)
        router.add_delete(f"{CONTROL_PREFIX}/behaviour", self.clear_behaviours)
        router.add_get(f"{CONTROL_PREFIX}/requests", self.list_requests)
        router.add_delete(f"{CONTROL_PREFIX}/requests", self.clear_requests)
        router.add_post(f"{CONTROL_PREFIX}/key", self.set_key)
        router.add_post(f"{CONTROL_PREFIX}/reset", self.reset)

    async def list_faults(self, request: web.Request) -> web.Response:
        return _json({"faults": self._state.faults.pending(request.query.get("provider"))})

    async def add_fault(self, request: web.Request) -> web.Response:
        try:
            body = msgspec.json.decode(await request.read(), type=_FaultBody)
            self._state.faults.add(
                body.provider,
                body.model,
                body.fault,
                body.times,
                for_s=body.for_s,
                ratio=body.ratio,
                seed=body.seed,
            )
        except (msgspec.DecodeError, ValueError) as exc:
            return invalid_request(str(exc))
        return _ok()

    async def clear_faults(self, request: web.Request) -> web.Response:
        self._state.faults.clear(request.query.get("provider"))
        return _ok()

    async def set_behaviour(self, request: web.Request) -> web.Response:
        try:
            body = msgspec.json.decode(await request.read(), type=_BehaviourBody)
            self._state.set_behaviour(
                body.provider,
                body.model,
                ttft_ms=body.ttft_ms,
                tokens_per_s=body.tokens_per_s,
                latency_ms=body.latency_ms,
                simulate_generation_time=body.simulate_generation_time,
            )
        except (msgspec.DecodeError, ValueError) as exc:
            return invalid_request(str(exc))
        return _ok()

    async def clear_behaviours(self, request: web.Request) -> web.Response:
        self._state.clear_behaviours()
        return _ok()

    async def list_requests(self, request: web.Request) -> web.Response:
        return _json({"requests": self._state.requests(request.query.get("provider"))})

    async def clear_requests(self, request: web.Request) -> web.Response:
        self._state.clear_requests()
        return _ok()

    async def set_key(self, request: web.Request) -> web.Response:
        try:
            body = msgspec.json.decode(await request.read(), type=_KeyBody)
        except msgspec.DecodeError as exc:
            return invalid_request(str(exc))
        self._state.set_required_key(body.provider, body.key)
        return _ok()

    async def reset(self, request: web.Request) -> web.Response:
        self._state.reset()
        return _ok()


class _RequestIdStamp:
    """Gives every response an ``x-request-id: req_<hex>`` header, as OpenAI does."""

    __slots__ = ("_state",)

    def __init__(self, state: MockState) -> None:
        self._state = state

    async def __call__(self, request: web.Request, response: web.StreamResponse) -> None:
        if "x-request-id" not in response.headers:
            response.headers["x-request-id"] = "req_" + self._state.ids.next_hex()


@web.middleware
async def _note_disconnects(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Log when a client goes away before its answer is complete: aiohttp cancels the handler then."""
    try:
        return await handler(request)
    except asyncio.CancelledError:
        note_disconnect(request)
        raise


async def _unknown_path(request: web.Request) -> web.Response:
    return not_found(request)


def build_mock_app(state: MockState | None = None) -> web.Application:
    """The mock providers app; pass ``state`` to script it in-process (else a fresh one is made)."""
    state = state if state is not None else MockState()
    app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=[_note_disconnects])
    app[STATE_KEY] = state
    OpenAIFake(state).add_routes(app)
    anthropic = AnthropicFake(state)
    anthropic.add_routes(app)
    gemini = GeminiFake(state)
    gemini.add_routes(app)
    AzureFake(state).add_routes(app)
    BedrockFake(state).add_routes(app)
    VertexFake(state, gemini, anthropic).add_routes(app)
    _ControlApi(state).add_routes(app)
    app.router.add_route("*", "/{tail:.*}", _unknown_path)
    app.on_response_prepare.append(_RequestIdStamp(state))
    return app


class MockServer:
    """Runs the mock app on a real socket: ``async with MockServer() as mock: ... mock.url ...``."""

    def __init__(self, state: MockState | None = None) -> None:
        self.state = state if state is not None else MockState()
        self._runner: web.AppRunner | None = None
        self._host = "127.0.0.1"
        self._port: int | None = None

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> MockServer:
        """Bind and serve (``port=0``: an ephemeral port, read it from ``.port``)."""
        if self._runner is not None:
            raise RuntimeError("MockServer already started")
        runner = web.AppRunner(
            build_mock_app(self.state), access_log=None, handler_cancellation=True, shutdown_timeout=1.0
        )
        await runner.setup()
        try:
            site = web.TCPSite(runner, host, port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self._host = host
        self._port = int(runner.addresses[0][1])
        return self

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("MockServer not started")
        return self._port

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:54321`` (a wildcard bind is reached via loopback)."""
        host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(self._host, self._host)
        try:
            if ipaddress.ip_address(host).version == 6:
                host = f"[{host}]"
        except ValueError:
            pass  # a host name
        return f"http://{host}:{self.port}"

    @property
    def openai_url(self) -> str:
        """Base URL for an OpenAI client (``base_url=``)."""
        return self.url + OPENAI_PREFIX

    @property
    def azure_endpoint(self) -> str:
        """The fake Azure resource's endpoint (``azure_endpoint=`` of ``AzureOpenAI``)."""
        return self.url + AZURE_PREFIX

    @property
    def vertex_url(self) -> str:
        """The fake Vertex AI host (a vertex provider's base URL)."""
        return self.url + VERTEX_PREFIX

    async def close(self) -> None:
        runner, self._runner = self._runner, None
        self._port = None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> MockServer:
        if self._runner is None:
            await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()


async def serve_forever(host: str = "127.0.0.1", port: int = 8089, state: MockState | None = None) -> None:
    """Serve the mock providers until cancelled (Ctrl-C under ``asyncio.run``)."""
    server = MockServer(state)
    await server.start(host, port)
    try:
        print(
            f"mock providers listening on {server.url} (openai: {server.openai_url}, "
            f"azure endpoint: {server.azure_endpoint}, vertex: {server.vertex_url})",
            flush=True,
        )
        await asyncio.Event().wait()
    finally:
        await server.close()
