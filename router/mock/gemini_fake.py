"""Fake Google Gemini upstream: generateContent (JSON, SSE, JSON array), countTokens, embeddings and the model
list in the real wire format, under ``/gemini/v1beta``.

Order: constants, error envelope, request parsing, prompt extraction, answer rendering, then the handler
class that wires state to routes. Requests are read as the JSON checked by ``gemini_schema``, whose field
table is the one description of what Gemini's parser accepts. Gemini 2.5 and newer cache long prompts
implicitly: a repeated prefix is reported in ``cachedContentTokenCount`` (the ``cache=N`` knob wins).
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any, Final, NamedTuple

import msgspec
from aiohttp import web

from router.mock._base import FakeProvider, Venue, act_out, answer
from router.mock.faults import Behaviour, MockState
from router.mock.faultspec import Fault
from router.mock.gemini_schema import Json, content_problems, request_problems, violations
from router.mock.prefixcache import PromptCache, implicit
from router.mock.streaming import paced, write_stream
from router.mock.textgen import LastRole, Prompt, Reply, ToolSpec, plan_reply, prompt_tokens

PROVIDER: Final = "gemini"
PREFIX: Final = "/gemini/v1beta"
EMBED_DIMENSIONS: Final = 8
SAFETY_TRIGGER: Final = "trigger-safety"
INTERNAL_MESSAGE: Final = (
    "An internal error has occurred. Please retry or report in "
    "https://developers.generativeai.google/guide/troubleshooting"
)
_UNREGISTERED: Final = (
    "Method doesn't allow unregistered callers (callers without established identity). "
    "Please use API Key or other form of API consumer identity to call this API."
)
_BAD_KEY: Final = "API key not valid. Please pass a valid API key."
_SSE_HEADERS: Final = (
    ("Content-Type", "text/event-stream"),
    ("Cache-Control", "no-cache"),
    ("X-Accel-Buffering", "no"),
)
_ARRAY_HEADERS: Final = (("Content-Type", "application/json; charset=UTF-8"),)
_CACHE_ASK: Final = re.compile(r"cache=(\d+)")
_THINK_ASK: Final = re.compile(r"think=(\d+)")
_METHODS: Final = (
    "generateContent",
    "streamGenerateContent",
    "countTokens",
    "embedContent",
    "batchEmbedContents",
)
# fmt: off
MODELS: Final = ("gemini-2.5-pro", "gemini-2.5-flash", "gemini-2.5-flash-lite", "gemini-3-pro-preview",
                 "gemini-3-flash-preview", "gemini-embedding-001")
_DEFAULT_MESSAGES: Final[Mapping[int, str]] = {
    400: "Request contains an invalid argument.", 403: "The caller does not have permission",
    404: "Requested entity was not found.", 429: "Resource has been exhausted (e.g. check quota).",
    500: INTERNAL_MESSAGE, 503: "The model is overloaded. Please try again later.",
    504: "Deadline expired before operation could complete.",
}
_STATUS_NAMES: Final[Mapping[int, str]] = {
    400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 402: "RESOURCE_EXHAUSTED", 403: "PERMISSION_DENIED",
    404: "NOT_FOUND", 409: "ABORTED", 429: "RESOURCE_EXHAUSTED", 499: "CANCELLED", 500: "INTERNAL",
    501: "NOT_IMPLEMENTED", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED",
}
# Implicit caching's minimum prompt by model (generateContent caching page; later pages say 2,048 for
# both 2.5 models). Gemini 2.0 has no implicit caching.
_IMPLICIT_MINIMUM: Final = (("gemini-2.0", None), ("pro", 4096), ("gemini-", 1024))
# fmt: on


# --- error envelope ------------------------------------------------------------------------------


def status_name(status: int) -> str:
    """The google.rpc status string Gemini pairs with an HTTP status."""
    return _STATUS_NAMES.get(status, "INVALID_ARGUMENT" if status < 500 else "INTERNAL")


def _json(payload: object, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    body = msgspec.json.encode(payload)
    return web.Response(status=status, body=body, content_type="application/json", headers=headers)


def _error(status: int, message: str, name: str | None = None, details: Sequence[Any] = ()) -> Json:
    error = {"code": status, "message": message, "status": name or status_name(status)}
    return {"error": error | {"details": list(details)} if details else error}


def gemini_error(status: int, message: str, *, details: Sequence[Any] = ()) -> web.Response:
    """A Gemini error response: ``{"error": {code, message, status, details?}}``."""
    return _json(_error(status, message, details=details), status)


def invalid_argument(*messages: str, fields: Sequence[str] = ()) -> web.Response:
    """400 INVALID_ARGUMENT; ``fields`` (one per message) add the ``BadRequest`` detail of parse errors."""
    if not fields:
        return gemini_error(400, "\n".join(messages))
    violations = [
        {"field": f, "description": m} if f else {"description": m}
        for f, m in zip(fields, messages, strict=True)
    ]
    detail = {"@type": "type.googleapis.com/google.rpc.BadRequest", "fieldViolations": violations}
    return gemini_error(400, "\n".join(messages), details=[detail])


def not_found(request: web.BaseRequest) -> web.Response:
    return gemini_error(404, f"Method not found: {request.method} {request.path}")


def fault_error(fault: Fault, *, in_array: bool = False) -> web.Response:
    """A ``status`` fault as Gemini sends it: ``type`` overrides the status string; ``retry_after`` becomes a
    ``RetryInfo.retryDelay`` detail (Gemini puts the delay in the body, not in a header)."""
    details = []
    if fault.retry_after is not None:
        delay = f"{fault.retry_after:.3f}".rstrip("0").rstrip(".") + "s"
        details.append({"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": delay})
    message = fault.message or _DEFAULT_MESSAGES.get(fault.status, f"Mock error {fault.status}.")
    payload = _error(fault.status, message, fault.type, details)
    return _json([payload] if in_array else payload, fault.status, fault.headers)


def stream_error_event(fault: Fault) -> bytes:
    """The in-band error object of a ``stream_error`` fault (unframed); a 4xx ``status`` counts as 500."""
    status = fault.status if fault.status >= 500 else 500
    return msgspec.json.encode(_error(status, fault.message or INTERNAL_MESSAGE, fault.type))


# --- request checks ------------------------------------------------------------------------------


def checked_request(body: bytes, model: str) -> Json | web.Response:
    """A generateContent request as Gemini's parser and validation accept it, or their 400."""
    req = _parse(body, "GenerateContentRequest")
    if isinstance(req, web.Response):
        return req
    problem = next(request_problems(req, model), None)
    return req if problem is None else invalid_argument(problem)


