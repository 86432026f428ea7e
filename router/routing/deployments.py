"""Choosing among a model's deployments: by weight, by the quota each has left, and by speed.

A deployment's headroom is the smallest share of its quota left: the requests and tokens the router
sent it in the last minute against its catalog ``rpm``/``tpm``, and what the provider's own rate-limit
headers said on its last answer (OpenAI, Azure and Groq's ``x-ratelimit-*``, Anthropic's
``anthropic-ratelimit-*``) until their reset. A deployment with nothing left (or answered 429) gets no
traffic until its reset while another can serve; if none can, the one that resets first is tried.

The engine names the deployment being called in ``CALLING`` (a context variable), so the upstream
client's answer-header hook, which knows nothing of deployments, reports to the right one.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from contextvars import ContextVar
from datetime import datetime

from router.catalog import Model
from router.clock import Clock

CALLING: ContextVar[str | None] = ContextVar("router_deployment", default=None)
WINDOW_S = 60.0
# Latencies within a few tens of milliseconds of each other are noise, not a reason to prefer one.
LATENCY_SLACK_MS = 50.0


def duration_s(value: str) -> float | None:
    """Seconds in a Go-style duration (``1s``, ``6m0s``, ``12ms``, ``2m59.56s``) or a bare number of
    seconds (Azure); ``None`` when it is neither."""
    value = value.strip()
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    total, number = 0.0, ""
    i = 0
    while i < len(value):
        c = value[i]
        if c.isdigit() or c == ".":
            number += c
            i += 1
            continue
        unit = "ms" if value.startswith("ms", i) else c
        i += len(unit)
        scale = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}.get(unit)
        if scale is None or not number:
            return None
        try:
            total += float(number) * scale
        except ValueError:
            return None
        number = ""
    return total if not number else None


def _instant_s(value: str, wall: float) -> float | None:
    """Seconds from ``wall`` to an RFC 3339 instant (Anthropic's resets)."""
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return max(moment.timestamp() - wall, 0.0)


class _Budget:
    """What a provider said of one of a deployment's limits: left, out of, until."""

    __slots__ = ("limit", "remaining", "until")

    def __init__(self, remaining: int, limit: int | None, until: float) -> None:
        self.remaining = remaining
        self.limit = limit
        self.until = until

    def share(self, now: float) -> float | None:
        if now >= self.until:
            return None  # replenished since
        if self.remaining <= 0:
            return 0.0
        return min(self.remaining / self.limit, 1.0) if self.limit else None


class Quota:
    """One deployment's use and what its provider said of its limits."""

    __slots__ = ("_clock", "_sent", "blocked_until", "rpm", "said", "tokens", "tpm")

    def __init__(self, clock: Clock, rpm: int | None, tpm: int | None) -> None:
        self._clock = clock
        self.rpm = rpm
        self.tpm = tpm
        self._sent: deque[tuple[float, int]] = deque()  # (when, estimated tokens) in the last minute
        self.tokens = 0
        self.said: dict[str, _Budget] = {}  # "requests" / "tokens" → the provider's last word
        self.blocked_until = 0.0  # a 429's retry hint

    def sent(self, tokens: int) -> None:
        now = self._clock.monotonic()
        self._expire(now)
        self._sent.append((now, tokens))
        self.tokens += tokens

    def _expire(self, now: float) -> None:
        sent = self._sent
        while sent and sent[0][0] <= now - WINDOW_S:
            self.tokens -= sent.popleft()[1]

    def headroom(self) -> float:
        """The smallest share left of any known limit (1.0: nothing known to be short)."""
        now = self._clock.monotonic()
        if now < self.blocked_until:
            return 0.0
        self._expire(now)
        share = 1.0
        if self.rpm:
            share = min(share, 1.0 - len(self._sent) / self.rpm)
        if self.tpm:
            share = min(share, 1.0 - self.tokens / self.tpm)
        for budget in self.said.values():
            said = budget.share(now)
            if said is not None:
                share = min(share, said)
        return max(share, 0.0)

    def resets_in(self) -> float:
        """Seconds until an exhausted deployment has quota again (0 when it has some now)."""
        now = self._clock.monotonic()
        waits = [self.blocked_until - now]
        waits += [b.until - now for b in self.said.values() if b.remaining <= 0]
        if self.rpm and len(self._sent) >= self.rpm:
            waits.append(self._sent[0][0] + WINDOW_S - now)
        return max(max(waits), 0.0)

    def observe(self, headers: Mapping[str, str]) -> None:
        """Read an answer's rate-limit headers (any status, 429s included)."""
        now, wall = self._clock.monotonic(), self._clock.wall()
        for kind in ("requests", "tokens"):
            remaining = headers.get(f"x-ratelimit-remaining-{kind}")
            if remaining is not None:
                reset = headers.get(f"x-ratelimit-reset-{kind}") or headers.get(f"x-rate-limit-reset-{kind}")
                wait = duration_s(reset) if reset else None
                self._note(kind, remaining, headers.get(f"x-ratelimit-limit-{kind}"), wait, now)
                continue
            remaining = headers.get(f"anthropic-ratelimit-{kind}-remaining")
            if remaining is not None:
                reset = headers.get(f"anthropic-ratelimit-{kind}-reset")
                wait = _instant_s(reset, wall) if reset else None
                self._note(kind, remaining, headers.get(f"anthropic-ratelimit-{kind}-limit"), wait, now)

    def _note(self, kind: str, remaining: str, limit: str | None, wait: float | None, now: float) -> None:
        try:
            left = int(float(remaining))
            most = int(float(limit)) if limit else None
        except ValueError:
            return
        if most is not None and most <= 0:
            return  # Azure reports -1 or 0 where it keeps no such count
        self.said[kind] = _Budget(left, most, now + (wait if wait is not None else WINDOW_S))

    def refused(self, retry_after: float | None) -> None:
        """The deployment answered 429: no traffic until its hint (or the reset it announced)."""
        wait = retry_after if retry_after is not None else max(self.resets_in(), 1.0)
        self.blocked_until = max(self.blocked_until, self._clock.monotonic() + wait)


class QuotaBoard:
    """Every deployment's quota, kept across catalog reloads (limits taken from the current catalog)."""

    def __init__(self, clock: Clock, rng: random.Random | None = None) -> None:
        self._clock = clock
        self._quotas: dict[str, Quota] = {}
        self.rng = rng or random.Random()  # noqa: S311 - spreading load, not a secret

    def get(self, view: Model) -> Quota:
        quota = self._quotas.get(view.key)
        if quota is None:
            quota = self._quotas[view.key] = Quota(self._clock, view.rpm, view.tpm)
        else:
            quota.rpm, quota.tpm = view.rpm, view.tpm
        return quota

    def observe(self, headers: Mapping[str, str]) -> None:
        """The upstream client's answer-header hook: credit the deployment being called, if any."""
        key = CALLING.get()
        if key is not None:
            quota = self._quotas.get(key)
            if quota is not None:
                quota.observe(headers)

    def scores(
        self, views: Sequence[Model], usable: Callable[[Model], bool], ttft_ms: Callable[[Model], float]
    ) -> tuple[list[tuple[float, Model]], list[tuple[float, Model]]]:
        """The usable ``views`` with quota left, each with its score (weight times headroom times
        relative speed), and those without, each with the seconds until its reset. Relative speed is
        ``(fastest + 50 ms) / (its time to first token + 50 ms)``."""
        ready: list[tuple[float, Model]] = []
        spent: list[tuple[float, Model]] = []
        fastest = min((ttft_ms(v) for v in views), default=1.0)
        for view in views:
            if not usable(view):
                continue
            quota = self.get(view)
            room = quota.headroom()
            if room <= 0.0:
                spent.append((quota.resets_in(), view))
                continue
            speed = (fastest + LATENCY_SLACK_MS) / (max(ttft_ms(view), fastest) + LATENCY_SLACK_MS)
            ready.append((view.weight * room * speed, view))
        return ready, sorted(spent, key=lambda pair: pair[0])

    def order(
        self, views: Sequence[Model], usable: Callable[[Model], bool], ttft_ms: Callable[[Model], float]
    ) -> list[Model]:
        """The order to try ``views`` in: a draw weighted by score among those with quota left first,
        the rest of them by score; then those without quota, soonest reset first. ``usable`` says
        whether a view may be called now (breaker, key)."""
        ready, spent = self.scores(views, usable, ttft_ms)
        ordered: list[Model] = []
        if ready:
            total = sum(score for score, _ in ready)
            pick = self.rng.random() * total
            for index, (score, _) in enumerate(ready):
                pick -= score
                if pick < 0 or index == len(ready) - 1:
                    ordered.append(ready.pop(index)[1])
                    break
            ordered += [view for _, view in sorted(ready, key=lambda pair: -pair[0])]
        return ordered + [view for _, view in spent]
