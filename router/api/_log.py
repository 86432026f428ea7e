"""The request-log line every model route writes: ids, names, numbers and outcomes only, never
prompts, answers, vectors or keys."""

from __future__ import annotations

from typing import Any

from router.access import ApiKey
from router.routing import Outcome


def log_fields(
    route: str,
    request_id: str,
    model_asked: str | None,
    stream: bool,
    outcome: Outcome | None,
    status: int,
    elapsed_s: float,
    *,
    tokens: tuple[int, int] | None = None,
    attempts: tuple[str, ...] = (),
    key: ApiKey | None = None,
) -> dict[str, Any]:
    """``tokens`` is (input, output); ``attempts`` is used when no model served (an error)."""
    fields: dict[str, Any] = {
        "request_id": request_id,
        "route": route,
        "key": key.name if key is not None else None,
        "model_asked": model_asked,
        "stream": stream,
        "status": status,
        "duration_ms": round(elapsed_s * 1000, 2),
    }
    if outcome is not None:
        fields["model"] = outcome.model.id
        fields["provider"] = outcome.model.provider
        fields["strategy"] = outcome.strategy
        attempts = tuple(f"{a.model}:{a.outcome}" for a in outcome.attempts)
    fields["attempts"] = attempts
    if tokens is not None:
        fields["tokens_in"], fields["tokens_out"] = tokens
    return fields
