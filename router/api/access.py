"""Per-request access decisions the model routes share: which key is calling, whether it may use the
models it names (403), and whether its limits admit the request (429, with the limit headers)."""

from __future__ import annotations

from typing import Any, cast

from litestar.types import Scope

from router.access import ApiKey, Grant
from router.api.services import Services
from router.errors import PermissionDenied

KEY_SCOPE = "router.key"


def key_of(scope: Scope) -> ApiKey | None:
    key: ApiKey | None = cast(dict[str, Any], scope).get(KEY_SCOPE)
    return key


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
