"""Each model's minute series: what lands in which minute, how an hour rolls over, what counts as an
error, and how close the latency percentiles are."""

from __future__ import annotations

import time

import pytest

from router.clock import FakeClock
from router.telemetry.record import RequestRecord
from router.telemetry.series import MINUTES, ModelSeries, Series

# A clock at the start of a minute, so that a test knows which minute each request falls in.
START = 1_760_000_040.0


def served(
    model: str, model_ms: float | None = 100.0, *, attempts: tuple[str, ...] = (), status: int = 200
) -> RequestRecord:
    return RequestRecord(
        request_id="req",
        route="chat",
        key=None,
        model_asked=model,
        stream=False,
        status=status,
        duration_ms=(model_ms or 0.0) + 1.0,
        attempts=attempts or (f"{model}:ok",),
        model=model,
        provider="openai",
        model_ms=model_ms,
    )


def refused(*attempts: str, status: int = 502) -> RequestRecord:
    return RequestRecord(
        request_id="req",
        route="chat",
        key=None,
        model_asked="primary",
        stream=False,
        status=status,
        duration_ms=5.0,
        attempts=attempts,
        error="upstream_error",
    )


def only(series: Series, model: str, minutes: int = MINUTES) -> ModelSeries:
    (view,) = series.view([model], minutes).models
    return view


def test_requests_land_in_their_minute_oldest_first_and_the_last_minute_is_now() -> None:
    clock = FakeClock(START)
    series = Series(clock)
    series.record(served("a"))
    clock.advance(60)
    series.record(served("a"))
    series.record(served("a"))
    view = series.view(["a"])
    assert view.minutes == MINUTES and view.bucket_s == 60
    assert view.start == START + 60 - (MINUTES - 1) * 60  # the current minute is the last
    a = view.models[0]
    assert len(a.requests) == MINUTES
    assert a.requests[-2:] == [1, 2] and sum(a.requests) == 3
    assert a.attempts[-2:] == [1, 2] and a.errors == [0] * MINUTES
    assert a.totals.requests == 3 and a.totals.attempts == 3


def test_a_model_without_traffic_is_all_zeros_and_no_latency() -> None:
    series = Series(FakeClock(START))
    series.record(served("a"))
    idle = only(series, "b")
    assert idle.id == "b" and idle.requests == [0] * MINUTES and idle.attempts == [0] * MINUTES
    assert idle.latency_p50_ms == [None] * MINUTES and idle.totals.latency_p95_ms is None


def test_after_an_hour_a_minute_is_forgotten_and_its_slot_reused() -> None:
    clock = FakeClock(START)
    series = Series(clock)
    series.record(served("a", 100.0))
    clock.advance(59 * 60)  # the first minute is now the window's oldest
    assert only(series, "a").requests[0] == 1
    clock.advance(60)  # and now it has left the window, though its slot was not written again
    assert only(series, "a").totals.requests == 0
    series.record(served("a", 400.0))  # the same slot, an hour later: it starts afresh
    a = only(series, "a")
    assert a.requests[-1] == 1 and a.totals.requests == 1
    assert a.latency_p50_ms[-1] == pytest.approx(400.0, rel=0.05)


def test_a_long_idle_process_shows_nothing_from_hours_ago() -> None:
    clock = FakeClock(START)
    series = Series(clock)
    for _ in range(5):
        series.record(served("a"))
    clock.advance(3 * 3600 + 17 * 60)
    assert only(series, "a").totals.requests == 0


def test_minutes_asks_for_the_latest_only() -> None:
    clock = FakeClock(START)
    series = Series(clock)
    series.record(served("a"))
    clock.advance(120)
    series.record(served("a"))
    recent = only(series, "a", minutes=2)
    assert recent.requests == [0, 1] and recent.totals.requests == 1
    assert series.view(["a"], 2).start == START + 60
    assert only(series, "a", minutes=3).requests == [1, 0, 1]


