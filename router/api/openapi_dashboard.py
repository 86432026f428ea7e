"""The answer schemas of the ops routes that feed the dashboard's panels beyond ``/health`` and
``/model-health``: each model's last hour (``/model-health/series``) and the spend against budgets
(``/model-health/spend``)."""

from __future__ import annotations

from router.api.openapi_answers import NUMBER, array
from router.api.openapi_requests import STRING, Schema, const, integer, nullable, obj

_COUNTS: Schema = array(integer(0))
_LATENCIES: Schema = array(nullable(NUMBER))

MODEL_SERIES: Schema = obj(
    ["scope", "workers", "note", "latency", "bucket_s", "minutes", "start", "since", "models"],
    {
        "scope": const("process"),
        "workers": integer(1),
        "note": STRING,
        "latency": STRING,
        "bucket_s": integer(1),
        "minutes": integer(1, 60),
        "start": NUMBER,
        "since": NUMBER,
        "models": array(
            obj(
                ["id", "requests", "attempts", "errors", "latency_p50_ms", "latency_p95_ms", "totals"],
                {
                    "id": STRING,
                    "requests": _COUNTS,
                    "attempts": _COUNTS,
                    "errors": _COUNTS,
                    "latency_p50_ms": _LATENCIES,
                    "latency_p95_ms": _LATENCIES,
                    "totals": obj(
                        ["requests", "attempts", "errors", "latency_p50_ms", "latency_p95_ms"],
                        {
                            "requests": integer(0),
                            "attempts": integer(0),
                            "errors": integer(0),
                            "latency_p50_ms": nullable(NUMBER),
                            "latency_p95_ms": nullable(NUMBER),
                        },
                    ),
                },
            )
        ),
    },
    description="Each model's minutes, oldest first (the last is the current minute, still filling): "
    "answers it gave, upstream attempts made to it and how many failed, and its own latency "
    "p50/p95 over its complete answers. Kept in the answering process's memory.",
)

_ROW_FIELDS = ["name", "today", "month", "requests_today", "requests_month", "budget_daily", "budget_monthly"]
_ROW: dict[str, Schema] = {
    "name": STRING,
    "today": NUMBER,
    "month": NUMBER,
    "requests_today": integer(0),
    "requests_month": integer(0),
    "budget_daily": nullable(NUMBER),
    "budget_monthly": nullable(NUMBER),
}
SPEND_OVERVIEW: Schema = obj(
    ["object", "day", "month", "scope", "total", "keys", "models"],
    {
        "object": const("spend_overview"),
        "day": STRING,
        "month": STRING,
        "scope": {"type": "string", "enum": ["shared", "per_worker"]},
        "total": obj(_ROW_FIELDS, _ROW),
        "keys": array(
            obj(
                [*_ROW_FIELDS, "downgrade_at_pct", "declared"],
                {**_ROW, "downgrade_at_pct": nullable(NUMBER), "declared": {"type": "boolean"}},
            )
        ),
        "models": array(obj(_ROW_FIELDS, _ROW)),
    },
    description="USD spent today and this month (UTC) by the router as a whole, per key and per model, "
    "with the budgets that bound each (null: none) and the answers counted.",
)

DASHBOARD_SCHEMAS: dict[str, Schema] = {"ModelSeries": MODEL_SERIES, "SpendOverview": SPEND_OVERVIEW}
