"""What an answer cost: its usage priced at the tier the provider reports having served it at."""

from __future__ import annotations

from router.catalog import Model
from router.types import Usage


def cost_usd(model: Model, usage: Usage, service_tier: str | None) -> float:
    """USD for this usage; cached prompt tokens at the cached price where the catalog has one."""
    price = model.flex_price if service_tier == "flex" and model.flex_price else model.price
    details = usage.prompt_tokens_details
    cached = details.get("cached_tokens", 0) if isinstance(details, dict) else 0
    cached = min(int(cached or 0), usage.prompt_tokens)
    cached_price = price.cached_input if price.cached_input is not None else price.input
    total = (
        (usage.prompt_tokens - cached) * price.input
        + cached * cached_price
        + usage.completion_tokens * price.output
    )
    return total / 1_000_000
