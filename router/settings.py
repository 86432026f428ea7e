"""Service settings: read once from the environment and command-line flags, then frozen."""

from __future__ import annotations

import os
from collections.abc import Mapping

import msgspec

DEFAULT_CATALOG = "catalog.yaml"
DEFAULT_MAX_BODY_BYTES = 32 * 1024 * 1024
DEFAULT_TIMEOUT_S = 30.0


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """Everything the app needs to know about its environment.

    ``environ`` is the environment the catalog's ``api_key_env`` and base-URL overrides are read from;
    tests pass their own mapping instead of touching ``os.environ``.
    """

    catalog_path: str = DEFAULT_CATALOG
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    # A request's whole body must arrive within this many seconds, its head (and, on a new or idle
    # connection, its first byte) within ``header_timeout_s``.
    body_timeout_s: float = DEFAULT_TIMEOUT_S
    header_timeout_s: float = DEFAULT_TIMEOUT_S
    log_level: str = "info"
    log_format: str = "json"
    # Stored Responses (previous_response_id) kept in memory: how many, and for how long.
    responses_max: int = 10_000
    responses_ttl_s: int = 86_400
    # > 0 turns the response cache on with this TTL, whatever the catalog's ``cache`` section says.
    cache_ttl_s: int = 0
    # Shared state for several workers or instances; none keeps state in this process.
    redis_url: str | None = None
    redis_prefix: str = "router:"
    # Where each worker writes its metric samples when several workers serve (multiprocess mode).
    metrics_dir: str | None = None
    environ: Mapping[str, str] = msgspec.field(default_factory=dict)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        env = dict(os.environ if environ is None else environ)
        values: dict[str, object] = {
            "catalog_path": env.get("ROUTER_CATALOG", DEFAULT_CATALOG),
            "host": env.get("ROUTER_HOST", "127.0.0.1"),
            "port": _int(env, "ROUTER_PORT", 8080),
            "workers": _int(env, "ROUTER_WORKERS", 1),
            "max_body_bytes": _int(env, "ROUTER_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES),
            "body_timeout_s": _seconds(env, "ROUTER_BODY_TIMEOUT_S", DEFAULT_TIMEOUT_S),
            "header_timeout_s": _seconds(env, "ROUTER_HEADER_TIMEOUT_S", DEFAULT_TIMEOUT_S),
            "log_level": env.get("ROUTER_LOG_LEVEL", "info").lower(),
            "log_format": env.get("ROUTER_LOG_FORMAT", "json").lower(),
            "responses_max": _int(env, "ROUTER_RESPONSES_MAX", 10_000),
            "responses_ttl_s": _int(env, "ROUTER_RESPONSES_TTL_S", 86_400),
            "cache_ttl_s": _cache_ttl(env),
            "redis_url": env.get("ROUTER_REDIS_URL") or None,
            "redis_prefix": env.get("ROUTER_REDIS_PREFIX") or "router:",
            "metrics_dir": env.get("PROMETHEUS_MULTIPROC_DIR") or None,
            "environ": env,
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        redis_url = values["redis_url"]
        if isinstance(redis_url, str) and not redis_url.startswith(("redis://", "rediss://", "unix://")):
            raise SettingsError(
                f"ROUTER_REDIS_URL={redact_url(redis_url)!r} is not a Redis URL "
                "(redis://host:6379/0, rediss:// or unix://)"
            )
        return cls(**values)  # type: ignore[arg-type]

    def to_env(self) -> dict[str, str]:
        """The environment that makes ``from_env`` rebuild these settings in a worker process."""
        env = dict(self.environ)
        env.update(
            {
                "ROUTER_CATALOG": self.catalog_path,
                "ROUTER_HOST": self.host,
                "ROUTER_PORT": str(self.port),
                "ROUTER_WORKERS": str(self.workers),
                "ROUTER_MAX_BODY_BYTES": str(self.max_body_bytes),
                "ROUTER_BODY_TIMEOUT_S": f"{self.body_timeout_s:g}",
                "ROUTER_HEADER_TIMEOUT_S": f"{self.header_timeout_s:g}",
                "ROUTER_LOG_LEVEL": self.log_level,
                "ROUTER_LOG_FORMAT": self.log_format,
                "ROUTER_RESPONSES_MAX": str(self.responses_max),
                "ROUTER_RESPONSES_TTL_S": str(self.responses_ttl_s),
                "ROUTER_CACHE_TTL_S": str(self.cache_ttl_s),
                "ROUTER_REDIS_URL": self.redis_url or "",
                "ROUTER_REDIS_PREFIX": self.redis_prefix,
            }
        )
        return env


class SettingsError(ValueError):
    """An environment variable holds a value the router cannot use."""


def redact_url(url: str) -> str:
    """A URL without its credentials, for messages and logs."""
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        rest = "***@" + rest.rsplit("@", 1)[1]
    return f"{scheme}{sep}{rest}"


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a whole number") from None


MAX_CACHE_TTL_S = 30 * 86_400


def _cache_ttl(env: Mapping[str, str]) -> int:
    value = _int(env, "ROUTER_CACHE_TTL_S", 0)
    if not 0 <= value <= MAX_CACHE_TTL_S:
        raise SettingsError(
            f"ROUTER_CACHE_TTL_S={value} is not a number of seconds between 0 (the catalog decides) and "
            f"{MAX_CACHE_TTL_S} (30 days)"
        )
    return value


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        value = 0.0
    if not 0 < value <= 3600:
        raise SettingsError(f"{name}={raw!r} is not a number of seconds between 0 and 3600")
    return value
