"""The answer schemas of the router's OpenAPI document: the bodies and stream events each route returns.

Model answers follow OpenAI's schemas (``CreateChatCompletionResponse``,
``CreateChatCompletionStreamResponse``, ``Response``, ``ResponseStreamEvent``, ``CreateCompletionResponse``,
``CreateEmbeddingResponse``, ``Model``);
the ops answers are the router's own. A stream's schema describes one Server-Sent Event, whose ``data``
holds a JSON object (``contentMediaType``/``contentSchema``) or, on chat and completions, ``[DONE]``.
"""

from __future__ import annotations

from router.api.openapi_requests import (
    BOOLEAN,
    METADATA,
    STRING,
    Schema,
    const,
    integer,
    nullable,
    obj,
    ref,
)

NUMBER: Schema = {"type": "number"}
INTEGER: Schema = {"type": "integer"}
OBJECT: Schema = {"type": "object"}
STRINGS: Schema = {"type": "array", "items": STRING}


def array(items: Schema) -> Schema:
    return {"type": "array", "items": items}


ERROR: Schema = obj(
    ["error"],
    {
        "error": obj(
            ["message", "type", "param", "code"],
            {"message": STRING, "type": STRING, "param": nullable(STRING), "code": nullable(STRING)},
        )
    },
    description="OpenAI's error envelope; 'code' names the condition (model_not_found, "
    "context_length_exceeded, unsupported_content_type, rate_limit_exceeded, ...).",
)

# --- chat ----------------------------------------------------------------------------------------

_FINISH = nullable(
    {"type": "string", "enum": ["stop", "length", "tool_calls", "content_filter", "function_call"]}
)
_USAGE = obj(
    ["prompt_tokens", "completion_tokens", "total_tokens"],
    {
        "prompt_tokens": integer(0),
        "completion_tokens": integer(0),
        "total_tokens": integer(0),
        "prompt_tokens_details": nullable(OBJECT),
        "completion_tokens_details": nullable(OBJECT),
    },
)
_TOOL_CALL = obj(
    ["id", "type", "function"],
    {
        "id": STRING,
        "type": const("function"),
        "function": obj(["name", "arguments"], {"name": STRING, "arguments": STRING}),
    },
)
_COMMON = {
    "id": STRING,
    "created": integer(0),
    "model": STRING,
    "service_tier": nullable(STRING),
    "system_fingerprint": nullable(STRING),
}
CHAT_COMPLETION: Schema = obj(
    ["id", "object", "created", "model", "choices"],
    {
        **_COMMON,
        "object": const("chat.completion"),
        "choices": array(
            obj(
                ["index", "message", "finish_reason"],
                {
                    "index": integer(0),
                    "finish_reason": _FINISH,
                    "logprobs": nullable(OBJECT),
                    "message": obj(
                        ["role", "content"],
                        {
                            "role": const("assistant"),
                            "content": nullable(STRING),
                            "refusal": nullable(STRING),
                            "tool_calls": array(_TOOL_CALL),
                            "annotations": array(OBJECT),
                            "reasoning_content": nullable(STRING),
                            "reasoning": nullable(STRING),
                        },
                    ),
                },
            )
        ),
        "usage": nullable(ref("Usage")),
    },
)
CHAT_CHUNK: Schema = obj(
    ["id", "object", "created", "model", "choices"],
    {
        **_COMMON,
        "object": const("chat.completion.chunk"),
        "choices": array(
            obj(
                ["index", "delta"],
                {
                    "index": integer(0),
                    "finish_reason": _FINISH,
                    "logprobs": nullable(OBJECT),
                    "delta": obj(
                        [],
                        {
                            "role": {
                                "type": "string",
                                "enum": ["assistant", "developer", "system", "user", "tool"],
                            },
                            "content": nullable(STRING),
                            "refusal": nullable(STRING),
                            "reasoning_content": nullable(STRING),
                            "reasoning": nullable(STRING),
                            "tool_calls": array(
                                obj(
                                    ["index"],
                                    {
                                        "index": integer(0),
                                        "id": STRING,
                                        "type": const("function"),
                                        "function": obj([], {"name": STRING, "arguments": STRING}),
                                    },
                                )
                            ),
                        },
                    ),
                },
            )
        ),
        "usage": nullable(ref("Usage")),
        "obfuscation": STRING,
    },
    description="One event of a chat stream. With stream_options.include_usage every chunk has "
    "'usage': null but the last, whose 'choices' is empty.",
)

# --- legacy completions and embeddings -----------------------------------------------------------

