"""The request-body schemas of the router's OpenAPI document: what each model route accepts.

They follow OpenAI's API (``CreateChatCompletionRequest``, ``CreateResponse``, ``CreateCompletionRequest``,
``CreateEmbeddingRequest``) and carry the bounds the router itself enforces (``router/types.py``,
``router/responses/request.py``, ``router/api/embeddings.py``). Fields the router does not read are
allowed and forwarded to OpenAI-kind providers as sent, so the objects stay open.
"""

from __future__ import annotations

from typing import Any

from router.catalog import STRATEGIES

Schema = dict[str, Any]


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: Schema) -> Schema:
    return {"anyOf": [schema, {"type": "null"}]}


def obj(required: list[str], properties: dict[str, Schema], **extra: Any) -> Schema:
    """An object schema; ``required`` may be empty."""
    schema: Schema = {"type": "object", "properties": properties, **extra}
    if required:
        schema["required"] = required
    return schema


def const(value: str) -> Schema:
    return {"type": "string", "const": value}


STRING: Schema = {"type": "string"}
TEXT: Schema = {"type": "string", "minLength": 1}
BOOLEAN: Schema = {"type": "boolean"}
METADATA: Schema = {"type": "object", "additionalProperties": {"type": "string"}}


def integer(minimum: int | None = None, maximum: int | None = None) -> Schema:
    schema: Schema = {"type": "integer"}
    if minimum is not None:
        schema["minimum"] = minimum
    if maximum is not None:
        schema["maximum"] = maximum
    return schema


def number(minimum: float, maximum: float) -> Schema:
    return {"type": "number", "minimum": minimum, "maximum": maximum}


MODEL_NAME: Schema = {
    "description": "A routing strategy keyword, or a catalog model id or alias (GET /v1/models lists them). "
    "An unknown name answers 404 model_not_found.",
    "anyOf": [{"type": "string", "enum": list(STRATEGIES)}, TEXT],
    "examples": ["balanced", "fast"],
}
FALLBACKS: Schema = {
    "type": "array",
    "items": TEXT,
    "description": "Concrete models or aliases to fall back to, in order, after the first (not strategies).",
}
STREAM_OPTIONS: Schema = obj([], {"include_usage": BOOLEAN})
# A request that sets stream_options must stream.
STREAM_OPTIONS_NEED_STREAM: Schema = {
    "stream_options": {"required": ["stream"], "properties": {"stream": {"const": True}}}
}
STOP: Schema = {
    "description": "Up to 4 sequences where the model stops generating.",
    "anyOf": [STRING, {"type": "array", "items": STRING, "minItems": 1, "maxItems": 4}],
}

CACHE_CONTROL: Schema = obj(
    ["type"],
    {"type": const("ephemeral"), "ttl": {"enum": ["5m", "1h"]}},
    additionalProperties=False,
    description="Anthropic's prompt-cache breakpoint: the prompt up to here is cached (Anthropic models "
    "only; left out for every other provider). At most 4 per request, 1h ones before 5m ones.",
)
_MARK: dict[str, Schema] = {"cache_control": CACHE_CONTROL}
PROMPT_CACHE: dict[str, Schema] = {
    "prompt_cache_key": STRING,
    "prompt_cache_retention": nullable({"type": "string", "enum": ["in_memory", "24h"]}),
    "cache_control": CACHE_CONTROL,  # on the request: after the last message (OpenRouter's form)
}

# --- chat messages -------------------------------------------------------------------------------

_TEXT_PART = obj(["type", "text"], {"type": const("text"), "text": STRING, **_MARK})
_REFUSAL_PART = obj(["type", "refusal"], {"type": const("refusal"), "refusal": STRING})
_IMAGE_PART = obj(
    ["type", "image_url"],
    {
        "type": const("image_url"),
        "image_url": obj(
            ["url"],
            {
                "url": {
                    "type": "string",
                    "description": "An https URL or a data URL (data:image/png;base64,...).",
                },
                "detail": {"enum": ["auto", "low", "high"]},
            },
        ),
        **_MARK,
    },
)
_AUDIO_PART = obj(
    ["type", "input_audio"],
    {
        "type": const("input_audio"),
        "input_audio": obj(["data", "format"], {"data": STRING, "format": {"enum": ["wav", "mp3"]}}),
    },
)
_FILE_PART = obj(
    ["type", "file"],
    {
        "type": const("file"),
        "file": obj([], {"file_data": STRING, "file_id": STRING, "filename": STRING}),
        **_MARK,
    },
)


