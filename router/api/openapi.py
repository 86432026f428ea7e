"""The OpenAPI 3.1 document of the router's own HTTP API (``GET /openapi.json``), and the endpoint
list ``/help`` shows. Each operation names its request body, its answers by status with their content
types, and the headers the router sets; the schemas themselves live in ``openapi_requests`` and
``openapi_answers``."""

from __future__ import annotations

from typing import Any

from router.api.openapi_answers import ANSWER_SCHEMAS
from router.api.openapi_dashboard import DASHBOARD_SCHEMAS
from router.api.openapi_requests import REQUEST_SCHEMAS, Schema, ref
from router.api.openapi_spend import SPEND_CSV, SPEND_QUERY, SPEND_SCHEMAS

# (method, path, summary), in the order /help lists them.
ENDPOINTS: list[tuple[str, str, str]] = [
    ("POST", "/v1/chat/completions", "Chat Completions, JSON or an SSE stream"),
    ("POST", "/v1/responses", "the Responses API, JSON or an SSE stream"),
    ("GET", "/v1/responses/{response_id}", "a stored response"),
    ("GET", "/v1/responses/{response_id}/input_items", "a stored response's input items"),
    ("DELETE", "/v1/responses/{response_id}", "delete a stored response"),
    ("POST", "/v1/completions", "legacy text completions, JSON or an SSE stream"),
    ("POST", "/v1/embeddings", "embeddings (a concrete model; strategies are refused)"),
    ("GET", "/v1/models", "every model, alias and strategy this key may use"),
    ("GET", "/v1/models/{model_id}", "one model, alias or strategy"),
    ("POST", "/v1/route", "explain a routing decision without calling a provider"),
    ("GET", "/v1/usage", "this key's spend today and this month, its budgets and what is left of them"),
    ("GET", "/health", "status with its components and this process's traffic (ops)"),
    ("GET", "/health/live", "liveness: 200 while the process runs (public)"),
    ("GET", "/model-health", "each model's breaker, error rate and latency (ops)"),
    (
        "GET",
        "/model-health/series",
        "each model's last hour in this process, per minute: answers, attempts, errors, latency (ops)",
    ),
    (
        "GET",
        "/model-health/spend",
        "spend today and this month per key and per model against their budgets (ops)",
    ),
    ("GET", "/metrics", "Prometheus metrics (ops)"),
    ("POST", "/admin/reload", "reload the catalog file; a bad one is refused (ops)"),
    ("GET", "/admin/spend", "spend by key, model or provider over UTC days, as JSON or CSV (ops)"),
    ("GET", "/dashboard", "the ops dashboard page (public page; its data needs the ops key)"),
    ("GET", "/help", "this documentation as JSON, or as a page for a browser"),
    ("GET", "/openapi.json", "this OpenAPI document"),
]

PUBLIC = {"/health/live", "/help", "/openapi.json", "/dashboard"}
OPS = {
    "/health",
    "/model-health",
    "/model-health/series",
    "/model-health/spend",
    "/metrics",
    "/admin/reload",
    "/admin/spend",
}
STREAMS = {
    "/v1/chat/completions": "ChatCompletionChunk",
    "/v1/responses": "ResponseStreamEvent",
    "/v1/completions": "TextCompletion",
}
MODEL_ROUTES = {"/v1/chat/completions", "/v1/responses", "/v1/completions", "/v1/embeddings"}

_REQUEST_BODY = {
    "/v1/chat/completions": "ChatRequest",
    "/v1/route": "ChatRequest",
    "/v1/responses": "ResponsesRequest",
    "/v1/completions": "CompletionRequest",
    "/v1/embeddings": "EmbeddingRequest",
}
# What a 200 carries, by path: a schema name for JSON, or media types with their schemas.
_OK_JSON = {
    "/v1/chat/completions": "ChatCompletion",
    "/v1/responses": "Response",
    "/v1/responses/{response_id}": "Response",
    "/v1/responses/{response_id}/input_items": "ResponseInputItemList",
    "/v1/completions": "TextCompletion",
    "/v1/embeddings": "EmbeddingList",
    "/v1/models": "ModelList",
    "/v1/models/{model_id}": "Model",
    "/v1/route": "RouteExplanation",
    "/health": "Health",
    "/health/live": "Liveness",
    "/model-health": "ModelHealth",
    "/model-health/series": "ModelSeries",
    "/model-health/spend": "SpendOverview",
    "/admin/reload": "ReloadResult",
    "/v1/usage": "KeyUsage",
    "/admin/spend": "SpendReport",
    "/help": "Help",
    "/openapi.json": "OpenApiDocument",
}
_TEXT: Schema = {"type": "string"}