def test_failed_attempts_count_as_errors_of_the_model_called_and_skips_count_not_at_all() -> None:
    series = Series(FakeClock(START))
    # primary failed twice, then backup answered.
    fell_back = ("primary:server_error", "primary:upstream_timeout", "backup:ok")
    series.record(served("backup", attempts=fell_back))
    # Everything failed: no answer, but both models were called.
    series.record(refused("primary:server_error", "backup:upstream_unreachable"))
    # Passed over without a call: no attempt, no error.
    series.record(refused("primary:breaker_open", "backup:rate_limited", "keyless:provider_not_configured"))
    primary, backup, keyless = series.view(["primary", "backup", "keyless"]).models
    assert (primary.totals.attempts, primary.totals.errors, primary.totals.requests) == (3, 3, 0)
    assert (backup.totals.attempts, backup.totals.errors, backup.totals.requests) == (2, 1, 1)
    assert (keyless.totals.attempts, keyless.totals.errors) == (0, 0)


def test_a_stream_broken_after_its_commit_point_is_an_error_without_a_latency() -> None:
    series = Series(FakeClock(START))
    series.record(served("a", 50.0, status=502))  # its attempt said ok when the stream began
    a = only(series, "a")
    assert (a.totals.requests, a.totals.attempts, a.totals.errors) == (1, 1, 1)
    assert a.totals.latency_p50_ms is None


def test_a_model_id_with_a_colon_keeps_it() -> None:
    series = Series(FakeClock(START))
    series.record(refused("llama3:8b:server_error"))
    assert only(series, "llama3:8b").totals.errors == 1


def test_latency_percentiles_are_within_the_bucket_resolution() -> None:
    clock = FakeClock(START)
    series = Series(clock)
    for ms in range(1, 1001):  # 1..1000 ms: p50 is 500, p95 is 950
        series.record(served("a", float(ms)))
    a = only(series, "a")
    assert a.latency_p50_ms[-1] == pytest.approx(500.0, rel=0.05)
    assert a.latency_p95_ms[-1] == pytest.approx(950.0, rel=0.05)
    # The window's percentiles merge the minutes.
    clock.advance(60)
    for _ in range(1000):
        series.record(served("a", 10_000.0))
    a = only(series, "a")
    assert a.latency_p50_ms[-1] == a.latency_p95_ms[-1] == pytest.approx(10_000.0, rel=0.05)
    assert a.totals.latency_p50_ms == pytest.approx(1000.0, rel=0.05)  # the 1000th of 2000
    assert a.totals.latency_p95_ms == pytest.approx(10_000.0, rel=0.05)


def test_one_answer_is_its_own_percentiles_and_tiny_or_zero_times_are_kept() -> None:
    series = Series(FakeClock(START))
    series.record(served("a", 0.0))
    series.record(served("b", 0.3))
    series.record(served("c", 42_000.0))
    a, b, c = series.view(["a", "b", "c"]).models
    assert a.latency_p50_ms[-1] is not None and a.latency_p50_ms[-1] < 0.011
    assert b.latency_p50_ms[-1] == pytest.approx(0.3, rel=0.05)
    assert c.latency_p50_ms[-1] == c.latency_p95_ms[-1] == pytest.approx(42_000.0, rel=0.05)


def test_an_answer_without_a_model_time_counts_without_a_latency() -> None:
    series = Series(FakeClock(START))
    series.record(served("a", None))
    a = only(series, "a")
    assert a.totals.requests == 1 and a.latency_p50_ms[-1] is None


def test_a_wall_clock_stepping_back_shows_no_minute_from_the_future() -> None:
    clock = FakeClock(START)
    series = Series(clock)
    clock.advance(600)
    series.record(served("a"))
    clock.advance(-600)  # NTP steps the wall clock back ten minutes
    assert only(series, "a").totals.requests == 0
    series.record(served("a"))  # the slot of that minute is taken again, afresh
    assert only(series, "a").requests[-1] == 1


def test_recording_costs_a_few_microseconds() -> None:
    series = Series(FakeClock(START))
    record = served("backup", 120.0, attempts=("primary:server_error", "backup:ok"))
    for _ in range(1000):
        series.record(record)
    rounds = 20_000
    started = time.perf_counter()
    for _ in range(rounds):
        series.record(record)
    per_request_us = (time.perf_counter() - started) / rounds * 1e6
    assert per_request_us < 10, f"{per_request_us:.2f} µs a request"
