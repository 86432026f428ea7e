"""The OpenAPI parts of the spend reports: ``GET /v1/usage`` and ``GET /admin/spend`` (its query and
its JSON and CSV answers). Amounts are USD with at most eight decimals (the ledger's 1e-8 USD)."""

from __future__ import annotations

from router.api.openapi_requests import STRING, Schema, const, integer, nullable, obj

USD: Schema = {"type": "number", "minimum": 0, "description": "USD, at most eight decimals"}
DAY: Schema = {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"}
_PAIR = obj(["today", "month"], {"today": USD, "month": USD})
_LIMITS = obj(["daily", "monthly"], {"daily": nullable(USD), "monthly": nullable(USD)})

KEY_USAGE: Schema = obj(
    [
        "object",
        "key",
        "day",
        "month",
        "spend_usd",
        "requests",
        "budget_usd",
        "remaining_usd",
        "resets_at",
        "by_model",
    ],
    {
        "object": const("usage"),
        "key": STRING,
        "day": DAY,
        "month": {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}$"},
        "spend_usd": _PAIR,
        "requests": obj(["today", "month"], {"today": integer(0), "month": integer(0)}),
        "budget_usd": _LIMITS,
        "remaining_usd": _LIMITS,
        "resets_at": obj(["daily", "monthly"], {"daily": STRING, "monthly": STRING}),
        "by_model": {
            "type": "array",
            "items": obj(["model", "today", "month"], {"model": STRING, "today": USD, "month": USD}),
        },
    },
    description="The calling key's spend (requests without a key: 'anonymous'), its own budgets and "
    "what is left of them (null where it has none), by UTC day and month.",
)
SPEND_REPORT: Schema = obj(
    ["object", "group_by", "from", "to", "total_usd", "requests", "rows"],
    {
        "object": const("spend_report"),
        "group_by": {"type": "string", "enum": ["key", "model", "provider"]},
        "from": DAY,
        "to": DAY,
        "total_usd": USD,
        "requests": integer(0),
        "rows": {
            "type": "array",
            "items": obj(
                ["name", "spend_usd", "requests"],
                {"name": STRING, "spend_usd": USD, "requests": integer(0)},
            ),
        },
    },
    description="Spend over the UTC days from..to, by key, model or provider, the largest first; "
    "'requests' counts the answers that cost something.",
)
SPEND_CSV: Schema = {
    "type": "string",
    "description": "With 'Accept: text/csv': a header '<group_by>,spend_usd,requests', then one line per "
    "row, amounts with eight decimals.",
}
SPEND_QUERY: list[Schema] = [
    {
        "name": "group_by",
        "in": "query",
        "required": False,
        "schema": {"type": "string", "enum": ["key", "model", "provider"], "default": "key"},
    },
    {
        "name": "from",
        "in": "query",
        "required": False,
        "description": "The first UTC day (default: the first of this month).",
        "schema": DAY,
    },
    {
        "name": "to",
        "in": "query",
        "required": False,
        "description": "The last UTC day (default: today); at most 366 days after 'from'.",
        "schema": DAY,
    },
]
SPEND_SCHEMAS: dict[str, Schema] = {"KeyUsage": KEY_USAGE, "SpendReport": SPEND_REPORT}