_ERRORS = {
    "400": "The request is invalid; 'param' names the field. Codes include unsupported_content_type "
    "(a POST body not sent as application/json), context_length_exceeded (the prompt is too large "
    "for every candidate model), json_too_deep, model_not_supported; a body that is not JSON or not "
    "UTF-8 answers 400 too.",
    "401": "Missing or wrong API key (the ops key on the ops routes).",
    "403": "This key may not use the model; admin routes without an ops key answer only local clients.",
    "404": "Unknown model (model_not_found) or resource (not_found).",
    "405": "The path does not answer this method; 'Allow' lists the ones it does.",
    "408": "The body did not arrive within ROUTER_BODY_TIMEOUT_S (the connection is then closed).",
    "413": "The body is larger than the router accepts (ROUTER_MAX_BODY_BYTES).",
    "429": "A rate limit is spent: the router's own or the provider's (see retry-after and x-ratelimit-*); "
    "or a spend budget is (type insufficient_quota, code budget_exceeded, x-should-retry: false; the "
    "message names the budget and when it resets).",
    "431": "Too many request headers, or headers too large. More than 100 headers, or a request line over "
    "64 KiB, are refused by the HTTP server itself, with an empty body.",
    "500": "The router failed to handle the request (an envelope, never a bare page).",
    "502": "The provider refused the router's own key, could not be reached, or answered badly.",
    "503": "No model can serve the request now (see retry-after); for spend reports, the ledger's Redis "
    "cannot be reached (ledger_unavailable).",
    "504": "No model answered within the routing deadline.",
}
_EVERY = ["405", "431", "500"]
_STATUSES: dict[str, list[str]] = {
    "/v1/responses/{response_id}": ["401", "404"],
    "/v1/responses/{response_id}/input_items": ["401", "404"],
    "/v1/models": ["401"],
    "/v1/models/{model_id}": ["401", "404"],
    "/v1/route": ["400", "401", "404", "408", "413", "503"],
    "/health": ["401"],
    "/model-health": ["401"],
    "/model-health/series": ["400", "401", "404"],
    "/model-health/spend": ["401", "503"],
    "/metrics": ["401"],
    "/admin/reload": ["400", "401", "403"],
    "/v1/usage": ["401", "503"],
    "/admin/spend": ["400", "401", "403", "503"],
}
# Query parameters, by path.
_QUERY: dict[str, list[Schema]] = {
    "/model-health/series": [
        {
            "name": "minutes",
            "in": "query",
            "description": "How many minutes back, the current one included (default 60).",
            "schema": {"type": "integer", "minimum": 1, "maximum": 60},
        },
        {
            "name": "model",
            "in": "query",
            "description": "A catalog model id (repeat for several; default every model). An alias or "
            "a strategy is refused with a 400, an unknown name with a 404.",
            "schema": {"type": "array", "items": {"type": "string", "minLength": 1}},
            "style": "form",
            "explode": True,
        },
    ],
    "/admin/spend": SPEND_QUERY,
}
_MODEL_STATUSES = ["400", "401", "403", "404", "408", "413", "429", "502", "503", "504"]

_HEADERS: dict[str, Schema] = {
    "RequestId": {
        "description": "This request's id, as in the router's log.",
        "required": True,
        "schema": _TEXT,
    },
    "Allow": {"description": "The methods this path answers.", "required": True, "schema": _TEXT},
    "RetryAfter": {
        "description": "Seconds to wait before retrying.",
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
    },
    "WwwAuthenticate": {"description": "The scheme to authenticate with.", "required": True, "schema": _TEXT},
    "RouterModel": {"description": "The catalog model that answered.", "required": True, "schema": _TEXT},
    "RouterProvider": {"description": "Its provider.", "required": True, "schema": _TEXT},
    "RouterAttempts": {
        "description": "How many attempts the answer took (0: replayed from the response cache).",
        "required": True,
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
    },
    "RouterOverhead": {
        "description": "The router's own time, in milliseconds.",
        "required": True,
        "schema": _TEXT,
    },
    "RouterStrategy": {"description": "The strategy that ranked the candidates.", "schema": _TEXT},
    "RouterCost": {
        "description": "The answer's estimated cost in USD (not on streams; 0 for a cache hit).",
        "schema": _TEXT,
    },
    "RouterFallbackReason": {"description": "Why earlier candidates were passed over.", "schema": _TEXT},
    "RouterDeployment": {
        "description": "Which deployment served (provider/model), when the model has several.",
        "schema": _TEXT,
    },
    "RouterCache": {
        "description": "When the response cache is on: hit (replayed; no model was called), miss or "
        "bypass (the request's Cache-Control: no-store, or a Responses request with "
        "previous_response_id). Send Cache-Control: no-cache to refresh the kept answer.",
        "schema": {"type": "string", "enum": ["hit", "miss", "bypass"]},
    },
    "Age": {
        "description": "On a cache hit: seconds since the answer was kept.",
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
    },
}
_SERVED_HEADERS = {
    "x-router-model": "RouterModel",
    "x-router-provider": "RouterProvider",
    "x-router-attempts": "RouterAttempts",
    "x-router-overhead-ms": "RouterOverhead",
    "x-router-strategy": "RouterStrategy",
    "x-router-cost-usd": "RouterCost",
    "x-router-fallback-reason": "RouterFallbackReason",
    "x-router-deployment": "RouterDeployment",
    "x-router-cache": "RouterCache",
    "age": "Age",
}


