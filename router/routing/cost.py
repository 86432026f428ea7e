"""What an answer cost: its usage priced at the tier the provider reports having served it at."""

from __future__ import annotations

from typing import Any

from router.catalog import Model
from router.types import Usage


def cost_usd(model: Model, usage: Usage, service_tier: str | None) -> float:
    """USD for this usage. Prompt tokens read from a prompt cache (``cached_tokens``) cost the cached
    price, tokens written to one (``cache_write_tokens``; Anthropic's one-hour entries apart, under
    ``cache_creation_token_details``) the write price, the rest the input price; a cache price the
    catalog leaves out is the input price."""
    price = model.flex_price if service_tier == "flex" and model.flex_price else model.price
    details = usage.prompt_tokens_details if isinstance(usage.prompt_tokens_details, dict) else {}
    prompt = usage.prompt_tokens
    read = min(_count(details, "cached_tokens"), prompt)
    written = min(_count(details, "cache_write_tokens"), prompt - read)
    ttl = details.get("cache_creation_token_details")
    written_1h = min(_count(ttl, "ephemeral_1h_input_tokens"), written) if isinstance(ttl, dict) else 0
    read_price = price.cached_input if price.cached_input is not None else price.input
    write_price = price.cache_write if price.cache_write is not None else price.input
    write_1h_price = price.cache_write_1h if price.cache_write_1h is not None else write_price
    total = (
        (prompt - read - written) * price.input
        + read * read_price
        + (written - written_1h) * write_price
        + written_1h * write_1h_price
        + usage.completion_tokens * price.output
    )
    return total / 1_000_000


def cache_writes(usage: Usage) -> int | None:
    """The prompt tokens written to a prompt cache, for the request record (``None``: none)."""
    details = usage.prompt_tokens_details if isinstance(usage.prompt_tokens_details, dict) else {}
    return _count(details, "cache_write_tokens") or None


def _count(details: dict[str, Any], name: str) -> int:
    """A token count from a usage detail: an upstream's missing or odd value counts as none."""
    value = details.get(name)
    return value if isinstance(value, int) and value > 0 else 0
