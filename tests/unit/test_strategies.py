"""Strategy ranking on a fixed catalog: each keyword's choice, and why a model was left out."""

from __future__ import annotations

import pytest

from router.catalog import Catalog, Model, parse_catalog
from router.routing.strategies import Needs, needs_of, rank
from router.types import ChatRequest, JsonSchemaFormat, Message, ResponseFormat

CATALOG = """
providers:
  p: {kind: openai, base_url: "http://127.0.0.1:1/v1"}
  nokey: {kind: openai, base_url: "http://127.0.0.1:1/v1", api_key_env: NEVER_SET}
models:
  smart:   {provider: p, context_window: 400000, max_output: 100000, quality: 95,
            price: {input: 2.0, output: 12.0}, flex_price: {input: 1.0, output: 6.0},
            speed: {ttft_ms: 3000, tokens_per_s: 60}, capabilities: [streaming, tools, vision]}
  quick:   {provider: p, context_window: 128000, max_output: 16000, quality: 70,
            price: {input: 0.5, output: 2.0}, speed: {ttft_ms: 200, tokens_per_s: 250},
            capabilities: [streaming, tools]}
  cheap:   {provider: p, context_window: 8000, max_output: 4000, quality: 50,
            price: {input: 0.05, output: 0.2}, speed: {ttft_ms: 800, tokens_per_s: 100},
            capabilities: [streaming]}
  locked:  {provider: nokey, context_window: 400000, max_output: 1000, quality: 99,
            price: {input: 0.01, output: 0.01}, speed: {ttft_ms: 10, tokens_per_s: 1000},
            capabilities: [streaming, tools, vision]}
  embed:   {provider: p, context_window: 8000, max_output: 1, quality: 10,
            price: {input: 0.01, output: 0}, speed: {ttft_ms: 10, tokens_per_s: 1000},
            capabilities: [embeddings]}
"""


@pytest.fixture()
def catalog() -> Catalog:
    return parse_catalog(CATALOG, {})


def usable(catalog: Catalog):  # type: ignore[no-untyped-def]
    def check(model: Model) -> str | None:
        provider = catalog.provider_of(model)
        return None if provider.configured else f"set {provider.api_key_env}"

    return check


def needs(prompt: int = 100, output: int = 500, caps: frozenset[str] = frozenset()) -> Needs:
    return Needs(prompt_tokens=prompt, output_tokens=output, capabilities=caps)


def order(catalog: Catalog, strategy: str, n: Needs) -> list[str]:
    return [t.model.id for t in rank(catalog, strategy, n, usable(catalog)).candidates]


def test_fast_prefers_lowest_expected_latency(catalog: Catalog) -> None:
    assert order(catalog, "fast", needs()) == ["quick", "cheap", "smart"]
    assert order(catalog, "speed", needs()) == order(catalog, "fast", needs())


def test_cost_prefers_cheapest_then_moves_when_context_is_too_small(catalog: Catalog) -> None:
    assert order(catalog, "cost", needs())[0] == "cheap"
    # A prompt that no longer fits cheap's 8k context moves cost to the next cheapest model.
    assert order(catalog, "cost", needs(prompt=9000))[0] == "quick"


def test_quality_prefers_highest_score(catalog: Catalog) -> None:
    assert order(catalog, "quality", needs()) == ["smart", "quick", "cheap"]


def test_balanced_weighs_quality_cost_and_latency(catalog: Catalog) -> None:
    assert order(catalog, "balanced", needs())[0] == "quick"


def test_flex_variants_send_flex_where_available(catalog: Catalog) -> None:
    ranked = rank(catalog, "balanced-flex", needs(), usable(catalog)).candidates
    tiers = {t.model.id: t.service_tier for t in ranked}
    assert tiers == {"smart": "flex", "quick": None, "cheap": None}
    plain = rank(catalog, "fast", needs(), usable(catalog)).candidates
    assert all(t.service_tier is None for t in plain)


def test_capabilities_and_keys_exclude_models_with_reasons(catalog: Catalog) -> None:
    ranked = rank(catalog, "cost", needs(caps=frozenset({"tools", "vision"})), usable(catalog))
    assert [t.model.id for t in ranked.candidates] == ["smart"]
    reasons = {e.model: e.reason for e in ranked.excluded}
    assert reasons["locked"] == "set NEVER_SET"
    assert reasons["embed"] == "an embeddings model cannot chat"
    assert reasons["cheap"] == "lacks tools, vision"


def test_needs_of_reads_tools_images_and_output_limit() -> None:
    request = ChatRequest(
        model="fast",
        messages=[Message(role="user", content="hello " * 40)],
        tools=[],
        stream=True,
        max_completion_tokens=64,
        response_format=ResponseFormat(type="json_schema", json_schema=JsonSchemaFormat(name="x", schema={})),
    )
    got = needs_of(request, default_output=500)
    assert got.output_tokens == 64
    assert got.capabilities == frozenset({"streaming", "json_schema"})
    assert 60 <= got.prompt_tokens <= 70


def test_measured_speed_overrides_the_priors(catalog: Catalog) -> None:
    from router.catalog.schema import Speed

    measured = {"quick": Speed(ttft_ms=12000, tokens_per_s=250)}  # 14 s expected, behind smart's 11.3 s

    def speed(model: Model) -> Speed:
        return measured.get(model.id, model.speed)

    ranked = rank(catalog, "fast", needs(), usable(catalog), speed)
    assert [t.model.id for t in ranked.candidates] == ["cheap", "smart", "quick"]


def test_unknown_model_routes_by_the_catalog_default_strategy() -> None:
    from router.clock import FakeClock
    from router.errors import ModelNotFound
    from router.routing import Engine

    text = CATALOG.replace("providers:", "routing: {unknown_model_strategy: cost}\nproviders:", 1)
    with_default = Engine(parse_catalog(text, {}), {}, FakeClock())
    request = ChatRequest(model="whatever-model", messages=[Message(role="user", content="hi")])
    plan = with_default.plan(request)
    assert plan.strategy == "cost" and plan.candidates[0].model.id == "cheap"
    strict = Engine(parse_catalog(CATALOG, {}), {}, FakeClock())
    with pytest.raises(ModelNotFound):
        strict.plan(request)


def test_lists_in_error_messages_end_with_how_many_more_there_are() -> None:
    from router.errors import listed

    names = [f"m{i}" for i in range(9)]
    assert listed(names) == "m0, m1, m2, m3, m4, m5 and 3 more"
    assert listed(names[:6]) == "m0, m1, m2, m3, m4, m5"


def test_a_strategy_only_keyless_models_could_serve_names_every_key_to_set() -> None:
    from router.clock import FakeClock
    from router.errors import NoCandidate
    from router.routing import Engine

    keyed = 'p: {kind: openai, base_url: "http://127.0.0.1:1/v1", api_key_env: P_KEY}'
    text = CATALOG.replace('p: {kind: openai, base_url: "http://127.0.0.1:1/v1"}', keyed)
    engine = Engine(parse_catalog(text, {}), {}, FakeClock())
    request = ChatRequest(model="cost", messages=[Message(role="user", content="hi")])
    with pytest.raises(NoCandidate) as info:
        engine.plan(request)
    assert "NEVER_SET or P_KEY" in info.value.message and not info.value.client_should_retry
