"""Strategy ranking: pure functions from (catalog, request needs, strategy) to an ordered candidate list.

Latency uses the catalog's speed priors until live measurements exist; cost uses the catalog's prices
for the tier a candidate would be sent at.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import msgspec

from router.catalog import Catalog, Model, Target
from router.catalog.schema import Speed
from router.types import ChatRequest

FLEX_SUFFIX = "-flex"
# A model can answer a chat request on either API (see the catalog's ``endpoints``).
CHAT_ENDPOINTS = frozenset({"chat", "responses"})


class Needs(msgspec.Struct, frozen=True, kw_only=True):
    """What a request requires of the model that serves it: ``prompt_tokens`` is an estimate for
    ranking, ``output_limit`` the output limit the client set."""

    prompt_tokens: int
    output_tokens: int
    capabilities: frozenset[str]
    output_limit: int | None = None


# Why a model was left out of a ranking: the request is too large for it ("size"), it lacks a
# capability or the API ("capability"), or the router cannot call it now ("unusable").
ExclusionKind = Literal["size", "capability", "unusable"]


class Excluded(msgspec.Struct, frozen=True):
    model: str
    reason: str
    kind: ExclusionKind = "capability"


class Ranked(msgspec.Struct, frozen=True, kw_only=True):
    candidates: list[Target]
    excluded: list[Excluded]


# No tokenizer packs ordinary text tighter than this many characters a token: a prompt of N
# characters surely holds more than N / this tokens.
MAX_CHARS_PER_TOKEN = 10


def prompt_chars(request: ChatRequest) -> tuple[int, int]:
    """The prompt's text characters, and the characters counted for images and tools."""
    text = extra = 0
    for message in request.messages:
        content = message.content
        if isinstance(content, str):
            text += len(content)
        elif content:
            for part in content:
                if isinstance(part.text, str):
                    text += len(part.text)
                elif part.image_url:
                    extra += 3000  # a typical image costs on the order of 765 tokens
        extra += 16
    if request.tools:
        extra += 200 * len(request.tools)
    return text, extra


def prompt_floor(request: ChatRequest) -> int:
    """Tokens the prompt surely holds: its text alone, at the densest packing a tokenizer achieves."""
    text = 0
    for message in request.messages:
        content = message.content
        if isinstance(content, str):
            text += len(content)
        elif content:
            text += sum(len(part.text) for part in content if isinstance(part.text, str))
    return text // MAX_CHARS_PER_TOKEN


def needs_of(request: ChatRequest, default_output: int) -> Needs:
    caps: set[str] = set()
    if request.tools:
        caps.add("tools")
    if request.stream:
        caps.add("streaming")
    fmt = request.response_format
    if fmt is not None and fmt.type == "json_schema":
        caps.add("json_schema")
    for message in request.messages:
        if isinstance(message.content, list) and any(p.type == "image_url" for p in message.content):
            caps.add("vision")
    text, extra = prompt_chars(request)
    return Needs(
        prompt_tokens=(text + extra) // 4 + 1,
        output_tokens=request.output_limit or default_output,
        capabilities=frozenset(caps),
        output_limit=request.output_limit,
    )


def expected_cost(model: Model, needs: Needs, flex: bool) -> float:
    price = model.flex_price if flex and model.flex_price else model.price
    return (needs.prompt_tokens * price.input + needs.output_tokens * price.output) / 1_000_000


def expected_latency_ms(model: Model, needs: Needs, speed: Speed | None = None) -> float:
    speed = speed or model.speed
    return speed.ttft_ms + needs.output_tokens / speed.tokens_per_s * 1000.0


def rank(
    catalog: Catalog,
    strategy: str,
    needs: Needs,
    usable: Callable[[Model], str | None],
    speed: Callable[[Model], Speed] | None = None,
) -> Ranked:
    """Order the models that can serve ``needs`` by ``strategy``.

    ``usable`` returns ``None`` for a model the router can call now, or the reason it cannot;
    ``speed`` gives a model's measured speed (its catalog priors when omitted).
    """
    flex = strategy.endswith(FLEX_SUFFIX)
    base = strategy.removesuffix(FLEX_SUFFIX)
    excluded: list[Excluded] = []
    pool: list[Model] = []
    for model in catalog.models.values():
        unfit = _unfit(model, needs)
        if unfit is not None:
            excluded.append(Excluded(model.id, unfit[1], unfit[0]))
            continue
        reason = usable(model)
        if reason:
            excluded.append(Excluded(model.id, reason, "unusable"))
        else:
            pool.append(model)

    def tier(model: Model) -> str | None:
        return "flex" if flex and model.flex_price is not None else None

    # Plain strategies (``fast`` included) send every model at the standard tier.
    key = _sort_key(base, pool, needs, catalog, flex, speed or (lambda m: m.speed))
    ordered = sorted(pool, key=key)
    return Ranked(candidates=[Target(m, tier(m)) for m in ordered], excluded=excluded)


def _unfit(model: Model, needs: Needs) -> tuple[ExclusionKind, str] | None:
    if not model.endpoints & CHAT_ENDPOINTS:
        reason = "an embeddings model cannot chat" if "embeddings" in model.endpoints else "has no chat API"
        return "capability", reason
    missing = needs.capabilities - model.capabilities
    if missing:
        return "capability", f"lacks {', '.join(sorted(missing))}"
    size = too_large_for(model, needs.output_limit, needs.prompt_tokens, needs.output_tokens)
    return None if size is None else ("size", size)


def too_large_for(
    model: Model, output_limit: int | None, prompt_tokens: int, output_tokens: int
) -> str | None:
    """Why ``model`` cannot take a prompt of ``prompt_tokens`` and ``output_tokens`` of answer (or
    the ``output_limit`` the client set), if it cannot."""
    if output_limit is not None and output_limit > model.max_output:
        return f"writes at most {model.max_output} tokens, fewer than the {output_limit} asked for"
    if prompt_tokens + output_tokens > model.context_window:
        return (
            f"context window {model.context_window} is smaller than the estimated "
            f"{prompt_tokens} prompt + {output_tokens} output tokens"
        )
    return None


def _sort_key(
    base: str,
    pool: list[Model],
    needs: Needs,
    catalog: Catalog,
    flex: bool,
    speed: Callable[[Model], Speed],
) -> Callable[[Model], tuple[float, ...]]:
    def cost(m: Model) -> float:
        return expected_cost(m, needs, flex)

    def latency(m: Model) -> float:
        return expected_latency_ms(m, needs, speed(m))

    if base in ("fast", "speed"):
        return lambda m: (latency(m), cost(m))
    if base == "cost":
        return lambda m: (cost(m), -m.quality)
    if base == "quality":
        return lambda m: (-m.quality, cost(m))
    weights = catalog.routing.balanced
    costs = [cost(m) for m in pool] or [0.0]
    latencies = [latency(m) for m in pool] or [0.0]
    qualities = [float(m.quality) for m in pool] or [0.0]

    def norm(value: float, values: list[float]) -> float:
        lo, hi = min(values), max(values)
        return 0.0 if hi == lo else (value - lo) / (hi - lo)

    def balanced(m: Model) -> tuple[float, ...]:
        score = (
            weights.quality * norm(float(m.quality), qualities)
            - weights.cost * norm(cost(m), costs)
            - weights.latency * norm(latency(m), latencies)
        )
        return (-score, cost(m))

    return balanced