def _parse(body: bytes, kind: str) -> Json | web.Response:
    """Decode ``body`` and check it as a ``kind`` the way Gemini's proto-JSON parser does."""
    try:
        raw = msgspec.json.decode(body)
    except msgspec.DecodeError as exc:
        return invalid_argument(f"Invalid JSON payload received. {exc}.", fields=[""])
    problems = list(violations(raw, kind, "", kind))
    if problems or not isinstance(raw, dict):
        return invalid_argument(*(m for _, m in problems), fields=[f for f, _ in problems])
    return raw


# --- prompt extraction ---------------------------------------------------------------------------


def _text_of(content: Json | None) -> str:
    parts = content.get("parts", ()) if content else ()
    return "".join(p["text"] for p in parts if "text" in p and not p.get("thought"))


def _prompt_chars(contents: Sequence[Json], system: Json | None) -> int:
    chars = len(_text_of(system))
    for content in contents:
        chars += len(_text_of(content))
        chars += sum(
            len(msgspec.json.encode(p["functionResponse"]["response"]))
            for p in content["parts"]
            if "functionResponse" in p
        )
    return chars


def prompt_of(req: Json) -> Prompt:
    """The provider-neutral view of a checked generateContent request."""
    contents: list[Json] = req["contents"]
    last = contents[-1]
    responses = [p["functionResponse"]["response"] for p in last["parts"] if "functionResponse" in p]
    last_role: LastRole = "other" if last.get("role") == "model" else "tool" if responses else "user"
    user_text = next((t for c in reversed(contents) if c.get("role") != "model" and (t := _text_of(c))), "")
    tools = [
        ToolSpec(d["name"], d.get("parameters", d.get("parametersJsonSchema")))
        for tool in req.get("tools", ())
        for d in tool.get("functionDeclarations", ())
    ]
    calling = req.get("toolConfig", {}).get("functionCallingConfig", {})
    mode, allowed = calling.get("mode") or "AUTO", calling.get("allowedFunctionNames")
    if allowed:
        tools = [t for t in tools if t.name in allowed]
    config = req.get("generationConfig", {})
    return Prompt(
        user_text=user_text,
        prompt_chars=_prompt_chars(contents, req.get("systemInstruction")),
        last_role=last_role,
        tool_results=tuple(msgspec.json.encode(r).decode() for r in responses),
        tools=tuple(tools),
        tools_allowed=mode != "NONE",
        forced_tool=tools[0].name if mode == "ANY" and allowed and len(tools) == 1 else None,
        max_tokens=int(config["maxOutputTokens"]) if "maxOutputTokens" in config else None,
        stops=tuple(config.get("stopSequences", ())),
    )


