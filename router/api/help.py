"""``GET /help`` and ``/v1/help``: what this router serves and how to call it — JSON by default,
a readable page when a browser asks (``Accept: text/html``)."""

from __future__ import annotations

import html
from typing import Any

import msgspec
from litestar import MediaType, Request, Response, get
from litestar.handlers import HTTPRouteHandler

from router import __version__
from router.api.errors import JSON
from router.api.openapi import ENDPOINTS, openapi_document
from router.api.services import Services
from router.catalog import STRATEGIES, Catalog

STRATEGY_GOALS = {
    "fast": "lowest expected latency: time to first token plus the output at the measured speed",
    "speed": "the same ranking as fast",
    "fast-flex": "fast, sending flex-capable models at OpenAI's flex tier (cheaper, may queue)",
    "balanced": "weighted score of quality, cost and latency (catalog routing.balanced weights)",
    "balanced-flex": "balanced, at the flex tier where a model has one",
    "quality": "highest quality score, the cheaper first among equals",
    "cost": "lowest estimated cost of this request (prompt and expected output at the catalog prices)",
}

_encode = msgspec.json.Encoder().encode


def help_document(services: Services, base_url: str) -> dict[str, Any]:
    catalog = services.catalog
    keys = services.keys
    limiter = services.limiter
    report = services.state.report()
    engine = services.engine
    models = [
        {
            "id": m.id,
            "provider": m.provider,
            "provider_kind": catalog.provider_of(m).kind,
            "configured": engine.unusable_reason(m) is None,
            "context_window": m.context_window,
            "max_output": m.max_output,
            "price_per_1m_tokens": {
                "input": m.price.input,
                "output": m.price.output,
                "cached_input": m.price.cached_input,
                "cache_write": m.price.cache_write,
                "cache_write_1h": m.price.cache_write_1h,
                **(
                    {"flex_input": m.flex_price.input, "flex_output": m.flex_price.output}
                    if m.flex_price
                    else {}
                ),
            },
            "capabilities": sorted(m.capabilities),
            "endpoints": sorted(m.endpoints),
            **(
                {
                    "deployments": [
                        {"id": v.key, "provider": v.provider, "upstream": v.upstream, "weight": v.weight}
                        for v in m.deployments
                    ]
                }
                if m.deployments
                else {}
            ),
        }
        for m in catalog.models.values()
    ]
    defaults = catalog.access.defaults
    api = base_url.rstrip("/") + "/v1"
    auth = "Authorization: Bearer $ROUTER_API_KEY" if keys.declared else None
    return {
        "router": {
            "version": __version__,
            "base_url": api,
            "openapi": base_url.rstrip("/") + "/openapi.json",
        },
        "endpoints": [{"method": m, "path": p, "summary": s} for m, p, s in ENDPOINTS],
        "strategies": [{"name": name, "optimises": STRATEGY_GOALS[name]} for name in STRATEGIES],
        "models": models,
        "aliases": {
            name: {
                "model": alias.model,
                **({"service_tier": alias.service_tier} if alias.service_tier else {}),
            }
            for name, alias in catalog.aliases.items()
        },
        "auth": {
            "keys_required": keys.declared,
            "how": "Authorization: Bearer <key> or x-api-key: <key>",
            "ops_key_required": keys.ops_declared,
            "ops_routes": [
                "/health",
                "/metrics",
                "/model-health",
                "/model-health/series",
                "/model-health/spend",
                "/admin/reload",
                "/admin/spend",
            ],
        },
        "limits": {
            "default_per_key": msgspec.to_builtins(defaults),
            "global": None if limiter.global_rule.empty else msgspec.to_builtins(limiter.global_rule),
            "per_model": {name: msgspec.to_builtins(rule) for name, rule in limiter.model_rules.items()},
        },
        "budgets": _budgets(catalog),
        "state": {"backend": report.backend, "scope": report.scope, "note": report.note},
        "cache": _cache(services),
        "examples": _examples(api, auth),
    }


def _budgets(catalog: Catalog) -> dict[str, Any]:
    access = catalog.access
    return {
        "default_per_key": msgspec.to_builtins(access.defaults.budget),
        "global": msgspec.to_builtins(access.global_.budget),
        "per_model": {
            name: msgspec.to_builtins(spec.budget)
            for name, spec in access.model_limits.items()
            if spec.budget
        },
        "how": "USD per UTC day and month at the catalog's prices. A request is admitted when its estimate "
        "(prompt plus the output it asks for, else expected_output_tokens) fits what is left; over a "
        "budget: 429 insufficient_quota / budget_exceeded with x-should-retry: false. A strategy is "
        "estimated on its cheapest candidate, then each model the router picks is checked with its own "
        "estimate. GET /v1/usage shows a key its spend; GET /admin/spend reports by key, model or provider.",
    }


def _cache(services: Services) -> dict[str, Any]:
    """The response cache in force: off, or its settings, where it keeps answers and how to steer it."""
    cache = services.cache
    if cache is None:
        return {"enabled": False, "how": "catalog cache.enabled: true, or ROUTER_CACHE_TTL_S > 0"}
    spec = cache.spec
    return {
        "enabled": True,
        "ttl_s": spec.ttl_s,
        "max_entries": spec.max_entries,
        "max_entry_bytes": spec.max_entry_bytes,
        "store": cache.store.describe,
        "scope": "per API key",
        "header": "x-router-cache: hit | miss | bypass",
        "request_headers": "Cache-Control: no-cache refreshes the kept answer; no-store bypasses the cache",
    }


