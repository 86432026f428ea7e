"""Fake AWS Bedrock runtime: Converse and ConverseStream under ``/bedrock/model/{modelId}/...``.

Requests must be signed with SigV4 by a key the fake knows (``bedrock_wire.ACCESS_KEY`` unless a test
requires another as ``"<access key>:<secret>"``) or carry a Bedrock API key as a bearer token (any,
unless a test requires one). Bodies are checked as Bedrock checks them (roles alternating from the
user, one key per content block, a toolConfig beside tool blocks, temperature within 0-1), streams
are binary event-stream frames with a ``p`` padding key as Bedrock sends them, and ``cachePoint``
blocks are read and written in the shared prompt cache. Faults: ``status`` renders the error by its
status (``type`` names another, e.g. ``ModelNotReadyException``), ``stream_error`` sends an exception
frame (``type``: its ``:exception-type``), ``malformed_sse`` a frame whose CRC does not match.
"""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import Iterator
from typing import Any, Final
from urllib.parse import unquote

import msgspec
from aiohttp import web

from router.mock._base import FakeProvider, act_out, answer, fault_headers
from router.mock.bedrock_wire import (
    ACCESS_KEY,
    EVENT_STREAM,
    PREFIX,
    SECRET_KEY,
    aws_error,
    check_sigv4,
    corrupted,
    event_frame,
    exception_frame,
)
from router.mock.faults import MockState
from router.mock.faultspec import Fault
from router.mock.prefixcache import CHARS_PER_TOKEN, PromptCache, seeded
from router.mock.streaming import FIRST, MALFORMED_EVENT, Pace, write_stream
from router.mock.textgen import LastRole, Prompt, Reply, ToolSpec, fake_arguments, plan_reply

PROVIDER: Final = "bedrock"
BLOCKS: Final = frozenset(
    {
        "text",
        "image",
        "document",
        "video",
        "toolUse",
        "toolResult",
        "reasoningContent",
        "cachePoint",
        "guardContent",
    }
)
STOP_REASONS: Final = {
    "end": "end_turn",
    "length": "max_tokens",
    "stop_sequence": "stop_sequence",
    "tool_calls": "tool_use",
}
DEFAULT_ERRORS: Final = {
    400: ("ValidationException", "Malformed input request, please reformat your input and try again."),
    401: ("UnrecognizedClientException", "The security token included in the request is invalid."),
    403: ("AccessDeniedException", "You don't have access to the model with the specified model ID."),
    404: ("ResourceNotFoundException", "The provided model identifier is invalid."),
    408: ("ModelTimeoutException", "Model has timed out in processing the request."),
    424: ("ModelErrorException", "The model encountered an error processing the request."),
    429: ("ThrottlingException", "Too many requests, please wait before trying again."),
    500: (
        "InternalServerException",
        "The server encountered an internal error while processing the request.",
    ),
    503: ("ServiceUnavailableException", "The service is temporarily unable to handle the request."),
}
CACHE_MINIMUM: Final = (("haiku-4-5", 4096), ("opus-4-5", 4096), ("nova", 1000))
DEFAULT_CACHE_MINIMUM: Final = 1024
CACHE_TTL_S: Final = {"5m": 300.0, "1h": 3600.0}
STREAM_FAILED: Final = "The system encountered an unexpected error during processing. Try your request again."
PADDING: Final = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123"


START_WITH_USER: Final = (
    "A conversation must start with a user message. Try again with a conversation that starts with a "
    "user message."
)
ALTERNATE: Final = (
    "A conversation must alternate between user and assistant roles. Make sure the conversation "
    "alternates between user and assistant roles and try again."
)
MALFORMED_INPUT: Final = "Malformed input request, please reformat your input and try again."
ONE_MEMBER: Final = "Member must have exactly one member set"


def constraint(at: str, rule: str) -> str:
    """Bedrock's wording of one failed constraint."""
    return f"1 validation error detected: Value at '{at}' failed to satisfy constraint: {rule}"


class Invalid(Exception):
    """A request Bedrock refuses with a ValidationException (the message is Bedrock's wording)."""


# --- request checks ------------------------------------------------------------------------------