def _asked(pattern: re.Pattern[str], *texts: str) -> int:
    found = next((m for m in map(pattern.search, texts) if m), None)
    return int(found.group(1)) if found else 0


# --- answer rendering ----------------------------------------------------------------------------


class Answer(NamedTuple):
    """The planned reply plus Gemini's extras: cached and thinking tokens, candidates, a safety block."""

    reply: Reply
    model: str
    response_id: str
    cached: int = 0
    thoughts: int = 0
    show_thoughts: bool = False
    candidates: int = 1
    blocked: bool = False


def plan_answer(req: Json, model: str, hex_id: str) -> Answer:
    """Plan the answer: ``cache=N`` (system) and ``think=N`` (system or user text) set token counts;
    ``trigger-safety`` in the user text blocks it; ``includeThoughts`` shows a thought summary."""
    prompt = prompt_of(req)
    config = req.get("generationConfig", {})
    thinking = config.get("thinkingConfig", {})
    system = _text_of(req.get("systemInstruction"))
    thoughts = (
        0 if int(thinking.get("thinkingBudget", -1)) == 0 else _asked(_THINK_ASK, system, prompt.user_text)
    )
    blocked = prompt.last_role == "user" and SAFETY_TRIGGER in prompt.user_text
    reply = plan_reply(prompt, hex_id)
    if blocked:
        reply = msgspec.structs.replace(reply, pieces=[], tool_calls=[], completion_tokens=0)
    show = bool(thinking.get("includeThoughts")) and thoughts > 0
    count = int(config.get("candidateCount", 1))
    return Answer(reply, model, hex_id, _asked(_CACHE_ASK, system), thoughts, show, count, blocked)


def with_implicit_cache(answer: Answer, req: Json, cache: PromptCache) -> Answer:
    """``answer`` with the prompt tokens an earlier request left cached (``promptTokenCount`` counts
    them in: the reply keeps the rest)."""
    minimum = next((tokens for part, tokens in _IMPLICIT_MINIMUM if part in answer.model), None)
    prompt = answer.reply.prompt_tokens
    if answer.cached or minimum is None or prompt < minimum:
        return answer
    text = msgspec.json.encode([req.get("tools"), req.get("systemInstruction"), req.get("contents")])
    cached = min(implicit(cache, answer.model, text.decode(), minimum), prompt)
    reply = msgspec.structs.replace(answer.reply, prompt_tokens=prompt - cached)
    return answer._replace(reply=reply, cached=cached) if cached else answer