TEXT_COMPLETION: Schema = obj(
    ["id", "object", "created", "model", "choices"],
    {
        **_COMMON,
        "object": const("text_completion"),
        "choices": array(
            obj(
                ["text", "index", "finish_reason"],
                {
                    "text": STRING,
                    "index": integer(0),
                    "logprobs": nullable(OBJECT),
                    "finish_reason": nullable(
                        {"type": "string", "enum": ["stop", "length", "content_filter"]}
                    ),
                },
            )
        ),
        "usage": nullable(ref("Usage")),
    },
    description="A completions answer; each event of a completions stream has the same shape.",
)
EMBEDDING_LIST: Schema = obj(
    ["object", "data", "model", "usage"],
    {
        "object": const("list"),
        "model": STRING,
        "data": array(
            obj(
                ["object", "index", "embedding"],
                {
                    "object": const("embedding"),
                    "index": integer(0),
                    "embedding": {
                        "description": "Floats, or little-endian float32 bytes in base64.",
                        "anyOf": [array(NUMBER), STRING],
                    },
                },
            )
        ),
        "usage": obj(
            ["prompt_tokens", "total_tokens"], {"prompt_tokens": integer(0), "total_tokens": integer(0)}
        ),
    },
)

# --- Responses -----------------------------------------------------------------------------------

_ITEM_STATUS = {"type": "string", "enum": ["in_progress", "completed", "incomplete"]}
_OUTPUT_ITEMS: list[Schema] = [
    obj(
        ["type", "id", "role", "content", "status"],
        {
            "type": const("message"),
            "id": STRING,
            "role": const("assistant"),
            "status": _ITEM_STATUS,
            "content": array(
                {
                    "anyOf": [
                        obj(
                            ["type", "text", "annotations"],
                            {"type": const("output_text"), "text": STRING, "annotations": array(OBJECT)},
                        ),
                        obj(["type", "refusal"], {"type": const("refusal"), "refusal": STRING}),
                    ]
                }
            ),
        },
    ),
    obj(
        ["type", "call_id", "name", "arguments"],
        {
            "type": const("function_call"),
            "id": STRING,
            "call_id": STRING,
            "name": STRING,
            "arguments": STRING,
            "status": _ITEM_STATUS,
        },
    ),
    obj(["type", "id", "summary"], {"type": const("reasoning"), "id": STRING, "summary": array(OBJECT)}),
]
RESPONSE: Schema = obj(
    ["id", "object", "created_at", "status", "model", "output", "error", "incomplete_details"],
    {
        "id": STRING,
        "object": const("response"),
        "created_at": NUMBER,
        "completed_at": nullable(NUMBER),
        "status": {
            "type": "string",
            "enum": ["completed", "failed", "in_progress", "cancelled", "queued", "incomplete"],
        },
        "model": STRING,
        "output": array(ref("ResponseOutputItem")),
        "error": nullable(obj(["code", "message"], {"code": STRING, "message": STRING})),
        "incomplete_details": nullable(obj([], {"reason": STRING})),
        "instructions": {"type": ["string", "array", "null"]},
        "max_output_tokens": nullable(INTEGER),
        "parallel_tool_calls": BOOLEAN,
        "previous_response_id": nullable(STRING),
        "store": BOOLEAN,
        "background": nullable(BOOLEAN),
        "temperature": nullable(NUMBER),
        "top_p": nullable(NUMBER),
        "tools": array(OBJECT),
        "metadata": nullable(METADATA),
        "usage": nullable(
            obj(
                ["input_tokens", "output_tokens", "total_tokens"],
                {
                    "input_tokens": integer(0),
                    "output_tokens": integer(0),
                    "total_tokens": integer(0),
                    "input_tokens_details": OBJECT,
                    "output_tokens_details": OBJECT,
                },
            )
        ),
    },
)


def _event(kind: str | list[str], required: list[str], properties: dict[str, Schema]) -> Schema:
    kinds = [kind] if isinstance(kind, str) else kind
    return obj(
        ["type", "sequence_number", *required],
        {"type": {"type": "string", "enum": kinds}, "sequence_number": integer(0), **properties},
    )