def check(req: Any) -> None:
    """Raise ``Invalid`` where Bedrock would answer 400."""
    if not isinstance(req, dict):
        raise Invalid(MALFORMED_INPUT)
    messages = req.get("messages")
    if not isinstance(messages, list) or not messages or messages[0].get("role") != "user":
        raise Invalid(START_WITH_USER)
    uses_tools = False
    for i, message in enumerate(messages):
        if i and message.get("role") == messages[i - 1].get("role"):
            raise Invalid(ALTERNATE)
        content = message.get("content")
        at = f"messages.{i + 1}.member.content"
        if not isinstance(content, list) or not content:
            raise Invalid(constraint(at, "Member must have length greater than or equal to 1"))
        for j, block in enumerate(content):
            _check_block(block, f"{at}.{j + 1}.member")
            uses_tools = uses_tools or "toolUse" in block or "toolResult" in block
    _check_config(req.get("inferenceConfig") or {})
    for j, block in enumerate(req.get("system") or ()):
        if len(block) != 1 or ("text" in block and not block["text"]):
            raise Invalid(constraint(f"system.{j + 1}.member", ONE_MEMBER))
    if uses_tools and not (req.get("toolConfig") or {}).get("tools"):
        raise Invalid(
            "The toolConfig field must be defined when using toolUse and toolResult content blocks."
        )
    text_format = (req.get("outputConfig") or {}).get("textFormat")
    schema = ((text_format or {}).get("structure") or {}).get("jsonSchema") or {}
    if text_format is not None and not isinstance(schema.get("schema"), str):
        at = "outputConfig.textFormat.structure.jsonSchema.schema"
        raise Invalid(constraint(at, "Member must be a string"))


def _check_config(config: dict[str, Any]) -> None:
    temperature = config.get("temperature")
    if temperature is not None and not 0 <= temperature <= 1:
        raise Invalid(
            constraint("inferenceConfig.temperature", "Member must have value less than or equal to 1")
        )
    if config.get("maxTokens") is not None and config["maxTokens"] < 1:
        rule = "Member must have value greater than or equal to 1"
        raise Invalid(constraint("inferenceConfig.maxTokens", rule))
    if any(not s for s in config.get("stopSequences") or ()):
        rule = "Member must satisfy constraint: [Member must have length greater than or equal to 1]"
        raise Invalid(constraint("inferenceConfig.stopSequences", rule))


def _check_block(block: Any, at: str) -> None:
    if not isinstance(block, dict) or len(block) != 1 or next(iter(block)) not in BLOCKS:
        raise Invalid(constraint(at, ONE_MEMBER))
    if "text" in block and not block["text"]:
        raise Invalid(
            f"The text field in the ContentBlock object at {at} is blank. Add text to the text field, "
            "and try again."
        )
    image = block.get("image")
    if image is not None and image.get("format") not in ("png", "jpeg", "gif", "webp"):
        rule = "Member must satisfy enum value set: [gif, jpeg, png, webp]"
        raise Invalid(constraint(f"{at}.image.format", rule))


# --- prompt extraction ---------------------------------------------------------------------------


def _texts(blocks: list[dict[str, Any]]) -> str:
    return "".join(b["text"] for b in blocks if "text" in b)


def _result_text(block: dict[str, Any]) -> str:
    parts = block["toolResult"].get("content") or []
    return "".join(p["text"] if "text" in p else msgspec.json.encode(p.get("json")).decode() for p in parts)


def prompt_of(req: dict[str, Any]) -> Prompt:
    system = _texts(req.get("system") or [])
    chars = len(system)
    user_text, results, text = "", [], ""
    for message in req["messages"]:
        blocks = message["content"]
        text = _texts(blocks)
        results = [_result_text(b) for b in blocks if "toolResult" in b]
        chars += len(text) + sum(len(r) for r in results)
        if message["role"] == "user" and (text or not results):
            user_text = text
    last_role: LastRole = "user"
    if req["messages"][-1]["role"] == "assistant":
        last_role = "other"
    elif results and not text.strip():
        last_role = "tool"
    tool_config = req.get("toolConfig") or {}
    specs = [t["toolSpec"] for t in tool_config.get("tools") or () if "toolSpec" in t]
    choice = tool_config.get("toolChoice") or {}
    config = req.get("inferenceConfig") or {}
    return Prompt(
        user_text=user_text,
        prompt_chars=chars,
        last_role=last_role,
        tool_results=tuple(results) if last_role == "tool" else (),
        tools=tuple(ToolSpec(s["name"], s.get("inputSchema", {}).get("json")) for s in specs),
        forced_tool=(choice.get("tool") or {}).get("name"),
        max_tokens=config.get("maxTokens"),
        stops=tuple(config.get("stopSequences") or ()),
    )


# --- prompt caching ------------------------------------------------------------------------------


def _minimum(model: str) -> int:
    return next((tokens for name, tokens in CACHE_MINIMUM if name in model), DEFAULT_CACHE_MINIMUM)