def _usage(answer: Answer, final: bool) -> Json:
    """Gemini's usage: ``promptTokenCount`` includes cached tokens; thoughts are counted apart."""
    prompt = answer.reply.prompt_tokens + answer.cached
    usage: Json = {"promptTokenCount": prompt, "totalTokenCount": prompt}
    if final:
        candidates = answer.reply.completion_tokens * answer.candidates
        usage["totalTokenCount"] = prompt + candidates + answer.thoughts
        names = ("candidatesTokenCount", "cachedContentTokenCount", "thoughtsTokenCount")
        extra = zip(names, (candidates, answer.cached, answer.thoughts), strict=True)
        usage |= {key: value for key, value in extra if value}
    usage["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": prompt}]
    return usage


_BLOCKED_RATINGS: Final[tuple[Mapping[str, object], ...]] = tuple(
    {"category": f"HARM_CATEGORY_{c}", "probability": "HIGH" if c == "DANGEROUS_CONTENT" else "NEGLIGIBLE"}
    | ({"blocked": True} if c == "DANGEROUS_CONTENT" else {})
    for c in ("HATE_SPEECH", "DANGEROUS_CONTENT", "HARASSMENT", "SEXUALLY_EXPLICIT")
)


def _response(answer: Answer, parts: list[Json] | None, final: bool) -> bytes:
    """One ``GenerateContentResponse`` with ``parts`` in each candidate; ``final`` adds finish and usage."""
    candidate: Json = {} if parts is None else {"content": {"parts": parts, "role": "model"}}
    if final:
        length = answer.reply.finish == "length"
        candidate["finishReason"] = "SAFETY" if answer.blocked else "MAX_TOKENS" if length else "STOP"
    if final and answer.blocked:
        candidate["safetyRatings"] = _BLOCKED_RATINGS
    response = {
        "candidates": [candidate | {"index": index} for index in range(answer.candidates)],
        "usageMetadata": _usage(answer, final),
        "modelVersion": answer.model,
        "responseId": answer.response_id,
    }
    return msgspec.json.encode(response)


def _thought_parts(answer: Answer) -> list[Json]:
    return (
        [{"text": "**Planning**\n\nWorking out the reply.", "thought": True}] if answer.show_thoughts else []
    )


def _call_parts(answer: Answer) -> list[Json]:
    """Whole ``functionCall`` parts; Gemini 3 signs each with a deterministic ``thoughtSignature`` (letters
    and digits only, length a multiple of four: valid base64 in both alphabets)."""
    signed = answer.model.startswith("gemini-3")
    return [
        {"functionCall": {"name": call.name, "args": msgspec.Raw(call.arguments)}}
        | ({"thoughtSignature": f"CiQB{answer.response_id}{index:04x}"} if signed else {})
        for index, call in enumerate(answer.reply.tool_calls)
    ]


def response_body(answer: Answer) -> bytes:
    """The non-streaming ``GenerateContentResponse`` JSON."""
    if answer.blocked:
        return _response(answer, None, final=True)
    main = _call_parts(answer) if answer.reply.tool_calls else [{"text": answer.reply.text}]
    return _response(answer, _thought_parts(answer) + main, final=True)


def stream_chunks(answer: Answer) -> list[bytes]:
    """The streamed responses: a thought summary, then one text piece or one whole call per chunk; the last
    chunk also carries the finish reason and the final usage."""
    if answer.blocked:
        return [_response(answer, None, final=True)]
    chunks = [_response(answer, _thought_parts(answer), final=False)] if answer.show_thoughts else []
    texts = [[{"text": piece}] for piece in answer.reply.pieces] or [[{"text": ""}]]
    groups = [[part] for part in _call_parts(answer)] or texts
    chunks.extend(_response(answer, group, final=i == len(groups) - 1) for i, group in enumerate(groups))
    return chunks


