"""Explain a routing decision without calling any upstream: ranked candidates and excluded models."""

from __future__ import annotations

import msgspec

from router.catalog import Model
from router.routing.breaker import State
from router.routing.engine import Engine
from router.routing.strategies import Excluded, expected_cost, expected_latency_ms, needs_of, rank
from router.types import ChatRequest


class CandidateView(msgspec.Struct, kw_only=True):
    rank: int
    model: str
    provider: str
    service_tier: str | None
    expected_cost_usd: float
    expected_latency_ms: float
    quality: int
    breaker: State


class Explanation(msgspec.Struct, kw_only=True):
    model_asked: str
    strategy: str | None
    estimated_prompt_tokens: int
    expected_output_tokens: int
    candidates: list[CandidateView]
    excluded: list[Excluded]


def explain(engine: Engine, request: ChatRequest) -> Explanation:
    """The plan ``engine`` would follow for ``request``, in order, with its estimates."""
    catalog = engine.catalog
    needs = needs_of(request, catalog.routing.expected_output_tokens)
    plan = engine.plan(request)
    excluded: list[Excluded] = []
    if plan.strategy is not None:
        excluded = rank(catalog, plan.strategy, needs, engine.unusable_reason, engine.stats.speed).excluded

    def view(i: int, model: Model, tier: str | None) -> CandidateView:
        return CandidateView(
            rank=i + 1,
            model=model.id,
            provider=model.provider,
            service_tier=tier,
            expected_cost_usd=round(expected_cost(model, needs, tier == "flex"), 8),
            expected_latency_ms=round(expected_latency_ms(model, needs, engine.stats.speed(model)), 1),
            quality=model.quality,
            breaker=engine.breakers.get(model.id).view().state,
        )

    return Explanation(
        model_asked=request.model,
        strategy=plan.strategy,
        estimated_prompt_tokens=needs.prompt_tokens,
        expected_output_tokens=needs.output_tokens,
        candidates=[view(i, t.model, t.service_tier) for i, t in enumerate(plan.candidates)],
        excluded=excluded,
    )