def cache_usage(req: dict[str, Any], model: str, cache: PromptCache, total: int) -> tuple[int, int, str]:
    """(tokens read, tokens written, TTL of the writes) for the request's cachePoint blocks: each marks
    the prefix before it (tools, system, then messages); the longest cached one is read, the rest up to
    the last point written once it reaches the model's minimum."""
    running = seeded(model)
    chars = 0
    points: list[tuple[bytes, int, str]] = []  # prefix key, tokens up to it, ttl
    sections = [
        ("tools", (req.get("toolConfig") or {}).get("tools") or []),
        ("system", req.get("system") or []),
        *((m["role"], m["content"]) for m in req["messages"]),
    ]
    for role, blocks in sections:
        for block in blocks:
            point = block.get("cachePoint")
            if point is not None:
                points.append(
                    (running.digest(), min(chars // CHARS_PER_TOKEN, total), point.get("ttl", "5m"))
                )
                continue
            running.update(role.encode() + msgspec.json.encode(block))
            chars += len(block.get("text", ""))
    minimum = _minimum(model)
    eligible = [p for p in points if p[1] >= minimum]
    read = max((tokens for key, tokens, _ in eligible if cache.read(key)), default=0)
    last = max((tokens for _, tokens, _ in eligible), default=0)
    for key, _, ttl in eligible:
        cache.write(key, CACHE_TTL_S.get(ttl, 300.0))
    ttl = eligible[-1][2] if eligible else "5m"
    return read, max(last - read, 0), ttl


# --- answers -------------------------------------------------------------------------------------


def _padded(fields: dict[str, Any], n: int) -> bytes:
    """An event payload with Bedrock's random-length ``p`` padding (here of a length set by ``n``)."""
    return msgspec.json.encode({**fields, "p": PADDING[: 1 + n % len(PADDING)]})


class Planned:
    """One answer: its text pieces, its tool uses, its stop reason and usage."""

    def __init__(self, reply: Reply, req: dict[str, Any], usage: dict[str, Any]) -> None:
        text_format = (req.get("outputConfig") or {}).get("textFormat")
        self.pieces = reply.pieces
        if text_format is not None and not reply.tool_calls:
            schema = msgspec.json.decode(text_format["structure"]["jsonSchema"]["schema"])
            self.pieces = [msgspec.json.encode(fake_arguments(schema)).decode()]
        self.tools = [
            {
                "toolUseId": "tooluse_" + c.id.removeprefix("call_"),
                "name": c.name,
                "input": msgspec.json.decode(c.arguments),
            }
            for c in reply.tool_calls
        ]
        self.stop_reason = STOP_REASONS[reply.finish]
        self.usage = usage

    def body(self) -> bytes:
        content: list[dict[str, Any]] = [{"text": "".join(self.pieces)}] if self.pieces else []
        content += [{"toolUse": tool} for tool in self.tools]
        return msgspec.json.encode(
            {
                "output": {"message": {"role": "assistant", "content": content}},
                "stopReason": self.stop_reason,
                "usage": self.usage,
                "metrics": {"latencyMs": 42},
            }
        )

    def events(self) -> Iterator[tuple[bytes, Pace]]:
        """Every frame but the last (``metadata``), with its pace; text blocks have no start event."""
        n = 0
        yield event_frame("messageStart", _padded({"role": "assistant"}, n)), None
        wait: Pace = FIRST
        index = 0
        if self.pieces:
            for n, piece in enumerate(self.pieces):
                delta = {"contentBlockIndex": 0, "delta": {"text": piece}}
                yield event_frame("contentBlockDelta", _padded(delta, n)), wait if n == 0 else n
            yield event_frame("contentBlockStop", _padded({"contentBlockIndex": 0}, n)), None
            wait, index = None, 1
        for tool in self.tools:
            start = {
                "contentBlockIndex": index,
                "start": {"toolUse": {"toolUseId": tool["toolUseId"], "name": tool["name"]}},
            }
            yield event_frame("contentBlockStart", _padded(start, index)), wait
            wait = None
            args = msgspec.json.encode(tool["input"]).decode()
            step = max(1, (len(args) + 1) // 2)
            for k in range(0, len(args), step):
                delta = {"contentBlockIndex": index, "delta": {"toolUse": {"input": args[k : k + step]}}}
                yield event_frame("contentBlockDelta", _padded(delta, k)), None
            yield event_frame("contentBlockStop", _padded({"contentBlockIndex": index}, index)), None
            index += 1
        yield event_frame("messageStop", _padded({"stopReason": self.stop_reason}, index)), None

    def end(self) -> bytes:
        return event_frame("metadata", _padded({"usage": self.usage, "metrics": {"latencyMs": 42}}, 3))


def usage_of(reply: Reply, cached: tuple[int, int, str]) -> dict[str, Any]:
    read, written, ttl = cached
    total = max(reply.prompt_tokens, read + written)
    output = reply.completion_tokens
    usage: dict[str, Any] = {
        "inputTokens": total - read - written,
        "outputTokens": output,
        "totalTokens": total + output,
        "cacheReadInputTokens": read,
        "cacheWriteInputTokens": written,
    }
    if written:
        usage["cacheDetails"] = [{"ttl": ttl, "inputTokens": written}]
    return usage


# --- handlers ------------------------------------------------------------------------------------


def fault_error(fault: Fault, request_id: str) -> web.Response:
    name, message = DEFAULT_ERRORS.get(
        fault.status,
        (
            "InternalServerException" if fault.status >= 500 else "ValidationException",
            f"Mock error {fault.status}.",
        ),
    )
    return aws_error(
        fault.status, fault.type or name, fault.message or message, request_id, fault_headers(fault)
    )


class BedrockFake(FakeProvider):
    """The Bedrock runtime routes of a mock app, reading faults, speed and keys from ``state``."""

    provider = PROVIDER

    def __init__(self, state: MockState) -> None:
        super().__init__(state, b"{}")

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post(PREFIX + "/model/{model:[^/]+}/converse", self.converse)
        app.router.add_post(PREFIX + "/model/{model:[^/]+}/converse-stream", self.converse_stream)
        app.router.add_route("*", PREFIX + "/{tail:.*}", self.unknown)

    def _not_found(self, request: web.BaseRequest) -> web.Response:
        return aws_error(404, "UnknownOperationException", "Unknown operation", self._request_id())

    def _request_id(self) -> str:
        hex_id = self._state.ids.next_hex()
        return f"{hex_id[:8]}-{hex_id[8:12]}-{hex_id[12:16]}-{hex_id[16:20]}-{hex_id[20:]}0000000"

    def _secret(self, access_key: str) -> str | None:
        required = self._state.required_key(PROVIDER)
        if required is not None and ":" in required:
            key, _, secret = required.partition(":")
            return secret if access_key == key else None
        return SECRET_KEY if access_key == ACCESS_KEY and required is None else None

    def _refused(self, request: web.BaseRequest, body: bytes, request_id: str) -> web.Response | None:
        header = request.headers.get("Authorization", "")
        if header.startswith("Bearer "):
            required = self._state.required_key(PROVIDER)
            token = header.removeprefix("Bearer ").strip()
            if token and (required is None or token == required):
                return None
            return aws_error(
                403,
                "UnrecognizedClientException",
                "The security token included in the request is invalid.",
                request_id,
            )
        problem = check_sigv4(request, body, self._secret, datetime.datetime.now(datetime.UTC))
        return None if problem is None else aws_error(problem[0], problem[1], problem[2], request_id)

    async def converse(self, request: web.Request) -> web.StreamResponse:
        return await self._answer(request, streaming=False)

    async def converse_stream(self, request: web.Request) -> web.StreamResponse:
        return await self._answer(request, streaming=True)

    async def _answer(self, request: web.Request, *, streaming: bool) -> web.StreamResponse:
        body = await request.read()
        self._record(request, body)
        request_id = self._request_id()
        refused = self._refused(request, body, request_id)
        if refused is not None:
            return refused
        model = unquote(request.match_info["model"])
        try:
            req = msgspec.json.decode(body)
            check(req)
        except msgspec.DecodeError:
            return aws_error(400, "ValidationException", MALFORMED_INPUT, request_id)
        except Invalid as exc:
            return aws_error(400, "ValidationException", str(exc), request_id)
        state = self._state
        headers = {"x-amzn-RequestId": request_id}
        fault = await act_out(
            request,
            state.faults.take(PROVIDER, model, streaming=streaming),
            lambda f: fault_error(f, request_id),
            headers,
        )
        if isinstance(fault, web.StreamResponse):
            return fault
        prompt = prompt_of(req)
        reply = plan_reply(prompt, state.ids.next_hex())
        cached = cache_usage(req, model, state.prompts, reply.prompt_tokens)
        planned = Planned(reply, req, usage_of(reply, cached))
        behaviour = state.behaviour(PROVIDER, model)
        if streaming:
            out = (("Content-Type", EVENT_STREAM), ("x-amzn-RequestId", request_id))
            return await write_stream(
                request,
                out,
                planned.events(),
                behaviour,
                fault,
                error_event=lambda f: exception_frame(
                    f.type or "internalServerException", f.message or STREAM_FAILED
                ),
                end=planned.end(),
                frame=_frame,
            )
        delay = behaviour.non_stream_delay(len(reply.pieces))
        if delay > 0:
            await asyncio.sleep(delay)
        return await answer(request, planned.body(), fault, headers)


def _frame(event: bytes) -> bytes:
    """Frames are written as built; the stand-in for a line that is not JSON is a corrupt frame."""
    return corrupted(event) if event is MALFORMED_EVENT else event
