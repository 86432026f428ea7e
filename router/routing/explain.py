"""Explain a routing decision without calling any upstream: ranked candidates and excluded models."""

from __future__ import annotations

import msgspec

from router.catalog import Model
from router.routing.breaker import State
from router.routing.engine import Engine
from router.routing.strategies import Excluded, expected_cost, expected_latency_ms, needs_of, rank
from router.types import ChatRequest


class DeploymentView(msgspec.Struct, kw_only=True):
    id: str  # ``provider/model``
    provider: str
    first_chance: float  # the share of requests it is tried first for, now (0 when out of quota)
    headroom: float
    resets_in_s: float
    breaker: State


class CandidateView(msgspec.Struct, kw_only=True, omit_defaults=True):
    rank: int
    model: str
    provider: str
    service_tier: str | None
    expected_cost_usd: float
    expected_latency_ms: float
    quality: int
    breaker: State
    # A model with several deployments: each, in the order the engine would rank them now.
    deployments: list[DeploymentView] = []


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
            breaker=engine.breakers.get(model.key).view().state,
            deployments=_deployments(engine, model),
        )

    return Explanation(
        model_asked=request.model,
        strategy=plan.strategy,
        estimated_prompt_tokens=needs.prompt_tokens,
        expected_output_tokens=needs.output_tokens,
        candidates=[view(i, t.model, t.service_tier) for i, t in enumerate(plan.candidates)],
        excluded=excluded,
    )


def _deployments(engine: Engine, model: Model) -> list[DeploymentView]:
    if not model.deployments:
        return []
    quotas, breakers = engine.quotas, engine.breakers
    ready, spent = quotas.scores(
        model.deployments,
        lambda view: engine.unusable_reason(view) is None,
        lambda view: engine.stats.speed(view).ttft_ms,
    )
    total = sum(score for score, _ in ready) or 1.0
    ranked = [(score / total, view) for score, view in sorted(ready, key=lambda pair: -pair[0])]
    ranked += [(0.0, view) for _, view in spent]
    return [
        DeploymentView(
            id=view.key,
            provider=view.provider,
            first_chance=round(chance, 3),
            headroom=round(quotas.get(view).headroom(), 3),
            resets_in_s=round(quotas.get(view).resets_in(), 3),
            breaker=breakers.get(view.key).view().state,
        )
        for chance, view in ranked
    ]
