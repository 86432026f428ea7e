"""Error-mapping pieces every adapter shares: the router's refused key, keys kept out of messages, and
the note an upstream's early close leaves."""

from __future__ import annotations

import logging

from router.catalog import Provider
from router.errors import UpstreamStatusError

_log = logging.getLogger("router.providers")


def scrub(message: str, provider: Provider) -> str:
    """Remove the provider's key (whole, or the prefix providers echo) from an upstream message."""
    key = provider.api_key
    if key and len(key) >= 8:
        message = message.replace(key, "***").replace(key[:8], "***")
    return message[:2000]


def refused_credentials(provider: Provider, message: str) -> UpstreamStatusError:
    """An upstream 401/403 refuses the router's key, not the client's: a gateway failure (502)."""
    variable = provider.api_key_env or "no key"
    detail = scrub(message, provider)
    return UpstreamStatusError(
        502,
        f"provider '{provider.name}' refused the router's credentials ({variable}): {detail}",
        error_type="upstream_auth_error",
        code="upstream_auth_failed",
        provider=provider.name,
    )


def note_early_close(provider: str, model: str, request_id: str, missing: str) -> None:
    """An upstream closed its stream after the answer's finish signal but before its terminator
    (``missing``): the answer is whole, so it is served as complete; operators see this line."""
    fields = {
        "event": "upstream_early_close",
        "provider": provider,
        "model": model,
        "request_id": request_id,
        "missing": missing,
    }
    _log.warning(
        "provider %s closed a finished stream before %s", provider, missing, extra={"fields": fields}
    )
