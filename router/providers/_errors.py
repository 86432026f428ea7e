"""Error-mapping pieces every adapter shares: the router's refused key, and keys kept out of messages."""

from __future__ import annotations

from router.catalog import Provider
from router.errors import UpstreamStatusError


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
