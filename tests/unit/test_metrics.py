"""Metrics: the request path's tallies, once flushed, expose exactly what prometheus-client's own
``inc``/``observe`` would; label values are catalog and key names only."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Histogram, generate_latest

from router.telemetry.metrics import DURATION_BUCKETS, Metrics


def lines(text: bytes, prefix: str) -> list[str]:
    return [line for line in text.decode().splitlines() if line.startswith(prefix)]


def test_flushed_durations_match_observe_bucket_for_bucket() -> None:
    metrics = Metrics()
    registry = CollectorRegistry()
    reference = Histogram(
        "router_request_duration_seconds", "", ["route"], buckets=DURATION_BUCKETS, registry=registry
    )
    for ms in [0.1, 5.0, 5.1, 200.0, 1000.0, 59_900.0, 700_000.0, 300.0, 10.0]:
        metrics.record_request({"route": "chat", "status": 200, "duration_ms": ms})
        reference.labels("chat").observe(ms / 1000.0)
    ours = lines(metrics.exposition(), "router_request_duration_seconds")
    theirs = lines(generate_latest(registry), "router_request_duration_seconds")

    def stable(found: list[str]) -> list[str]:
        return [line for line in found if "_created" not in line]

    assert len(stable(ours)) == len(DURATION_BUCKETS) + 3  # every bucket, +Inf, count and sum
    assert stable(ours) == stable(theirs)


def test_requests_are_counted_by_label_set_across_flushes() -> None:
    metrics = Metrics()
    ok = {"route": "chat", "model": "gpt-5-mini", "provider": "openai", "key": "team", "status": 200}
    for _ in range(3):
        metrics.record_request(ok)
    metrics.flush()
    metrics.record_request(ok)
    metrics.record_request({**ok, "status": 429, "model": None, "provider": None})
    metrics.record_request({"route": "not-a-route", "status": 200})  # ignored: not a fixed route
    text = metrics.exposition().decode()
    assert (
        'router_requests_total{key="team",model="gpt-5-mini",provider="openai",route="chat",status="200"} 4.0'
        in text
    )
    assert 'router_requests_total{key="team",model="",provider="",route="chat",status="429"} 1.0' in text
    assert "not-a-route" not in text


def test_in_flight_is_sampled_at_scrape() -> None:
    metrics = Metrics()
    metrics.in_flight_of = lambda: 7
    assert "router_in_flight_requests 7.0" in metrics.exposition().decode()
