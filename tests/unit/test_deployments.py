"""Deployments: the catalog's ``deployments`` list, pins, and how the quota board ranks them."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime

import msgspec
import pytest

from router.catalog import Model
from router.catalog.loader import CatalogError, parse_catalog
from router.clock import FakeClock
from router.routing.deployments import QuotaBoard, duration_s

CATALOG = """
providers:
  east: {kind: openai, base_url: https://east.invalid/v1}
  west: {kind: openai, base_url: https://west.invalid/v1}
  claude: {kind: anthropic, base_url: https://api.anthropic.com}
models:
  dual:
    context_window: 128000
    max_output: 16384
    price: {input: 1.0, output: 2.0}
    quality: 70
    speed: {ttft_ms: 300, tokens_per_s: 100}
    deployments:
%s
  solo:
    provider: east
    context_window: 8000
    max_output: 1000
    price: {input: 1.0, output: 2.0}
    quality: 50
    speed: {ttft_ms: 300, tokens_per_s: 100}
"""
TWO = """      - {provider: east, upstream: dual-east, rpm: 30}
      - {provider: west, upstream: dual-west, weight: 3, tpm: 1000, price: {input: 0.5, output: 1.0}}"""


def catalog(deployments: str = TWO) -> dict[str, Model]:
    return parse_catalog(CATALOG % deployments, {}).models


def test_each_deployment_is_a_view_of_the_model_with_its_own_provider_name_and_prices() -> None:
    model = catalog()["dual"]
    east, west = model.deployments
    assert (model.provider, model.upstream, model.deployment) == ("east", "dual-east", None)
    assert (east.key, east.provider, east.upstream, east.rpm, east.price.input) == (
        "east/dual",
        "east",
        "dual-east",
        30,
        1.0,
    )
    assert (west.key, west.weight, west.tpm, west.price.input) == ("west/dual", 3.0, 1000, 0.5)
    assert all(view.id == "dual" and not view.deployments for view in (east, west))


def test_provider_slash_model_pins_a_deployment_and_a_single_provider_model() -> None:
    parsed = parse_catalog(CATALOG % TWO, {})
    pinned = parsed.lookup("west/dual")
    assert pinned is not None and pinned.model.key == "west/dual" and pinned.model.provider == "west"
    solo = parsed.lookup("east/solo")
    assert solo is not None and solo.model is parsed.models["solo"]
    assert parsed.lookup("west/solo") is None


def test_a_one_entry_deployments_list_is_a_plain_model() -> None:
    model = catalog("      - {provider: west, upstream: only}")["dual"]
    assert (model.provider, model.upstream, model.deployment, model.deployments) == ("west", "only", None, ())


@pytest.mark.parametrize(
    ("deployments", "complaint"),
    [
        ("      - {provider: nowhere}", "unknown provider 'nowhere'"),
        ("      - {provider: east}\n      - {provider: east, upstream: b}", "listed twice"),
        ("      - {provider: east, weight: 0}", "weight"),
        ("      - {provider: east, rpm: -1}", "rpm"),
        ("      - {provider: east, colour: red}", "colour"),
    ],
)
def test_bad_deployments_are_refused_with_their_place(deployments: str, complaint: str) -> None:
    with pytest.raises(CatalogError) as info:
        catalog(deployments)
    assert complaint in str(info.value) and "dual" in str(info.value)


def test_a_model_needs_exactly_one_of_provider_or_deployments() -> None:
    both = CATALOG.replace("    deployments:\n%s", "    provider: east\n    deployments:\n%s") % TWO
    with pytest.raises(CatalogError, match="exactly one of provider"):
        parse_catalog(both, {})
    neither = CATALOG.replace("    deployments:\n%s\n", "")
    with pytest.raises(CatalogError, match="exactly one of provider"):
        parse_catalog(neither, {})


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("1s", 1.0), ("12ms", 0.012), ("6m0s", 360.0), ("2m59.56s", 179.56), ("1h2m", 3720.0), ("55", 55.0)],
)
def test_rate_limit_reset_durations(text: str, seconds: float) -> None:
    assert duration_s(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "soon", "5x", "1.2.3s"])
def test_unreadable_durations_are_none(text: str) -> None:
    assert duration_s(text) is None


def board() -> tuple[QuotaBoard, FakeClock, tuple[Model, ...]]:
    clock = FakeClock()
    return QuotaBoard(clock, random.Random(7)), clock, catalog()["dual"].deployments


def test_the_router_counts_requests_and_tokens_in_the_last_minute() -> None:
    quotas, clock, (east, west) = board()
    for _ in range(15):
        quotas.get(east).sent(10)
    assert quotas.get(east).headroom() == pytest.approx(0.5)
    quotas.get(west).sent(900)
    assert quotas.get(west).headroom() == pytest.approx(0.1)
    clock.advance(61)
    assert quotas.get(east).headroom() == 1.0 and quotas.get(west).headroom() == 1.0


def test_openai_headers_set_the_headroom_until_their_reset() -> None:
    quotas, clock, (east, _) = board()
    quota = quotas.get(east)
    quota.observe(
        {
            "x-ratelimit-limit-requests": "100",
            "x-ratelimit-remaining-requests": "25",
            "x-ratelimit-reset-requests": "30s",
            "x-ratelimit-limit-tokens": "10000",
            "x-ratelimit-remaining-tokens": "9000",
            "x-ratelimit-reset-tokens": "1s",
        }
    )
    assert quota.headroom() == pytest.approx(0.25)
    clock.advance(31)
    assert quota.headroom() == 1.0


def test_no_requests_left_means_no_traffic_until_the_reset() -> None:
    quotas, clock, (east, west) = board()
    quotas.get(east).observe({"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "20s"})
    assert quotas.get(east).headroom() == 0.0
    assert quotas.get(east).resets_in() == pytest.approx(20.0)
    for _ in range(20):
        assert quotas.order((east, west), lambda _: True, lambda _: 300.0) == [west, east]
    clock.advance(21)
    firsts = Counter(quotas.order((east, west), lambda _: True, lambda _: 300.0)[0].key for _ in range(400))
    assert set(firsts) == {"east/dual", "west/dual"}


def test_anthropic_headers_reset_at_an_instant() -> None:
    quotas, clock, (east, _) = board()
    quota = quotas.get(east)
    reset = datetime.fromtimestamp(clock.wall() + 10, tz=UTC).isoformat().replace("+00:00", "Z")
    quota.observe(
        {
            "anthropic-ratelimit-requests-limit": "50",
            "anthropic-ratelimit-requests-remaining": "0",
            "anthropic-ratelimit-requests-reset": reset,
        }
    )
    assert quota.headroom() == 0.0 and quota.resets_in() == pytest.approx(10.0, abs=0.01)


def test_azure_seconds_and_its_minus_one_limits() -> None:
    quotas, _, (east, _) = board()
    quota = quotas.get(east)
    quota.observe({"x-ratelimit-remaining-tokens": "0", "x-ratelimit-reset-tokens": "55"})
    assert quota.resets_in() == pytest.approx(55.0)
    fresh = quotas.get(catalog()["dual"].deployments[1])
    fresh.observe({"x-ratelimit-limit-tokens": "-1", "x-ratelimit-remaining-tokens": "0"})
    assert fresh.headroom() == 1.0  # Azure's -1 means it keeps no such count


def test_a_429_blocks_for_its_retry_after() -> None:
    quotas, clock, (east, _) = board()
    quotas.get(east).refused(4.0)
    assert quotas.get(east).headroom() == 0.0
    clock.advance(4.5)
    assert quotas.get(east).headroom() == 1.0


def test_weights_share_the_first_choice() -> None:
    quotas, _, (east, west) = board()
    firsts = Counter(quotas.order((east, west), lambda _: True, lambda _: 300.0)[0].key for _ in range(4000))
    assert firsts["west/dual"] / 4000 == pytest.approx(0.75, abs=0.04)  # weight 3 against 1


def test_a_much_slower_deployment_is_chosen_less_but_small_differences_are_noise() -> None:
    quotas, _, (east, west) = board()
    east, west = (msgspec.structs.replace(view, weight=1.0) for view in (east, west))
    near = Counter(
        quotas.order((east, west), lambda _: True, lambda v: 300.0 if v is east else 310.0)[0].key
        for _ in range(4000)
    )
    assert near["east/dual"] / 4000 == pytest.approx(0.5, abs=0.05)
    slow = Counter(
        quotas.order((east, west), lambda _: True, lambda v: 100.0 if v is east else 1450.0)[0].key
        for _ in range(4000)
    )
    assert slow["east/dual"] / 4000 == pytest.approx(0.9, abs=0.04)  # 150/1500 against 1


def test_unusable_deployments_are_left_out() -> None:
    quotas, _, (east, west) = board()
    assert quotas.order((east, west), lambda v: v is west, lambda _: 300.0) == [west]