_AT = {"item_id": STRING, "output_index": integer(0)}
_IN_PART = {**_AT, "content_index": integer(0)}
KNOWN_EVENTS: list[Schema] = [
    _event(
        [
            "response.created",
            "response.in_progress",
            "response.completed",
            "response.incomplete",
            "response.failed",
        ],
        ["response"],
        {"response": ref("Response")},
    ),
    _event(
        ["response.output_item.added", "response.output_item.done"],
        ["output_index", "item"],
        {"output_index": integer(0), "item": ref("ResponseOutputItem")},
    ),
    _event(
        ["response.content_part.added", "response.content_part.done"],
        ["item_id", "output_index", "content_index", "part"],
        {**_IN_PART, "part": obj(["type"], {"type": STRING})},
    ),
    _event(
        ["response.output_text.delta", "response.refusal.delta", "response.reasoning_text.delta"],
        ["item_id", "output_index", "content_index", "delta"],
        {**_IN_PART, "delta": STRING},
    ),
    _event(
        "response.output_text.done",
        ["item_id", "output_index", "content_index", "text"],
        {**_IN_PART, "text": STRING},
    ),
    _event(
        "response.refusal.done",
        ["item_id", "output_index", "content_index", "refusal"],
        {**_IN_PART, "refusal": STRING},
    ),
    _event(
        "response.function_call_arguments.delta",
        ["item_id", "output_index", "delta"],
        {**_AT, "delta": STRING},
    ),
    _event(
        "response.function_call_arguments.done",
        ["item_id", "output_index", "arguments"],
        {**_AT, "arguments": STRING, "name": STRING},
    ),
    _event(
        "error",
        ["message", "code", "param"],
        {"message": STRING, "code": nullable(STRING), "param": nullable(STRING)},
    ),
]
_KNOWN_KINDS = [kind for event in KNOWN_EVENTS for kind in event["properties"]["type"]["enum"]]
RESPONSE_EVENT: Schema = {
    "description": "One event of a Responses stream, numbered by sequence_number. A stream that breaks "
    "after its first output ends with response.failed. Other OpenAI event types a native model sends "
    "(reasoning summaries, ...) pass through with their type and sequence_number.",
    "anyOf": [
        *KNOWN_EVENTS,
        obj(
            ["type", "sequence_number"],
            {"type": {"type": "string", "not": {"enum": _KNOWN_KINDS}}, "sequence_number": integer(0)},
        ),
    ],
}
INPUT_ITEM_LIST: Schema = obj(
    ["object", "data", "first_id", "last_id", "has_more"],
    {
        "object": const("list"),
        "data": array(obj(["id", "type"], {"id": STRING, "type": STRING})),
        "first_id": nullable(STRING),
        "last_id": nullable(STRING),
        "has_more": BOOLEAN,
    },
)
RESPONSE_DELETED: Schema = obj(
    ["id", "object", "deleted"],
    {"id": STRING, "object": const("response.deleted"), "deleted": {"const": True}},
)

# --- models --------------------------------------------------------------------------------------

_ROUTER_INFO: Schema = {
    "description": "What the router knows of this name: a catalog model, an alias, or a strategy.",
    "oneOf": [
        obj(
            [
                "kind",
                "provider",
                "upstream",
                "configured",
                "context_window",
                "max_output",
                "price_per_1m",
                "capabilities",
            ],
            {
                "kind": const("model"),
                "provider": STRING,
                "upstream": STRING,
                "configured": BOOLEAN,
                "context_window": integer(1),
                "max_output": integer(1),
                "price_per_1m": obj(["input", "output"], {"input": NUMBER, "output": NUMBER}),
                "capabilities": STRINGS,
            },
        ),
        obj(
            ["kind", "target", "provider"],
            {"kind": const("alias"), "target": STRING, "provider": STRING, "service_tier": STRING},
        ),
        obj(["kind", "optimises"], {"kind": const("strategy"), "optimises": STRING}),
    ],
}
MODEL: Schema = obj(
    ["id", "object", "created", "owned_by", "router"],
    {
        "id": STRING,
        "object": const("model"),
        "created": integer(0),
        "owned_by": STRING,
        "router": _ROUTER_INFO,
    },
)
MODEL_LIST: Schema = obj(["object", "data"], {"object": const("list"), "data": array(ref("Model"))})

# --- the router's own answers --------------------------------------------------------------------

