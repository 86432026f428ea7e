"""Rate limits: requests (a token bucket: sustained rate plus burst) and tokens per minute (charged
with the estimated prompt up front, corrected with the actual usage), per key, over the whole router
and per model; and the ``x-ratelimit-*`` headers that report them on every answer.

Every limit that applies to a request is checked and charged in one step of the store (one Redis
round trip when the store is shared), all or nothing.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import msgspec

from router.catalog.schema import LimitSpec
from router.errors import RateLimited
from router.store.buckets import Bucket, LimitStore


class LimitRule(msgspec.Struct, frozen=True, kw_only=True):
    requests_per_minute: int | None = None
    burst: int = 1
    tokens_per_minute: int | None = None

    @property
    def empty(self) -> bool:
        return self.requests_per_minute is None and self.tokens_per_minute is None


def rule_of(
    defaults: LimitSpec, rpm: int | None = None, burst: int | None = None, tpm: int | None = None
) -> LimitRule:
    """A key's own values where it has them, the catalog's defaults for the rest."""
    rpm = rpm if rpm is not None else defaults.requests_per_minute
    burst = burst if burst is not None else defaults.burst
    if burst is None:
        burst = max(1, math.ceil(rpm / 10)) if rpm else 1
    tpm = tpm if tpm is not None else defaults.tokens_per_minute
    return LimitRule(requests_per_minute=rpm, burst=burst, tokens_per_minute=tpm)


class _Limit(msgspec.Struct, frozen=True):
    """One bucket of a rule, described for messages and headers."""

    scope: str  # "key 'team-a'", "the router", "model 'gpt-5'"
    kind: str  # "requests" or "tokens"
    limit: int  # per minute


class Grant:
    """An admitted request: the headers that report its limits, and what to correct afterwards."""

    __slots__ = ("estimate", "headers", "token_buckets")

    def __init__(self, headers: dict[str, str], token_buckets: list[Bucket], estimate: int) -> None:
        self.headers = headers
        self.token_buckets = token_buckets
        self.estimate = estimate


OPEN = Grant({}, [], 0)


class Limiter:
    """Admission for a request; ``prefix`` keeps the names of separate deployments apart in Redis."""

    def __init__(
        self,
        store: LimitStore,
        global_rule: LimitRule,
        model_rules: dict[str, LimitRule],
        on_refusal: Callable[[str | None, str], None] | None = None,
    ) -> None:
        self.store = store
        self.global_rule = global_rule
        self.model_rules = model_rules
        self.open = global_rule.empty  # no limit applies to a request without a key
        # Told of every refusal: (key name, "key_requests" / "global_tokens" / "model_requests" ...).
        self._on_refusal = on_refusal

    async def admit(self, key_name: str | None, rule: LimitRule | None, estimate: int) -> Grant:
        """Charge one request and ``estimate`` tokens against the key's and the router's limits;
        raises ``RateLimited`` (nothing charged) when any of them is spent."""
        buckets: list[Bucket] = []
        limits: list[_Limit] = []
        if rule is not None and key_name is not None:
            _add(buckets, limits, f"key:{key_name}", f"key '{key_name}'", rule, estimate)
        reported = len(buckets)  # the headers describe the key's limits, or the router's without a key
        _add(buckets, limits, "global", "the router", self.global_rule, estimate)
        if not buckets:
            return self.unlimited(estimate)
        result = await self.store.take(buckets)
        shown = slice(0, reported) if reported else slice(0, len(buckets))
        headers = _headers(buckets[shown], limits[shown], result.levels[shown])
        if result.failed is not None:
            if self._on_refusal is not None:
                limit = limits[result.failed]
                where = "key" if limit.scope.startswith("key") else "global"
                self._on_refusal(key_name, f"{where}_{limit.kind}")
            raise _refusal(limits[result.failed], buckets[result.failed], result.retry_after, headers)
        tokens = [b for b, lim in zip(buckets, limits, strict=True) if lim.kind == "tokens"]
        return Grant(headers, tokens, estimate)

    def unlimited(self, estimate: int) -> Grant:
        """A grant with nothing charged; it keeps the estimate that per-model limits were charged
        with, so that ``settle`` corrects those by the difference, not by the whole usage."""
        return Grant({}, [], estimate) if self.model_rules else OPEN

    async def admit_model(self, model: str, estimate: int) -> float | None:
        """Charge a request to ``model``'s own limits: ``None`` when admitted, else seconds to wait
        (``math.inf`` when the request can never fit)."""
        rule = self.model_rules.get(model)
        if rule is None:
            return None
        buckets: list[Bucket] = []
        _add(buckets, [], f"model:{model}", "", rule, estimate)
        result = await self.store.take(buckets)
        if result.failed is None:
            return None
        if self._on_refusal is not None:
            kind = "requests" if buckets[result.failed].key.endswith(":requests") else "tokens"
            self._on_refusal(None, f"model_{kind}")
        return math.inf if result.retry_after is None else result.retry_after

    def settle(self, grant: Grant, actual_tokens: int | None, served_model: str | None = None) -> None:
        """Correct the token charges with the tokens the request really used (prompt and output)."""
        if actual_tokens is None:
            return
        delta = actual_tokens - grant.estimate
        for bucket in grant.token_buckets:
            if delta:
                self.store.adjust(bucket, delta)
        rule = self.model_rules.get(served_model) if served_model else None
        if rule is not None and rule.tokens_per_minute and delta:
            self.store.adjust(_token_bucket(f"model:{served_model}", rule, 0), delta)


def _token_bucket(scope_key: str, rule: LimitRule, estimate: int) -> Bucket:
    tpm = rule.tokens_per_minute or 0
    return Bucket(key=f"{scope_key}:tokens", capacity=float(tpm), per_s=tpm / 60.0, cost=float(estimate))


def _add(
    buckets: list[Bucket], limits: list[_Limit], scope_key: str, scope: str, rule: LimitRule, estimate: int
) -> None:
    rpm = rule.requests_per_minute
    if rpm:
        buckets.append(
            Bucket(key=f"{scope_key}:requests", capacity=float(rule.burst), per_s=rpm / 60.0, cost=1.0)
        )
        limits.append(_Limit(scope, "requests", rpm))
    if rule.tokens_per_minute:
        buckets.append(_token_bucket(scope_key, rule, estimate))
        limits.append(_Limit(scope, "tokens", rule.tokens_per_minute))


def _headers(buckets: list[Bucket], limits: list[_Limit], levels: tuple[float, ...]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for bucket, limit, level in zip(buckets, limits, levels, strict=True):
        kind = limit.kind
        if f"x-ratelimit-limit-{kind}" in headers:
            continue
        headers[f"x-ratelimit-limit-{kind}"] = str(limit.limit)
        headers[f"x-ratelimit-remaining-{kind}"] = str(max(math.floor(level), 0))
        headers[f"x-ratelimit-reset-{kind}"] = duration(max(bucket.capacity - level, 0.0) / bucket.per_s)
    return headers


def duration(seconds: float) -> str:
    """OpenAI's form for reset times: ``250ms``, ``1.5s``, ``2m30s``."""
    if seconds < 1.0:
        return f"{math.ceil(seconds * 1000)}ms"
    if seconds < 60.0:
        return f"{math.ceil(seconds * 10) / 10:g}s"
    minutes, rest = divmod(math.ceil(seconds), 60)
    return f"{minutes}m{rest}s"


def _refusal(
    limit: _Limit, bucket: Bucket, retry_after: float | None, headers: dict[str, str]
) -> RateLimited:
    unit = "requests" if limit.kind == "requests" else "tokens"
    if retry_after is None:
        error = RateLimited(
            f"Request too large for {limit.scope}: about {bucket.cost:.0f} tokens, more than its limit of "
            f"{limit.limit} tokens per minute. Send a smaller request.",
            headers=headers,
        )
        error.client_should_retry = False
        error.error_type = "tokens"
        return error
    rule = f"{limit.limit} {unit} per minute"
    if limit.kind == "requests":
        rule += f" (burst {bucket.capacity:.0f})"
    error = RateLimited(
        f"Rate limit reached for {limit.scope} on {unit}: {rule}. "
        f"Please try again in {duration(retry_after)}.",
        retry_after=retry_after,
        headers=headers,
    )
    error.error_type = limit.kind  # OpenAI's error type names the limit: "requests" or "tokens"
    return error
