"""What an answer costs: cached reads, cache writes (5-minute and 1-hour) and the rest at their own prices."""

from __future__ import annotations

import pytest

from router.catalog import parse_catalog
from router.routing.cost import cost_usd
from router.types import Usage

CATALOG = parse_catalog(
    """
providers:
  anthropic: {kind: anthropic, base_url: "https://api.anthropic.com"}
models:
  sonnet:
    provider: anthropic
    context_window: 200000
    max_output: 64000
    quality: 90
    speed: {ttft_ms: 1000, tokens_per_s: 70}
    price: {input: 3.0, output: 15.0, cached_input: 0.30, cache_write: 3.75, cache_write_1h: 6.0}
  plain:
    provider: anthropic
    context_window: 200000
    max_output: 64000
    quality: 90
    speed: {ttft_ms: 1000, tokens_per_s: 70}
    price: {input: 3.0, output: 15.0}
""",
    {},
)


def usage(prompt: int, completion: int, **details: object) -> Usage:
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=prompt + completion,
        prompt_tokens_details=details,
    )


def test_reads_and_writes_are_priced_at_their_own_rates() -> None:
    model = CATALOG.models["sonnet"]
    # 1,000 fresh, 8,000 read, 2,000 written (500 of them for an hour), 100 out.
    answer = usage(
        11_000,
        100,
        cached_tokens=8_000,
        cache_write_tokens=2_000,
        cache_creation_token_details={"ephemeral_5m_input_tokens": 1_500, "ephemeral_1h_input_tokens": 500},
    )
    expected = (1_000 * 3.0 + 8_000 * 0.30 + 1_500 * 3.75 + 500 * 6.0 + 100 * 15.0) / 1e6
    assert cost_usd(model, answer, None) == pytest.approx(expected)


def test_a_cache_hit_costs_less_than_the_same_prompt_written() -> None:
    model = CATALOG.models["sonnet"]
    written = cost_usd(model, usage(10_000, 10, cached_tokens=0, cache_write_tokens=9_000), None)
    read = cost_usd(model, usage(10_000, 10, cached_tokens=9_000, cache_write_tokens=0), None)
    uncached = cost_usd(model, usage(10_000, 10), None)
    assert read < uncached < written


def test_missing_cache_prices_fall_back_to_the_input_price() -> None:
    model = CATALOG.models["plain"]
    answer = usage(1_000, 0, cached_tokens=600, cache_write_tokens=300)
    assert cost_usd(model, answer, None) == pytest.approx(1_000 * 3.0 / 1e6)


def test_odd_or_oversized_details_never_price_more_tokens_than_the_prompt_holds() -> None:
    model = CATALOG.models["sonnet"]
    odd = usage(1_000, 0, cached_tokens="many", cache_write_tokens=-5)
    assert cost_usd(model, odd, None) == pytest.approx(1_000 * 3.0 / 1e6)
    oversized = usage(1_000, 0, cached_tokens=900, cache_write_tokens=900)
    assert cost_usd(model, oversized, None) == pytest.approx((900 * 0.30 + 100 * 3.75) / 1e6)