def embedding(text: str, dimensions: int) -> list[float]:
    """A deterministic unit vector for ``text``."""
    values: list[float] = []
    while len(values) < dimensions:
        digest = hashlib.blake2b(f"{len(values)}:{text}".encode(), digest_size=64).digest()
        values.extend((byte - 127.5) / 127.5 for byte in digest)
    norm = math.sqrt(sum(v * v for v in values[:dimensions])) or 1.0
    return [round(v / norm, 6) for v in values[:dimensions]]


def _model_info(name: str) -> Json:
    embed = "embedding" in name
    methods = _METHODS[3:] if embed else _METHODS[:3]
    return {
        "name": f"models/{name}",
        "version": "001",
        "displayName": name,
        "description": f"Mock {name}",
        "inputTokenLimit": 2048 if embed else 1_048_576,
        "outputTokenLimit": 1 if embed else 65_536,
        "supportedGenerationMethods": list(methods),
    }


# --- handlers ------------------------------------------------------------------------------------

_GEMINI: Final = Venue(PROVIDER, lambda fault, in_array: fault_error(fault, in_array=in_array))


class GeminiFake(FakeProvider):
    """The Gemini routes of a mock app, reading faults, speed and keys from ``state``."""

    provider = PROVIDER

    def __init__(self, state: MockState) -> None:
        super().__init__(state, msgspec.json.encode({"models": [_model_info(name) for name in MODELS]}))

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get(f"{PREFIX}/models", self.list_models)
        app.router.add_post(PREFIX + "/models/{target}", self.model_method)
        app.router.add_route("*", "/gemini/{tail:.*}", self.unknown)

    def _denied(self, request: web.BaseRequest) -> web.Response | None:
        """Gemini's answers to a missing key (403) and a wrong one (400 ``API_KEY_INVALID``)."""
        required = self._state.required_key(PROVIDER)
        given = request.headers.get("x-goog-api-key") or request.query.get("key")
        if required is None or given == required:
            return None
        if not given:
            return gemini_error(403, _UNREGISTERED)
        service = {"service": "generativelanguage.googleapis.com"}
        info = {"reason": "API_KEY_INVALID", "domain": "googleapis.com", "metadata": service}
        localized = {"locale": "en-US", "message": _BAD_KEY}
        details = [
            {"@type": "type.googleapis.com/google.rpc.ErrorInfo"} | info,
            {"@type": "type.googleapis.com/google.rpc.LocalizedMessage"} | localized,
        ]
        return gemini_error(400, _BAD_KEY, details=details)

    def _not_found(self, request: web.BaseRequest) -> web.Response:
        return not_found(request)

    async def model_method(self, request: web.Request) -> web.StreamResponse:
        """``POST models/{model}:{method}``: the model is everything before the last colon."""
        body = await request.read()
        self._record(request, body)
        model, _, method = request.match_info["target"].rpartition(":")
        if not model or method not in _METHODS:
            return not_found(request)
        denied = self._denied(request)
        if denied is not None:
            return denied
        if method == "countTokens":
            return self._count_tokens(body)
        if method in ("embedContent", "batchEmbedContents"):
            return await self._embed(request, body, model, batch=method == "batchEmbedContents")
        return await self._generate(request, body, model, streaming=method == "streamGenerateContent")

    async def _act_out(
        self, request: web.Request, fault: Fault | None, in_array: bool = False
    ) -> web.StreamResponse | Fault | None:
        """The response for a request-level fault, else the fault left to play in the answer."""
        return await act_out(request, fault, lambda f: fault_error(f, in_array=in_array))

    async def _generate(
        self, request: web.Request, body: bytes, model: str, *, streaming: bool
    ) -> web.StreamResponse:
        req = checked_request(body, model)
        if isinstance(req, web.Response):
            return req
        return await self.generate(request, req, model, streaming=streaming)

    async def generate(
        self, request: web.Request, req: Json, model: str, *, streaming: bool, venue: Venue | None = None
    ) -> web.StreamResponse:
        """Answer a checked generateContent request for ``model``, as this fake or, with ``venue``, as
        another host of Gemini models (its faults, speed and status errors)."""
        venue = venue or _GEMINI
        state = self._state
        sse = request.query.get("alt") == "sse"
        fault = state.faults.take(venue.provider, model, streaming=streaming)
        in_array = streaming and not sse
        live = await act_out(request, fault, lambda f: venue.status_error(f, in_array))
        if isinstance(live, web.StreamResponse):
            return live
        planned = with_implicit_cache(plan_answer(req, model, state.ids.next_hex()), req, state.prompts)
        behaviour = state.behaviour(venue.provider, model)
        if streaming:
            return await self._stream(request, stream_chunks(planned), behaviour, live, sse)
        delay = behaviour.non_stream_delay(len(planned.reply.pieces))
        if delay > 0:
            await asyncio.sleep(delay)
        return await answer(request, response_body(planned), live)

    def _count_tokens(self, body: bytes) -> web.Response:
        req = _parse(body, "CountTokensRequest")
        if isinstance(req, web.Response):
            return req
        inner = req.get("generateContentRequest", {})
        contents = req.get("contents") or inner.get("contents", [])
        problems = [p for i, c in enumerate(contents) for p in content_problems(c, f"contents[{i}]")]
        if problems or not contents:
            return invalid_argument(
                *problems or ["* CountTokensRequest.contents: contents is not specified\n"]
            )
        total = prompt_tokens(_prompt_chars(contents, inner.get("systemInstruction")))
        return _json(
            {"totalTokens": total, "promptTokensDetails": [{"modality": "TEXT", "tokenCount": total}]}
        )

    async def _embed(
        self, request: web.Request, body: bytes, model: str, *, batch: bool
    ) -> web.StreamResponse:
        kind = "BatchEmbedContentsRequest" if batch else "EmbedContentRequest"
        req = _parse(body, kind)
        if isinstance(req, web.Response):
            return req
        vectors = []
        for index, one in enumerate(req["requests"] if batch else [req]):
            at = f"* {kind}.requests[{index}]" if batch else f"* {kind}"
            dimensions = int(one.get("outputDimensionality", EMBED_DIMENSIONS))
            if one.get("model", f"models/{model}").removeprefix("models/") != model:
                return invalid_argument(f"{at}.model: the model must be models/{model}.\n")
            if not 0 < dimensions <= 3072:
                return invalid_argument(f"{at}.output_dimensionality: must be in the range [1, 3072].\n")
            if not _text_of(one["content"]):
                return invalid_argument(f"{at}.content.parts: contents.parts must not be empty.\n")
            vectors.append({"values": embedding(_text_of(one["content"]), dimensions)})
        live = await self._act_out(request, self._state.faults.take(PROVIDER, model, streaming=False))
        if isinstance(live, web.StreamResponse):
            return live
        delay = self._state.behaviour(PROVIDER, model).non_stream_delay(0)
        if delay > 0:
            await asyncio.sleep(delay)
        return await answer(
            request,
            msgspec.json.encode({"embeddings": vectors} if batch else {"embedding": vectors[0]}),
            live,
        )

    async def _stream(
        self, request: web.Request, events: list[bytes], behaviour: Behaviour, fault: Fault | None, sse: bool
    ) -> web.StreamResponse:
        """Write ``events`` as SSE (``alt=sse``: CRLF framing, EOF ends it) or as a JSON array written as it
        goes; ``ttft_ms`` and a ``stall`` delay the first event, ``tokens_per_s`` paces the rest."""
        sent = 0

        def frame(event: bytes) -> bytes:
            nonlocal sent
            framed = b"data: " + event + b"\r\n\r\n" if sse else (b",\r\n" if sent else b"[") + event
            sent += 1
            return framed

        return await write_stream(
            request,
            _SSE_HEADERS if sse else _ARRAY_HEADERS,
            paced(events, first_wait_before=0),
            behaviour,
            fault,
            error_event=lambda f: frame(stream_error_event(f)) + (b"" if sse else b"]"),
            end=lambda: b"" if sse else b"]" if sent else b"[]",
            frame=frame,
        )
