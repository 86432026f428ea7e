"""The OpenAPI 3.1 document of the router's own HTTP API (``GET /openapi.json``), and the endpoint
list ``/help`` shows. Request and answer bodies follow OpenAI's API; the schemas here name the
fields the router reads and leave the rest open, as OpenAI's own clients send more."""

from __future__ import annotations

from typing import Any

# (method, path, summary), in the order /help lists them.
ENDPOINTS: list[tuple[str, str, str]] = [
    ("POST", "/v1/chat/completions", "Chat Completions, JSON or an SSE stream"),
    ("POST", "/v1/responses", "the Responses API, JSON or an SSE stream"),
    ("GET", "/v1/responses/{response_id}", "a stored response"),
    ("GET", "/v1/responses/{response_id}/input_items", "a stored response's input items"),
    ("DELETE", "/v1/responses/{response_id}", "delete a stored response"),
    ("POST", "/v1/completions", "legacy text completions"),
    ("POST", "/v1/embeddings", "embeddings (a concrete model; strategies are refused)"),
    ("GET", "/v1/models", "every model, alias and strategy this key may use"),
    ("GET", "/v1/models/{model_id}", "one model, alias or strategy"),
    ("POST", "/v1/route", "explain a routing decision without calling a provider"),
    ("GET", "/health", "status with its components and this process's traffic (ops)"),
    ("GET", "/health/live", "liveness: 200 while the process runs (public)"),
    ("GET", "/model-health", "each model's breaker, error rate and latency (ops)"),
    ("GET", "/metrics", "Prometheus metrics (ops)"),
    ("POST", "/admin/reload", "reload the catalog file; a bad one is refused (ops)"),
    ("GET", "/dashboard", "the ops dashboard page (public page; its data needs the ops key)"),
    ("GET", "/help", "this documentation as JSON, or as a page for a browser"),
    ("GET", "/openapi.json", "this OpenAPI document"),
]

PUBLIC = {"/health/live", "/help", "/openapi.json", "/dashboard"}
OPS = {"/health", "/model-health", "/metrics", "/admin/reload"}
STREAMS = {"/v1/chat/completions", "/v1/responses", "/v1/completions"}

_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["message", "type"],
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string"},
                "param": {"type": ["string", "null"]},
                "code": {"type": ["string", "null"]},
            },
        }
    },
}
_MODEL = {
    "type": "string",
    "description": "A catalog model id, an alias, or a strategy keyword (fast, speed, fast-flex, "
    "balanced, balanced-flex, quality, cost).",
}
_FALLBACKS = {
    "type": "array",
    "items": {"type": "string"},
    "description": "Concrete models or aliases to fall back to, in order, after the first.",
}
_BODIES: dict[str, dict[str, Any]] = {
    "ChatRequest": {
        "type": "object",
        "required": ["model", "messages"],
        "properties": {
            "model": _MODEL,
            "messages": {"type": "array", "items": {"type": "object"}},
            "stream": {"type": "boolean"},
            "models": _FALLBACKS,
        },
        "additionalProperties": True,
    },
    "ResponsesRequest": {
        "type": "object",
        "required": ["model"],
        "properties": {
            "model": _MODEL,
            "input": {"type": ["string", "array"]},
            "previous_response_id": {"type": ["string", "null"]},
            "stream": {"type": "boolean"},
            "models": _FALLBACKS,
        },
        "additionalProperties": True,
    },
    "CompletionRequest": {
        "type": "object",
        "required": ["model"],
        "properties": {"model": _MODEL, "prompt": {}, "stream": {"type": "boolean"}, "models": _FALLBACKS},
        "additionalProperties": True,
    },
    "EmbeddingRequest": {
        "type": "object",
        "required": ["model", "input"],
        "properties": {
            "model": {"type": "string"},
            "input": {},
            "encoding_format": {"enum": ["float", "base64"]},
            "dimensions": {"type": "integer", "minimum": 1},
            "models": _FALLBACKS,
        },
        "additionalProperties": True,
    },
}
_REQUEST_BODY = {
    "/v1/chat/completions": "ChatRequest",
    "/v1/route": "ChatRequest",
    "/v1/responses": "ResponsesRequest",
    "/v1/completions": "CompletionRequest",
    "/v1/embeddings": "EmbeddingRequest",
}
_ERRORS = {
    "400": "the request is invalid (the message names the field)",
    "401": "missing or wrong API key",
    "403": "this key may not use the model",
    "404": "unknown model or resource",
    "413": "the body is too large",
    "429": "a rate limit is spent (see retry-after and x-ratelimit-*)",
    "502": "the provider refused the router's own key, or answered badly",
    "503": "no model can serve the request now (see retry-after)",
}


def openapi_document(version: str) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for method, path, summary in ENDPOINTS:
        operation: dict[str, Any] = {
            "summary": summary,
            "operationId": _operation_id(method, path),
            "responses": _responses(path),
        }
        if path in PUBLIC:
            operation["security"] = []
        elif path in OPS:
            operation["security"] = [{"opsKey": []}]
        parameters = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in ("response_id", "model_id")
            if "{" + name + "}" in path
        ]
        if parameters:
            operation["parameters"] = parameters
        body = _REQUEST_BODY.get(path)
        if body:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{body}"}}},
            }
        paths.setdefault(path, {})[method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "router",
            "version": version,
            "description": "An LLM router that speaks the OpenAI API. Every /v1 route also answers "
            "without the /v1 prefix.",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}, {"apiKey": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"},
                "opsKey": {"type": "http", "scheme": "bearer", "description": "ROUTER_OPS_KEY, when set"},
            },
            "schemas": {"Error": _ERROR, **_BODIES},
        },
    }


def _responses(path: str) -> dict[str, Any]:
    ok: dict[str, Any] = {
        "description": "OK",
        "content": {"application/json": {"schema": {"type": "object"}}},
    }
    if path in STREAMS:
        ok["content"]["text/event-stream"] = {"schema": {"type": "string"}}
    if path == "/metrics":
        ok["content"] = {"text/plain": {"schema": {"type": "string"}}}
    if path in ("/dashboard", "/help"):
        ok["content"]["text/html"] = {"schema": {"type": "string"}}
        if path == "/dashboard":
            del ok["content"]["application/json"]
    error = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    responses: dict[str, Any] = {"200": ok}
    if path not in PUBLIC:
        for status, description in _ERRORS.items():
            responses[status] = {"description": description, **error}
    return responses


def _operation_id(method: str, path: str) -> str:
    words = [part.strip("{}") for part in path.split("/") if part and part != "v1"]
    return method.lower() + "_" + "_".join(w.replace(".", "_").replace("-", "_") for w in words)
