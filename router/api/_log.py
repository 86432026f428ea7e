"""The request-log line every model route writes: ids, names, numbers and outcomes only, never
prompts, answers, vectors or keys. The metrics are counted from the same fields."""

from __future__ import annotations

from typing import Any

from router.access import ApiKey
from router.responses.usage import responses_usage
from router.routing import Outcome
from router.types import Usage

# Tokens of one answer: (input, output, cached input, reasoning output).
Tokens = tuple[int, int, int, int]


def usage_tokens(usage: object) -> Tokens | None:
    """The tokens of a Chat-shaped usage (``prompt_tokens`` include cached, ``completion_tokens``
    include reasoning)."""
    if not isinstance(usage, Usage):
        return None
    cached = (
        usage.prompt_tokens_details.get("cached_tokens")
        if isinstance(usage.prompt_tokens_details, dict)
        else 0
    )
    details = usage.completion_tokens_details
    reasoning = details.get("reasoning_tokens") if isinstance(details, dict) else 0
    return usage.prompt_tokens, usage.completion_tokens, int(cached or 0), int(reasoning or 0)


def responses_tokens(usage: object) -> Tokens | None:
    """The tokens of a Responses-shaped usage (``input_tokens``, ``output_tokens`` and details)."""
    view = responses_usage(usage)
    if view is None:
        return None
    return view.input_tokens, view.output_tokens, view.cached, view.reasoning


def log_fields(
    route: str,
    request_id: str,
    model_asked: str | None,
    stream: bool,
    outcome: Outcome | None,
    status: int,
    elapsed_s: float,
    *,
    tokens: Tokens | None = None,
    attempts: tuple[str, ...] = (),
    key: ApiKey | None = None,
) -> dict[str, Any]:
    """``attempts`` is used when no model served (an error); with an outcome, its attempts are."""
    duration_ms = round(elapsed_s * 1000, 2)
    fields: dict[str, Any] = {
        "request_id": request_id,
        "route": route,
        "key": key.name if key is not None else None,
        "model_asked": model_asked,
        "stream": stream,
        "status": status,
        "duration_ms": duration_ms,
    }
    if outcome is not None:
        fields["model"] = outcome.model.id
        fields["provider"] = outcome.model.provider
        fields["strategy"] = outcome.strategy
        attempts = tuple(f"{a.model}:{a.outcome}" for a in outcome.attempts)
        fields["fallback_reason"] = outcome.fallback_reason
        if outcome.skipped:
            fields["skipped"] = outcome.skipped
        # Router time before the answer began, outside upstream calls (the x-router-overhead-ms header).
        fields["overhead_ms"] = round(outcome.overhead_ms, 3)
        if stream:
            fields["ttft_ms"] = round(outcome.answered_ms, 2)
            fields["upstream_ms"] = round(max(duration_ms - outcome.overhead_ms, 0.0), 2)
        else:
            fields["upstream_ms"] = round(outcome.upstream_ms, 2)
    fields["attempts"] = attempts
    if tokens is not None:
        fields["tokens_in"], fields["tokens_out"], fields["tokens_cached"], fields["tokens_reasoning"] = (
            tokens
        )
    return fields
