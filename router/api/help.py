"""``GET /help`` and ``/v1/help``: what this router serves and how to call it, as JSON."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Response, get
from litestar.handlers import HTTPRouteHandler

from router.api.errors import JSON
from router.api.services import Services
from router.catalog import STRATEGIES

ENDPOINTS = {
    "POST /v1/chat/completions": "OpenAI Chat Completions, JSON or SSE stream",
    "POST /v1/responses": "OpenAI Responses API; GET/DELETE /v1/responses/{id}, .../input_items",
    "POST /v1/completions": "legacy text completions",
    "POST /v1/embeddings": "embeddings (a concrete model; strategies are refused)",
    "GET /v1/models": "every model, alias and strategy; GET /v1/models/{id} for one",
    "POST /v1/route": "explain a routing decision without calling a provider",
    "GET /health": "status with store, access and breaker summary (ops key if configured)",
    "GET /health/live": "liveness: 200 while the process runs",
    "GET /model-health": "each model's breaker, error rate and latency (ops key if configured)",
    "GET /help": "this page",
}

_encode = msgspec.json.Encoder().encode


def help_document(services: Services) -> dict[str, Any]:
    catalog = services.catalog
    keys = services.keys
    limiter = services.limiter
    report = services.state.report()
    models = [
        {
            "id": m.id,
            "provider": m.provider,
            "context_window": m.context_window,
            "price_per_1m": {"input": m.price.input, "output": m.price.output},
            "endpoints": sorted(m.endpoints),
        }
        for m in catalog.models.values()
    ]
    defaults = catalog.access.defaults
    return {
        "endpoints": ENDPOINTS,
        "strategies": list(STRATEGIES),
        "models": models,
        "aliases": {name: alias.model for name, alias in catalog.aliases.items()},
        "auth": {
            "keys_required": keys.declared,
            "how": "Authorization: Bearer <key> or x-api-key: <key>",
            "ops_key_required": keys.ops_declared,
        },
        "limits": {
            "default_per_key": msgspec.to_builtins(defaults),
            "global": msgspec.to_builtins(limiter.global_rule) if not limiter.global_rule.empty else None,
            "per_model": {name: msgspec.to_builtins(rule) for name, rule in limiter.model_rules.items()},
        },
        "state": {"backend": report.backend, "scope": report.scope, "note": report.note},
        "base_url": "http://<host>:<port>/v1 (n8n accepts it with or without /v1)",
    }


def help_handlers(services: Services) -> list[HTTPRouteHandler]:
    @get(["/help", "/v1/help"], sync_to_thread=False)
    def help_page() -> Response[bytes]:
        return Response(content=_encode(help_document(services)), media_type=JSON)

    return [help_page]