def _examples(api: str, auth: str | None) -> dict[str, str]:
    header = f" -H '{auth}'" if auth else ""
    key = "os.environ['ROUTER_API_KEY']" if auth else "'unused'"
    return {
        "curl": (
            f"curl {api}/chat/completions -H 'content-type: application/json'{header} "
            '-d \'{"model": "fast", "messages": [{"role": "user", "content": "hello"}]}\''
        ),
        "openai_sdk": (
            f"from openai import OpenAI\nclient = OpenAI(base_url='{api}', api_key={key})\n"
            "client.chat.completions.create(model='balanced', messages=[{'role': 'user', 'content': 'hi'}])"
        ),
        "n8n": (
            f"OpenAI credential: API key = your router key, Base URL = {api} (with or without /v1); "
            "pick any model id, alias or strategy in the model field"
        ),
        "cursor": (
            f"Settings → Models → OpenAI API key = your router key, override the base URL with {api} "
            "(it must be reachable over public HTTPS: Cursor calls it from its own servers), "
            "then add a custom model such as 'quality' or 'sonnet'"
        ),
    }


def help_html(doc: dict[str, Any]) -> str:
    e = html.escape

    def table(headers: list[str], rows: list[list[str]]) -> str:
        head = "".join(f"<th>{e(h)}</th>" for h in headers)
        body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

    endpoints = table(
        ["Method", "Path", "What it does"],
        [[e(x["method"]), f"<code>{e(x['path'])}</code>", e(x["summary"])] for x in doc["endpoints"]],
    )
    strategies = table(
        ["Keyword", "Optimises"],
        [[f"<code>{e(s['name'])}</code>", e(s["optimises"])] for s in doc["strategies"]],
    )
    models = table(
        ["Model", "Provider", "Ready", "Context", "Input $/1M", "Output $/1M", "APIs"],
        [
            [
                f"<code>{e(m['id'])}</code>",
                e(
                    " or ".join(d["provider"] for d in m["deployments"])
                    if m.get("deployments")
                    else m["provider"]
                    if m["provider"] == m["provider_kind"]
                    else f"{m['provider']} ({m['provider_kind']})"
                ),
                "yes" if m["configured"] else "not configured",
                f"{m['context_window']:,}",
                f"{m['price_per_1m_tokens']['input']:g}",
                f"{m['price_per_1m_tokens']['output']:g}",
                e(", ".join(m["endpoints"])),
            ]
            for m in doc["models"]
        ],
    )
    aliases = table(
        ["Alias", "Model"],
        [[f"<code>{e(name)}</code>", f"<code>{e(a['model'])}</code>"] for name, a in doc["aliases"].items()],
    )
    auth = doc["auth"]
    access = (
        f"<p>API keys required: <b>{'yes' if auth['keys_required'] else 'no'}</b> ({e(auth['how'])}). "
        f"Ops key required for {e(', '.join(auth['ops_routes']))}: "
        f"<b>{'yes' if auth['ops_key_required'] else 'no'}</b>.</p>"
        f"<pre>{e(msgspec.json.format(msgspec.json.encode(doc['limits']), indent=2).decode())}</pre>"
        f"<p>Spend budgets: {e(doc['budgets']['how'])}</p>"
        f"<p>State: {e(doc['state']['backend'])} ({e(doc['state']['scope'])}) — {e(doc['state']['note'])}</p>"
        f"<p>Response cache: {e(_cache_line(doc['cache']))}</p>"
    )
    examples = "".join(f"<h3>{e(name)}</h3><pre>{e(text)}</pre>" for name, text in doc["examples"].items())
    router = doc["router"]
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Router — help</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{{font:15px/1.5 system-ui,sans-serif;margin:2rem auto;max-width:70rem;padding:0 1rem;color:#1b1f24}}
table{{border-collapse:collapse;width:100%;margin:.5rem 0 1.5rem}}
th,td{{border-bottom:1px solid #d0d7de;padding:.3rem .6rem;text-align:left;vertical-align:top}}
th{{background:#f6f8fa}}code,pre{{font-family:ui-monospace,monospace}}
pre{{background:#f6f8fa;padding:.6rem;overflow:auto;white-space:pre-wrap}}
</style></head><body>
<h1>Router {e(router["version"])}</h1>
<p>OpenAI-compatible base URL: <code>{e(router["base_url"])}</code> ·
<a href="{e(router["openapi"])}">OpenAPI schema</a> · <a href="/dashboard">ops dashboard</a></p>
<h2>Endpoints</h2>{endpoints}<h2>Strategy keywords</h2>{strategies}<h2>Models</h2>{models}
<h2>Aliases</h2>{aliases}<h2>Authentication and limits</h2>{access}<h2>Examples</h2>{examples}
</body></html>"""


def _cache_line(cache: dict[str, Any]) -> str:
    if not cache["enabled"]:
        return f"off ({cache['how']})"
    return (
        f"on, {cache['scope']}, answers kept {cache['ttl_s']}s in {cache['store']}; "
        f"{cache['header']}; {cache['request_headers']}"
    )


def _base_url(request: Request[Any, Any, Any]) -> str:
    host = request.headers.get("x-forwarded-host") or request.headers.get("host") or "localhost"
    scheme = request.headers.get("x-forwarded-proto") or request.url.scheme
    return f"{scheme}://{host}"


def help_handlers(services: Services) -> list[HTTPRouteHandler]:
    @get(["/help", "/v1/help"], sync_to_thread=False)
    def help_page(request: Request[Any, Any, Any]) -> Response[bytes]:
        doc = help_document(services, _base_url(request))
        accept = request.headers.get("accept", "")
        if "text/html" in accept:
            return Response(content=help_html(doc).encode(), media_type=MediaType.HTML)
        return Response(content=_encode(doc), media_type=JSON)

    @get("/openapi.json", sync_to_thread=False)
    def openapi() -> Response[bytes]:
        return Response(content=_encode(openapi_document(__version__)), media_type=JSON)

    return [help_page, openapi]