def _content(*parts: Schema) -> Schema:
    """A message's content: a string, or a non-empty array of the given parts."""
    return {"anyOf": [STRING, {"type": "array", "minItems": 1, "items": {"anyOf": list(parts)}}]}


_TOOL_CALL = obj(
    ["id", "type", "function"],
    {
        "id": STRING,
        "type": const("function"),
        "function": obj(["name", "arguments"], {"name": STRING, "arguments": STRING}),
        **_MARK,
    },
)
_NAME = {"type": "string", "description": "An optional name for the participant."}

CHAT_MESSAGES: dict[str, Schema] = {
    "ChatSystemMessage": obj(
        ["role", "content"],
        {"role": const("system"), "content": _content(_TEXT_PART), "name": _NAME, **_MARK},
    ),
    "ChatDeveloperMessage": obj(
        ["role", "content"],
        {"role": const("developer"), "content": _content(_TEXT_PART), "name": _NAME, **_MARK},
    ),
    "ChatUserMessage": obj(
        ["role", "content"],
        {
            "role": const("user"),
            "content": _content(_TEXT_PART, _IMAGE_PART, _AUDIO_PART, _FILE_PART),
            "name": _NAME,
            **_MARK,
        },
    ),
    "ChatAssistantMessage": obj(
        ["role"],
        {
            "role": const("assistant"),
            "content": nullable(_content(_TEXT_PART, _REFUSAL_PART)),
            "refusal": nullable(STRING),
            "name": _NAME,
            "tool_calls": {"type": "array", "items": _TOOL_CALL},
            **_MARK,
        },
    ),
    "ChatToolMessage": obj(
        ["role", "content", "tool_call_id"],
        {"role": const("tool"), "content": _content(_TEXT_PART), "tool_call_id": STRING, **_MARK},
    ),
    "ChatFunctionMessage": obj(
        ["role", "content", "name"],
        {"role": const("function"), "content": nullable(STRING), "name": STRING},
        deprecated=True,
    ),
}

_FUNCTION = obj(
    ["name"],
    {
        "name": {"type": "string", "pattern": "^[a-zA-Z0-9_-]{1,64}$"},
        "description": STRING,
        "parameters": {"type": "object", "description": "The parameters as a JSON Schema object."},
        "strict": nullable(BOOLEAN),
        **_MARK,
    },
)
_TOOL_CHOICE: Schema = {
    "anyOf": [
        {"type": "string", "enum": ["none", "auto", "required"]},
        obj(["type", "function"], {"type": const("function"), "function": obj(["name"], {"name": STRING})}),
    ]
}
_RESPONSE_FORMAT: Schema = {
    "anyOf": [
        obj(["type"], {"type": const("text")}),
        obj(["type"], {"type": const("json_object")}),
        obj(
            ["type", "json_schema"],
            {
                "type": const("json_schema"),
                "json_schema": obj(
                    ["name"],
                    {
                        "name": {"type": "string", "pattern": "^[a-zA-Z0-9_-]{1,64}$"},
                        "description": STRING,
                        "schema": {"type": "object"},
                        "strict": nullable(BOOLEAN),
                    },
                ),
            },
        ),
    ]
}
SERVICE_TIER: Schema = {"type": "string", "enum": ["auto", "default", "flex", "scale", "priority"]}

CHAT_REQUEST: Schema = obj(
    ["model", "messages"],
    {
        "model": MODEL_NAME,
        "messages": {
            "type": "array",
            "minItems": 1,
            "items": {"oneOf": [ref(name) for name in CHAT_MESSAGES]},
            "contains": {"type": "object", "properties": {"role": {"const": "user"}}, "required": ["role"]},
            "description": "The conversation, with at least one user message: providers other than "
            "OpenAI refuse a conversation of system messages only (400). A tool message answers a "
            "tool call of an earlier assistant message.",
        },
        "stream": nullable(BOOLEAN),
        "stream_options": nullable(STREAM_OPTIONS),
        "max_tokens": nullable(integer(1)),
        "max_completion_tokens": nullable(integer(1)),
        "temperature": nullable(number(0, 2)),
        "top_p": nullable(number(0, 1)),
        "n": nullable(integer(1, 128)),
        "stop": nullable(STOP),
        "tools": {
            "type": "array",
            "items": obj(["type", "function"], {"type": const("function"), "function": _FUNCTION, **_MARK}),
        },
        "tool_choice": _TOOL_CHOICE,
        "parallel_tool_calls": BOOLEAN,
        "response_format": _RESPONSE_FORMAT,
        "service_tier": nullable(SERVICE_TIER),
        "seed": nullable(integer()),
        "user": STRING,
        **PROMPT_CACHE,
        "models": FALLBACKS,
    },
    dependentSchemas=STREAM_OPTIONS_NEED_STREAM,
    additionalProperties=True,
    description="OpenAI's CreateChatCompletionRequest; other OpenAI fields are forwarded as sent.",
)

