"""Metrics: the request path's tallies, once flushed, expose exactly what prometheus-client's own
``inc``/``observe`` would; label values are catalog and key names and fixed enums only."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from router.catalog import Catalog, parse_catalog
from router.telemetry.metrics import DURATION_BUCKETS, Metrics
from router.telemetry.record import RequestRecord
from tests.unit.test_catalog import MINIMAL

CATALOG = parse_catalog(MINIMAL, {})


def record_request(metrics: Metrics, fields: dict[str, Any]) -> None:
    """Count a request record with these fields (and neutral values for the rest)."""
    base: dict[str, Any] = {
        "request_id": "req_test",
        "route": "chat",
        "key": None,
        "model_asked": None,
        "stream": False,
        "status": 200,
        "duration_ms": 0.0,
        "attempts": (),
    }
    values = {**base, **fields}
    values["attempts"] = tuple(values["attempts"])
    values["skipped"] = tuple(values.get("skipped") or ())
    metrics.record_request(RequestRecord(**values))


class Sources:
    """What a flush samples, fixed for a test (``router.telemetry.metrics.Sources``)."""

    def __init__(self, catalog: Catalog = CATALOG, in_flight: int = 0, routable: int = 0) -> None:
        self._catalog, self._in_flight, self._routable = catalog, in_flight, routable

    def catalog(self) -> Catalog:
        return self._catalog

    def in_flight(self) -> int:
        return self._in_flight

    def routable(self) -> int:
        return self._routable

    def tick(self) -> None:
        return None


SOURCES = Sources()


def samples(
    metrics: Metrics, sources: Sources = SOURCES
) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    found = {}
    for family in text_string_to_metric_families(metrics.exposition(sources).decode()):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(metrics: Metrics, name: str, sources: Sources = SOURCES, **labels: str) -> float:
    return samples(metrics, sources).get((name, frozenset(labels.items())), 0.0)


def lines(text: bytes, prefix: str) -> list[str]:
    return [line for line in text.decode().splitlines() if line.startswith(prefix) and "_created" not in line]


def test_flushed_durations_match_observe_bucket_for_bucket() -> None:
    metrics = Metrics()
    registry = CollectorRegistry()
    reference = Histogram(
        "router_request_duration_seconds", "", ["route"], buckets=DURATION_BUCKETS, registry=registry
    )
    for ms in [0.1, 5.0, 5.1, 200.0, 1000.0, 59_900.0, 700_000.0, 300.0, 10.0]:
        record_request(metrics, {"route": "chat", "status": 200, "duration_ms": ms})
        reference.labels("chat").observe(ms / 1000.0)
    ours = lines(metrics.exposition(SOURCES), "router_request_duration_seconds")
    theirs = lines(generate_latest(registry), "router_request_duration_seconds")
    assert len(ours) == len(DURATION_BUCKETS) + 3  # every bucket, +Inf, count and sum
    assert ours == theirs


SERVED = {
    "route": "chat",
    "model_asked": "mini",
    "model": "gpt-5-mini",
    "provider": "openai",
    "strategy": None,
    "key": "team",
    "status": 200,
    "duration_ms": 120.0,
    "overhead_ms": 0.4,
    "upstream_ms": 119.0,
    "tokens_in": 10,
    "tokens_out": 5,
    "tokens_cached": 4,
    "tokens_reasoning": 2,
    "cost_usd": 0.001,
    "attempts": ("gpt-5-mini:ok",),
}


def test_a_served_request_counts_everywhere_with_catalog_labels() -> None:
    metrics = Metrics()
    for _ in range(3):
        record_request(metrics, SERVED)
    metrics.flush(SOURCES)
    record_request(metrics, SERVED)
    labels = {"route": "chat", "model_asked": "mini", "model": "gpt-5-mini", "provider": "openai"}
    assert value(metrics, "router_requests_total", **labels, strategy="", status="200", key="team") == 4
    assert value(metrics, "router_tokens_total", model="gpt-5-mini", kind="input") == 40
    assert value(metrics, "router_tokens_total", model="gpt-5-mini", kind="reasoning") == 8
    assert value(metrics, "router_cost_usd_total", model="gpt-5-mini", key="team") == 0.004
    assert value(metrics, "router_overhead_seconds_count", route="chat") == 4
    assert (
        value(metrics, "router_upstream_duration_seconds_count", provider="openai", model="gpt-5-mini") == 4
    )
    assert value(metrics, "router_attempts_total", model="gpt-5-mini", outcome="ok") == 4


def test_unknown_names_and_upstream_types_never_become_labels() -> None:
    metrics = Metrics()
    record_request(
        metrics,
        {
            "route": "chat",
            "model_asked": "made-up-model-1234",
            "status": 404,
            "attempts": ("not-in-catalog:ok",),
        },
    )
    record_request(
        metrics,
        {
            **SERVED,
            "attempts": ("gpt-5-mini:SomeVendorErrorType", "gpt-5-mini:upstream_timeout", "gpt-5-mini:ok"),
        },
    )
    found = samples(metrics)
    text = str(found)
    assert "made-up-model-1234" not in text and "not-in-catalog" not in text and "SomeVendor" not in text
    assert value(metrics, "router_attempts_total", model="gpt-5-mini", outcome="upstream_error") == 1
    assert value(metrics, "router_retries_total", model="gpt-5-mini") == 2
    assert value(metrics, "router_upstream_errors_total", provider="openai", kind="upstream_timeout") == 1
    other = {"route": "chat", "model_asked": "other", "model": "", "provider": "", "strategy": ""}
    assert value(metrics, "router_requests_total", **other, status="404", key="") == 1


def test_fallbacks_count_each_move_to_another_model_with_its_reason() -> None:
    metrics = Metrics()
    catalog = parse_catalog(
        MINIMAL.replace(
            "aliases:",
            "  gpt-5-nano:\n    provider: openai\n    context_window: 400000\n    max_output: 128000\n"
            "    price: {input: 0.05, output: 0.4}\n    quality: 60\n"
            "    speed: {ttft_ms: 500, tokens_per_s: 150}\n"
            "aliases:",
        ),
        {},
    )
    record_request(metrics, {**SERVED, "attempts": ("gpt-5-mini:breaker_open", "gpt-5-nano:ok")})
    record_request(metrics, {**SERVED, "attempts": ("gpt-5-mini:upstream_unreachable", "gpt-5-nano:ok")})
    sources = Sources(catalog)
    assert value(metrics, "router_fallbacks_total", sources, reason="breaker_open") == 1
    assert value(metrics, "router_fallbacks_total", sources, reason="upstream_unreachable") == 1
    # An open breaker is no upstream error.
    assert (
        value(metrics, "router_upstream_errors_total", sources, provider="openai", kind="breaker_open") == 0
    )


def test_breaker_state_gauges_start_closed_and_follow_transitions() -> None:
    metrics = Metrics()
    metrics.models(CATALOG)
    assert value(metrics, "router_breaker_state", model="gpt-5-mini") == 0
    metrics.transition("gpt-5-mini", "open")
    assert value(metrics, "router_breaker_state", model="gpt-5-mini") == 2
    assert value(metrics, "router_breaker_transitions_total", model="gpt-5-mini", to="open") == 1


def test_in_flight_and_routable_are_sampled_at_scrape() -> None:
    metrics = Metrics()
    sources = Sources(in_flight=7, routable=3)
    assert value(metrics, "router_in_flight_requests", sources) == 7
    assert value(metrics, "router_models_routable", sources) == 3
