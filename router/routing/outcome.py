"""What the engine hands back with an answer: which model served, and how it came to be that one."""

from __future__ import annotations

import msgspec

from router.catalog import Model


class Attempt(msgspec.Struct, frozen=True, kw_only=True):
    model: str
    outcome: str  # "ok" or the error's type
    deployment: str | None = None  # ``provider/model`` when the model has several

    @property
    def label(self) -> str:
        """How the request record lists it: ``model:outcome``."""
        return f"{self.model}:{self.outcome}"


class Outcome(msgspec.Struct, kw_only=True):
    """Which model served, and how it came to."""

    model: Model
    service_tier: str | None
    strategy: str | None
    attempts: list[Attempt]
    attempt_ms: float = 0.0  # the successful attempt: whole answer, or time to the first output
    upstream_ms: float = 0.0  # every attempt's upstream time, failed ones included
    # Set by the API when the answer begins: time since the request arrived, and the router's share.
    answered_ms: float = 0.0
    overhead_ms: float = 0.0
    # Candidates ranked before the one that served, passed over without a call (breaker open).
    skipped: list[str] = msgspec.field(default_factory=list)

    @property
    def fallback_reason(self) -> str | None:
        failed = [a for a in self.attempts if a.outcome != "ok"]
        if failed:
            return failed[0].outcome
        return "breaker_open" if self.skipped else None