# --- Responses -----------------------------------------------------------------------------------

_INPUT_TEXT = obj(["type", "text"], {"type": const("input_text"), "text": STRING, **_MARK})
_INPUT_IMAGE = obj(
    ["type", "image_url"],
    {"type": const("input_image"), "image_url": TEXT, "detail": {"enum": ["low", "high", "auto"]}, **_MARK},
)
_INPUT_FILE = obj(
    ["type"],
    {"type": const("input_file"), "file_data": STRING, "file_id": STRING, "filename": STRING, **_MARK},
    anyOf=[{"required": ["file_data"]}, {"required": ["file_id"]}],
)
_OUTPUT_TEXT = obj(["type", "text"], {"type": const("output_text"), "text": STRING, **_MARK})


def _items(*parts: Schema) -> Schema:
    return {"anyOf": [STRING, {"type": "array", "items": {"anyOf": list(parts)}}]}


RESPONSE_INPUT_ITEMS: dict[str, Schema] = {
    "ResponseInputMessage": obj(
        ["role", "content"],
        {
            "type": const("message"),
            "role": {"type": "string", "enum": ["user", "system", "developer"]},
            "content": _items(_INPUT_TEXT, _INPUT_IMAGE, _INPUT_FILE),
            **_MARK,
        },
    ),
    "ResponseAssistantMessage": obj(
        ["role", "content"],
        {
            "type": const("message"),
            "role": const("assistant"),
            "content": _items(_OUTPUT_TEXT, _REFUSAL_PART),
            **_MARK,
        },
    ),
    "ResponseFunctionCall": obj(
        ["type", "call_id", "name", "arguments"],
        {
            "type": const("function_call"),
            "call_id": TEXT,
            "name": TEXT,
            "arguments": STRING,
            "id": STRING,
            **_MARK,
        },
    ),
    "ResponseFunctionCallOutput": obj(
        ["type", "call_id", "output"],
        {
            "type": const("function_call_output"),
            "call_id": TEXT,
            "output": {"anyOf": [STRING, {"type": "array", "items": _INPUT_TEXT}]},
            **_MARK,
        },
    ),
    "ResponseReasoningInput": obj(
        ["type", "id", "summary"],
        {"type": const("reasoning"), "id": STRING, "summary": {"type": "array"}, "encrypted_content": STRING},
    ),
}

_RESPONSE_TOOL = obj(
    ["type", "name"],
    {
        "type": const("function"),
        "name": {"type": "string", "pattern": "^[a-zA-Z0-9_-]{1,64}$"},
        "description": nullable(STRING),
        "parameters": nullable({"type": "object"}),
        "strict": nullable(BOOLEAN),
        **_MARK,
    },
    description="Function tools only: hosted tools (web_search, ...) answer 400 unsupported_tool.",
)
_TEXT_FORMAT: Schema = {
    "anyOf": [
        obj(["type"], {"type": {"type": "string", "enum": ["text", "json_object"]}}),
        obj(
            ["type", "name", "schema"],
            {
                "type": const("json_schema"),
                "name": {"type": "string", "pattern": "^[a-zA-Z0-9_-]{1,64}$"},
                "schema": {"type": "object"},
                "description": STRING,
                "strict": nullable(BOOLEAN),
            },
        ),
    ]
}

