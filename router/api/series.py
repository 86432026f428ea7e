"""``GET /model-health/series``: each model's last hour in this process, minute by minute (answers,
upstream attempts, failures, latency p50/p95), for the dashboard's charts.

Query: ``minutes`` (1 to 60, default 60) and ``model`` (a catalog model id, repeatable; default every
model of the catalog in force). Anything else is refused with a 400 naming it.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec
from litestar import Request, Response, get
from litestar.handlers import HTTPRouteHandler

from router.api.errors import JSON
from router.api.services import Services
from router.catalog import STRATEGIES, Catalog
from router.errors import InvalidRequest
from router.telemetry.series import MINUTES, RESOLUTION, ModelSeries

QUERY = ("minutes", "model")


class SeriesReport(msgspec.Struct, kw_only=True):
    scope: str  # always "process": the series live in this process's memory
    workers: int
    note: str
    latency: str  # what the latency is, and its resolution
    bucket_s: int
    minutes: int
    start: float  # wall time (epoch seconds) at which the first minute begins
    since: float  # when this process began counting
    models: list[ModelSeries]


_encode = msgspec.json.Encoder().encode


def series_handlers(services: Services) -> list[HTTPRouteHandler]:
    @get(["/model-health/series", "/v1/model-health/series"], sync_to_thread=False)
    def model_series(request: Request[Any, Any, Any]) -> Response[bytes]:
        query = request.query_params
        unknown = sorted(set(query) - set(QUERY))
        if unknown:
            raise InvalidRequest(
                f"Unknown query parameter '{unknown[0]}'; this route takes: {', '.join(QUERY)}.",
                param=unknown[0],
                code="unknown_parameter",
            )
        minutes = _minutes(query.getall("minutes", []))
        catalog = services.catalog
        models = _models(catalog, query.getall("model", []))
        view = services.series.view(models, minutes)
        workers = services.settings.workers
        report = SeriesReport(
            scope="process",
            workers=workers,
            note=_note(workers),
            latency=RESOLUTION,
            bucket_s=view.bucket_s,
            minutes=view.minutes,
            start=view.start,
            since=view.since,
            models=view.models,
        )
        return Response(content=_encode(report), media_type=JSON)

    return [model_series]


def _minutes(values: list[str]) -> int:
    if not values:
        return MINUTES
    wrong = InvalidRequest(
        f"'minutes' must be one whole number from 1 to {MINUTES}; got "
        + ", ".join(repr(v if len(v) <= 20 else v[:20] + "…") for v in values)
        + ".",
        param="minutes",
        code="invalid_value",
    )
    # ASCII digits only: str.isdigit() also takes "²", which int() refuses.
    if len(values) > 1 or not re.fullmatch(r"[0-9]{1,3}", values[0]):
        raise wrong
    minutes = int(values[0])
    if not 1 <= minutes <= MINUTES:
        raise wrong
    return minutes


def _models(catalog: Catalog, names: list[str]) -> list[str]:
    if not names:
        return list(catalog.models)
    for name in names:
        if name in catalog.models:
            continue
        alias = catalog.aliases.get(name)
        if alias is not None:
            hint = f"'{name}' is an alias of '{alias.model}': ask for model={alias.model}."
        elif name in STRATEGIES:
            hint = f"'{name}' is a strategy, which picks a model per request."
        else:
            raise catalog.not_found(name)
        raise InvalidRequest(
            f"Series are kept per catalog model; {hint}", param="model", code="invalid_value"
        )
    return list(dict.fromkeys(names))  # each once, in the order asked


def _note(workers: int) -> str:
    if workers > 1:
        return (
            f"Kept in each worker's memory: this answer is one of {workers} workers' traffic, "
            "not the whole router's (/metrics sums every worker)."
        )
    return "Kept in this process's memory; a restart starts them again."
