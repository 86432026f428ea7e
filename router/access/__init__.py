"""Access control: who may call the router (API keys), how much (rate limits), and from where (CORS)."""

from router.access.keys import ApiKey, KeyRing, build_keyring
from router.access.limits import Grant, Limiter, LimitRule

__all__ = ["ApiKey", "Grant", "KeyRing", "LimitRule", "Limiter", "build_keyring"]