RESPONSES_REQUEST: Schema = obj(
    ["model"],
    {
        "model": MODEL_NAME,
        "input": {
            "anyOf": [
                TEXT,
                {"type": "array", "minItems": 1, "items": {"anyOf": [ref(n) for n in RESPONSE_INPUT_ITEMS]}},
            ]
        },
        "instructions": nullable(TEXT),
        "previous_response_id": nullable(STRING),
        "store": nullable(BOOLEAN),
        "stream": nullable(BOOLEAN),
        "stream_options": nullable(STREAM_OPTIONS),
        "background": {
            "anyOf": [{"const": False}, {"type": "null"}],
            "description": "Background responses are not supported: true answers 400.",
        },
        "max_output_tokens": nullable(integer(1)),
        "temperature": nullable(number(0, 2)),
        "top_p": nullable(number(0, 1)),
        "top_logprobs": nullable(integer(0, 20)),
        "tools": {"type": "array", "items": _RESPONSE_TOOL},
        "tool_choice": {
            "anyOf": [
                {"type": "string", "enum": ["none", "auto", "required"]},
                obj(["type", "name"], {"type": const("function"), "name": STRING}),
            ]
        },
        "parallel_tool_calls": nullable(BOOLEAN),
        "text": obj([], {"format": _TEXT_FORMAT, "verbosity": {"enum": ["low", "medium", "high"]}}),
        "reasoning": obj([], {"effort": {"enum": ["minimal", "low", "medium", "high"]}}),
        "metadata": nullable(METADATA),
        "include": nullable({"type": "array", "items": STRING}),
        "service_tier": nullable(SERVICE_TIER),
        "user": STRING,
        "safety_identifier": STRING,
        **PROMPT_CACHE,
        "truncation": nullable({"type": "string", "enum": ["auto", "disabled"]}),
        "max_tool_calls": nullable(integer(1)),
        "models": FALLBACKS,
    },
    anyOf=[{"required": ["input"]}, {"required": ["instructions"]}, {"required": ["previous_response_id"]}],
    dependentSchemas=STREAM_OPTIONS_NEED_STREAM,
    additionalProperties=True,
    description="OpenAI's CreateResponse. 'conversation' and 'prompt' are not supported (400). Without "
    "'input', 'instructions' or 'previous_response_id' the request answers 400.",
)

# --- legacy completions and embeddings -----------------------------------------------------------

_TOKEN = integer(0)
COMPLETION_REQUEST: Schema = obj(
    ["model", "prompt"],
    {
        "model": MODEL_NAME,
        "prompt": {
            "description": "A text, texts, a token array or token arrays. Token arrays, 'suffix', "
            "'logprobs' and 'best_of' > 1 need a model with a native completions API (else 400).",
            "anyOf": [
                STRING,
                {"type": "array", "minItems": 1, "items": STRING},
                {"type": "array", "minItems": 1, "items": _TOKEN},
                {"type": "array", "minItems": 1, "items": {"type": "array", "minItems": 1, "items": _TOKEN}},
            ],
        },
        "max_tokens": nullable(integer(0)),
        "temperature": nullable(number(0, 2)),
        "top_p": nullable(number(0, 1)),
        "n": nullable(integer(1, 128)),
        "stream": nullable(BOOLEAN),
        "stream_options": nullable(STREAM_OPTIONS),
        "stop": nullable(STOP),
        "echo": nullable(BOOLEAN),
        "suffix": nullable(STRING),
        "logprobs": nullable(integer(0, 5)),
        "best_of": nullable(integer(0, 20)),
        "presence_penalty": nullable(number(-2, 2)),
        "frequency_penalty": nullable(number(-2, 2)),
        "seed": nullable(integer()),
        "user": STRING,
        "logit_bias": nullable({"type": "object", "additionalProperties": integer(-100, 100)}),
        "models": FALLBACKS,
    },
    dependentSchemas=STREAM_OPTIONS_NEED_STREAM,
    additionalProperties=True,
    description="OpenAI's CreateCompletionRequest, served natively or translated to chat.",
)

MAX_EMBEDDING_INPUTS = 2048
EMBEDDING_REQUEST: Schema = obj(
    ["model", "input"],
    {
        "model": {
            "type": "string",
            "minLength": 1,
            "description": "A concrete embeddings model or alias: strategies answer 400.",
            "examples": ["text-embedding-3-small"],
        },
        "input": {
            "anyOf": [
                TEXT,
                {"type": "array", "minItems": 1, "maxItems": MAX_EMBEDDING_INPUTS, "items": TEXT},
                {"type": "array", "minItems": 1, "items": _TOKEN},
                {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": MAX_EMBEDDING_INPUTS,
                    "items": {"type": "array", "minItems": 1, "items": _TOKEN},
                },
            ]
        },
        "encoding_format": {"type": "string", "enum": ["float", "base64"]},
        "dimensions": integer(1),
        "user": STRING,
        "models": FALLBACKS,
    },
    additionalProperties=True,
    description="OpenAI's CreateEmbeddingRequest.",
)

REQUEST_SCHEMAS: dict[str, Schema] = {
    "ChatRequest": CHAT_REQUEST,
    **CHAT_MESSAGES,
    "ResponsesRequest": RESPONSES_REQUEST,
    **RESPONSE_INPUT_ITEMS,
    "CompletionRequest": COMPLETION_REQUEST,
    "EmbeddingRequest": EMBEDDING_REQUEST,
}