_CACHE_CONTROL: dict[str, Any] = {
    "name": "Cache-Control",
    "in": "header",
    "required": False,
    "description": "For the response cache, when it is on: no-cache (or max-age=0) answers from a model "
    "and keeps that answer; no-store answers from a model and keeps nothing.",
    "schema": {"type": "string", "examples": ["no-cache", "no-store"]},
}


def openapi_document(version: str) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for method, path, summary in ENDPOINTS:
        operation: dict[str, Any] = {
            "summary": summary,
            "operationId": _operation_id(method, path),
            "responses": _responses(method, path),
        }
        if path in PUBLIC:
            operation["security"] = []
        elif path in OPS:
            operation["security"] = [{"opsKey": []}]
        parameters: list[dict[str, Any]] = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}
            for name in ("response_id", "model_id")
            if "{" + name + "}" in path
        ]
        parameters.extend(_QUERY.get(path, []))
        if path in MODEL_ROUTES and method == "POST":
            parameters.append(_CACHE_CONTROL)
        if parameters:
            operation["parameters"] = parameters
        body = _REQUEST_BODY.get(path)
        if body:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": ref(body)}},
            }
        paths.setdefault(path, {})[method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "router",
            "version": version,
            "description": "An LLM router that speaks the OpenAI API. Every /v1 route also answers "
            "without the /v1 prefix. POST bodies are JSON objects sent as application/json.",
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
            "headers": _HEADERS,
            "schemas": {**REQUEST_SCHEMAS, **ANSWER_SCHEMAS, **DASHBOARD_SCHEMAS, **SPEND_SCHEMAS},
        },
    }


def _responses(method: str, path: str) -> dict[str, Any]:
    responses: dict[str, Any] = {"200": _ok(method, path)}
    if path == "/health":
        responses["503"] = {
            "description": "Nothing can be routed (status unhealthy).",
            "headers": _headers(),
            "content": {"application/json": {"schema": ref("Health")}},
        }
    statuses = _MODEL_STATUSES if path in MODEL_ROUTES else _STATUSES.get(path, [])
    for status in sorted({*statuses, *_EVERY}):
        if status not in responses:
            responses[status] = _error(status)
    return responses


def _ok(method: str, path: str) -> dict[str, Any]:
    content: dict[str, Any] = {}
    if method == "DELETE":
        content["application/json"] = {"schema": ref("ResponseDeleted")}
    elif path in _OK_JSON:
        content["application/json"] = {"schema": ref(_OK_JSON[path])}
    if path in STREAMS:
        content["text/event-stream"] = {"schema": _sse_event(path)}
    if path == "/admin/spend":
        content["text/csv"] = {"schema": SPEND_CSV}
    if path == "/metrics":
        content["text/plain"] = {"schema": {"type": "string", "description": "Prometheus text format 0.0.4."}}
    if path in ("/dashboard", "/help"):
        content["text/html"] = {"schema": _TEXT}
    ok: dict[str, Any] = {"description": "OK", "headers": _headers(), "content": content}
    if path in MODEL_ROUTES:
        ok["headers"].update(
            {name: {"$ref": f"#/components/headers/{h}"} for name, h in _SERVED_HEADERS.items()}
        )
    if path in STREAMS:
        ok["description"] = "The answer as JSON, or with 'stream': true as Server-Sent Events."
    return ok


def _sse_event(path: str) -> Schema:
    """One Server-Sent Event: its ``data`` is a JSON object (an error envelope when the stream breaks
    after it started), or ``[DONE]`` at the end of a chat or completions stream."""
    json_data = {"type": "string", "contentMediaType": "application/json"}
    if path == "/v1/responses":
        data = {**json_data, "contentSchema": ref(STREAMS[path])}
        return {
            "type": "object",
            "required": ["event", "data"],
            "properties": {"event": _TEXT, "data": data},
        }
    payload = {"anyOf": [ref(STREAMS[path]), ref("Error")]}
    data = {"type": "string", "if": {"const": "[DONE]"}, "else": {**json_data, "contentSchema": payload}}
    return {"type": "object", "required": ["data"], "properties": {"data": data}}


def _error(status: str) -> dict[str, Any]:
    headers = _headers()
    if status == "405":
        headers["Allow"] = {"$ref": "#/components/headers/Allow"}
    elif status == "401":
        headers["WWW-Authenticate"] = {"$ref": "#/components/headers/WwwAuthenticate"}
    elif status in ("429", "503"):
        headers["retry-after"] = {"$ref": "#/components/headers/RetryAfter"}
    return {
        "description": _ERRORS[status],
        "headers": headers,
        "content": {"application/json": {"schema": ref("Error")}},
    }


def _headers() -> dict[str, Any]:
    return {"x-request-id": {"$ref": "#/components/headers/RequestId"}}


def _operation_id(method: str, path: str) -> str:
    words = [part.strip("{}") for part in path.split("/") if part and part != "v1"]
    return method.lower() + "_" + "_".join(w.replace(".", "_").replace("-", "_") for w in words)