_CANDIDATE = obj(
    [
        "rank",
        "model",
        "provider",
        "service_tier",
        "expected_cost_usd",
        "expected_latency_ms",
        "quality",
        "breaker",
    ],
    {
        "rank": integer(1),
        "model": STRING,
        "provider": STRING,
        "service_tier": nullable(STRING),
        "expected_cost_usd": NUMBER,
        "expected_latency_ms": NUMBER,
        "quality": INTEGER,
        "breaker": {"enum": ["closed", "open", "half_open"]},
    },
)
ROUTE_EXPLANATION: Schema = obj(
    [
        "model_asked",
        "strategy",
        "estimated_prompt_tokens",
        "expected_output_tokens",
        "candidates",
        "excluded",
    ],
    {
        "model_asked": STRING,
        "strategy": nullable(STRING),
        "estimated_prompt_tokens": integer(0),
        "expected_output_tokens": integer(0),
        "candidates": array(_CANDIDATE),
        "excluded": array(obj(["model", "reason"], {"model": STRING, "reason": STRING})),
    },
)
_STATUS = {"type": "string", "enum": ["ok", "degraded", "unhealthy"]}
_COMPONENT = obj(["status"], {"status": _STATUS})
HEALTH: Schema = obj(
    ["status", "version", "uptime_s", "workers", "components", "access", "traffic", "warnings"],
    {
        "status": _STATUS,
        "version": STRING,
        "uptime_s": NUMBER,
        "workers": integer(1),
        "components": obj(
            ["catalog", "store", "providers", "models", "breakers"],
            {name: _COMPONENT for name in ("catalog", "store", "providers", "models", "breakers")},
        ),
        "access": obj(
            ["keys_required", "keys", "ops_key_required"],
            {"keys_required": BOOLEAN, "keys": STRINGS, "ops_key_required": BOOLEAN},
        ),
        "traffic": obj(
            ["requests", "requests_per_s", "errors_per_s", "overhead_ms_p50", "overhead_ms_p95", "in_flight"],
            {
                "requests": integer(0),
                "requests_per_s": NUMBER,
                "errors_per_s": NUMBER,
                "overhead_ms_p50": nullable(NUMBER),
                "overhead_ms_p95": nullable(NUMBER),
                "in_flight": integer(0),
            },
        ),
        "warnings": STRINGS,
    },
)
LIVENESS: Schema = obj(["status"], {"status": const("ok")})
MODEL_HEALTH: Schema = obj(
    ["models"],
    {
        "models": array(
            obj(
                ["id", "provider", "configured", "missing_env", "breaker", "latency"],
                {
                    "id": STRING,
                    "provider": STRING,
                    "configured": BOOLEAN,
                    "missing_env": nullable(STRING),
                    "breaker": obj(
                        ["state", "consecutive_failures", "failure_rate", "trips", "last_error"],
                        {
                            "state": {"enum": ["closed", "open", "half_open"]},
                            "consecutive_failures": integer(0),
                            "failure_rate": NUMBER,
                            "trips": integer(0),
                            "reopens_in_s": nullable(NUMBER),
                            "last_error": nullable(OBJECT),
                        },
                    ),
                    "latency": obj(["ttft_ms", "tokens_per_s"], {"ttft_ms": NUMBER, "tokens_per_s": NUMBER}),
                },
            )
        )
    },
)
RELOAD: Schema = obj(
    ["status", "trigger", "models", "added", "removed"],
    {
        "status": const("reloaded"),
        "trigger": STRING,
        "models": integer(0),
        "added": STRINGS,
        "removed": STRINGS,
        "error": {"type": "null"},
    },
)
HELP: Schema = obj(
    ["router", "endpoints", "strategies", "models", "aliases", "auth", "limits", "state", "examples"],
    {
        "router": obj(
            ["version", "base_url", "openapi"], {"version": STRING, "base_url": STRING, "openapi": STRING}
        ),
        "endpoints": array(
            obj(["method", "path", "summary"], {"method": STRING, "path": STRING, "summary": STRING})
        ),
        "strategies": array(obj(["name", "optimises"], {"name": STRING, "optimises": STRING})),
        "models": array(obj(["id", "provider", "configured", "context_window"], {"id": STRING})),
        "aliases": {"type": "object", "additionalProperties": obj(["model"], {"model": STRING})},
        "auth": obj(["keys_required", "how"], {"keys_required": BOOLEAN, "how": STRING}),
        "limits": OBJECT,
        "state": obj(["backend", "scope", "note"], {"backend": STRING, "scope": STRING, "note": STRING}),
        "examples": {"type": "object", "additionalProperties": STRING},
    },
)

OPENAPI_DOCUMENT: Schema = obj(
    ["openapi", "info", "paths", "components"],
    {"openapi": const("3.1.0"), "info": OBJECT, "paths": OBJECT, "components": OBJECT},
)

ANSWER_SCHEMAS: dict[str, Schema] = {
    "Error": ERROR,
    "Usage": _USAGE,
    "ChatCompletion": CHAT_COMPLETION,
    "ChatCompletionChunk": CHAT_CHUNK,
    "TextCompletion": TEXT_COMPLETION,
    "EmbeddingList": EMBEDDING_LIST,
    "Response": RESPONSE,
    "ResponseOutputItem": {"anyOf": _OUTPUT_ITEMS},
    "ResponseStreamEvent": RESPONSE_EVENT,
    "ResponseInputItemList": INPUT_ITEM_LIST,
    "ResponseDeleted": RESPONSE_DELETED,
    "Model": MODEL,
    "ModelList": MODEL_LIST,
    "RouteExplanation": ROUTE_EXPLANATION,
    "Health": HEALTH,
    "Liveness": LIVENESS,
    "ModelHealth": MODEL_HEALTH,
    "ReloadResult": RELOAD,
    "Help": HELP,
    "OpenApiDocument": OPENAPI_DOCUMENT,
}
