"""Per-request access decisions the model routes share: which key is calling, whether it may use the
models it names (403), whether its limits admit the request (429, with the limit headers), and
whether its spend budgets have room for it (429 ``budget_exceeded``)."""

from __future__ import annotations

from typing import Any, cast

from litestar.types import Scope

from router.access import ApiKey, Ask, BudgetHold, Budgets, Grant
from router.api.services import Services
from router.catalog.model import ANONYMOUS_KEY
from router.errors import PermissionDenied

KEY_SCOPE = "router.key"
# The names a request's output limit goes by: Chat (both), Completions, Responses.
OUTPUT_LIMITS = ("max_completion_tokens", "max_tokens", "max_output_tokens")


def key_of(scope: Scope) -> ApiKey | None:
    key: ApiKey | None = cast(dict[str, Any], scope).get(KEY_SCOPE)
    return key


def ledger_name(key: ApiKey | None) -> str:
    """The name a request's spend is recorded under (requests without a key: ``anonymous``)."""
    return key.name if key is not None else ANONYMOUS_KEY


def estimate_tokens(body: bytes) -> int:
    """Prompt tokens estimated from the body's size (about four bytes a token), corrected later."""
    return len(body) // 4 + 1


async def admit(services: Services, key: ApiKey | None, names: list[str], estimate: int) -> Grant:
    """Check the calling key's model rights, then charge its limits and the router's."""
    if key is not None and key.allowed is not None:
        catalog = services.catalog
        for i, name in enumerate(names):
            target = catalog.lookup(name)
            if not key.may_use(name, target.model.id if target else None):
                allowed = ", ".join(sorted(key.allowed))
                raise PermissionDenied(
                    f"The API key '{key.name}' may not use the model '{name}'. It may use: {allowed}.",
                    param="model" if i == 0 else f"models[{i - 1}]",
                    code="model_not_allowed",
                )
    limiter = services.limiter
    if key is None and limiter.open:
        return limiter.unlimited(estimate)
    return await limiter.admit(key.name if key else None, key.limits if key else None, estimate)


async def admit_spend(
    budgets: Budgets, key: ApiKey | None, names: list[str], raw: dict[str, Any], estimate: int, writes: bool
) -> BudgetHold | None:
    """Reserve the request's estimated cost on the budgets that apply to it (see
    router/access/budgets.py); ``None`` when none does."""
    ask = Ask(
        names=names,
        prompt_tokens=estimate,
        output_tokens=output_limit(raw),
        copies=copies(raw),
        writes=writes,
    )
    if key is None:
        return await budgets.admit(None, None, None, ask)
    return await budgets.admit(key.name, key.budget, key.downgrade_at, ask)


def output_limit(raw: dict[str, Any]) -> int | None:
    """The output limit the request set, whatever its API calls it."""
    for name in OUTPUT_LIMITS:
        value = raw.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def copies(raw: dict[str, Any]) -> int:
    """How many answers one request writes: ``n`` of them, for each prompt of a completions list."""
    n = raw.get("n")
    count = n if isinstance(n, int) and not isinstance(n, bool) and n > 1 else 1
    prompt = raw.get("prompt")
    if isinstance(prompt, list) and prompt and all(isinstance(p, str) for p in prompt):
        count *= len(prompt)
    return count
