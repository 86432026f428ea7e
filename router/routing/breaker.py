"""Per-model circuit breakers: a pure state machine on an injected clock, and the board that holds them.

closed → open after ``consecutive_failures`` failures in a row, or when the failure rate over the
last ``window_s`` seconds reaches ``failure_rate`` with at least ``min_volume`` outcomes. Open lasts
``max(cooldown, Retry-After)``; the cooldown grows by ``backoff`` with each trip in a row, up to
``max_cooldown_s``; a new trip while open extends the open period, never shortens it. When it ends the
breaker is half-open and admits at most ``half_open_probes`` calls at once; a probe's success closes it
(with a fresh window), a probe's failure opens it again.

The last resort: when none of a request's candidates admits a call (every breaker open, or half-open
with all its probes in flight), the router calls the one closest to re-closing anyway. That call takes
no probe slot and counts like a probe: its success closes the breaker, its failure re-opens a
half-open one and keeps an open one open (without growing its cooldown).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Literal, Protocol

import msgspec

from router.catalog.schema import BreakerSpec as BreakerPolicy
from router.clock import Clock

State = Literal["closed", "open", "half_open"]
Transition = Callable[[str, State, State, str], None]
# How a call was admitted: while closed, as one of the half-open probes, or as a last resort when no
# candidate's breaker admits calls (open, or half-open with every probe in flight).
Ticket = Literal["call", "probe", "forced"]


class SharedFailures(Protocol):
    """Failures counted across every worker and instance (in Redis), so that the consecutive-failure
    threshold means the same at any scale. Reporting a failure costs a round trip (a failure already
    did); a success costs nothing unless this instance had reported failures since its last one."""

    def failed(self, model: str, threshold: int, window_s: float, retry_after: float | None) -> None: ...

    def recovered(self, model: str) -> None: ...


class LastError(msgspec.Struct, frozen=True):
    status: int
    type: str
    message: str
    at: float  # wall-clock seconds
    # Whether a client retrying soon could fare better (not when nothing listens at the address).
    retryable: bool = True


class BreakerView(msgspec.Struct, frozen=True, kw_only=True):
    """What ``/model-health`` shows of one breaker."""

    state: State
    consecutive_failures: int
    failures_in_window: int
    volume_in_window: int
    failure_rate: float
    reopens_in_s: float | None
    trips: int
    last_error: LastError | None


class Breaker:
    """One model's breaker. Every method takes the current time from the clock it was given."""

    def __init__(
        self,
        model: str,
        policy: BreakerPolicy,
        clock: Clock,
        on_transition: Transition,
        shared: SharedFailures | None = None,
    ) -> None:
        self.model = model
        self.policy = policy
        self._clock = clock
        self._notify = on_transition
        self._shared = shared
        self._reported = False  # failures reported to the shared count since the last success
        self.state: State = "closed"
        self.consecutive = 0
        # One-second buckets of [second, failures, outcomes]: memory stays bounded at any request rate,
        # and the counters below keep the totals, so the hot path never scans the window.
        self.window: deque[list[int]] = deque()
        self._window_failures = 0
        self._window_total = 0
        self.open_until = 0.0
        self.trips = 0
        self.streak = 0  # trips since the breaker last closed, for the growing cooldown
        self.probes = 0
        self.last_error: LastError | None = None

    # --- questions -------------------------------------------------------------------------------

    def available(self) -> bool:
        """Whether a call would be admitted now (no side effects)."""
        self._refresh()
        if self.state == "closed":
            return True
        return self.state == "half_open" and self.probes < self.policy.half_open_probes

    def wall(self) -> float:
        return self._clock.wall()

    def reopens_in(self) -> float:
        return max(self.open_until - self._clock.monotonic(), 0.0) if self.state == "open" else 0.0

    def window_counts(self) -> tuple[int, int]:
        self._prune()
        return self._window_failures, self._window_total

    # --- events ----------------------------------------------------------------------------------

    def acquire(self, *, force: bool = False) -> Ticket | None:
        """Admit one call, or ``None``. In half-open a call takes a probe slot. ``force`` admits a
        last-resort call whatever the state (the router's rule when no candidate admits calls): it
        takes no probe slot, and its outcome counts like a probe's."""
        self._refresh()
        if self.state == "closed":
            return "call"
        if self.state == "half_open" and self.probes < self.policy.half_open_probes:
            self.probes += 1
            return "probe"
        return "forced" if force else None

    def success(self, ticket: Ticket = "call") -> None:
        self._record(True)
        self.consecutive = 0
        if self._reported and self._shared is not None:
            self._reported = False
            self._shared.recovered(self.model)
        if ticket == "probe":
            self.probes = max(self.probes - 1, 0)
        if self.state == "closed":
            self._check_window(None)
        elif ticket != "call":
            self._close("probe succeeded" if ticket == "probe" else "a last-resort call succeeded")

    def failure(self, error: LastError, retry_after: float | None = None, ticket: Ticket = "call") -> None:
        self.last_error = error
        self._record(False)
        self.consecutive += 1
        if ticket == "probe":
            self.probes = max(self.probes - 1, 0)
        if self.state == "half_open":
            self._trip(retry_after, "probe failed" if ticket == "probe" else "a call failed while half-open")
        elif self.state == "open":
            self._extend(retry_after)
        elif self.consecutive >= self.policy.consecutive_failures:
            self._trip(retry_after, f"{self.consecutive} consecutive failures")
        else:
            self._check_window(retry_after)
            if self.state == "closed" and self._shared is not None:
                self._reported = True
                policy = self.policy
                self._shared.failed(self.model, policy.consecutive_failures, policy.window_s, retry_after)

    def shared_trip(self, failures: int, retry_after: float | None) -> None:
        """The instances together saw ``failures`` consecutive failures: open, as if this one had."""
        if self.state == "closed":
            self._trip(retry_after, f"{failures} consecutive failures across instances")

    def _check_window(self, retry_after: float | None) -> None:
        # Checked after every outcome: a success can complete the minimum volume of a failing window.
        failures, volume = self._window_failures, self._window_total
        if volume >= self.policy.min_volume and failures / volume >= self.policy.failure_rate:
            self._trip(retry_after, f"{failures} of {volume} calls failed in {self.policy.window_s:g}s")

    def release(self, ticket: Ticket = "call") -> None:
        """A call ended with an outcome that says nothing about health (a client error)."""
        if ticket == "probe":
            self.probes = max(self.probes - 1, 0)

    def peer_opened(self, until: float, reason: str) -> None:
        """Another instance tripped this model's breaker: stay off it until ``until`` (monotonic)."""
        if until <= self._clock.monotonic():
            return
        self.open_until = max(self.open_until, until)
        if self.state != "open":
            self.probes = 0
            self._move("open", reason)

    def peer_closed(self, reason: str) -> None:
        """Another instance's probe succeeded: the model is healthy again."""
        if self.state != "closed":
            self.open_until = 0.0
            self._close(reason)

    def view(self) -> BreakerView:
        self._refresh()
        failures, volume = self.window_counts()
        return BreakerView(
            state=self.state,
            consecutive_failures=self.consecutive,
            failures_in_window=failures,
            volume_in_window=volume,
            failure_rate=round(failures / volume, 4) if volume else 0.0,
            reopens_in_s=round(self.reopens_in(), 3) if self.state == "open" else None,
            trips=self.trips,
            last_error=self.last_error,
        )

    # --- mechanics -------------------------------------------------------------------------------

    def _record(self, ok: bool) -> None:
        second = int(self._clock.monotonic())
        window = self.window
        if not window or window[-1][0] != second:
            window.append([second, 0, 0])
        bucket = window[-1]
        bucket[2] += 1
        self._window_total += 1
        if not ok:
            bucket[1] += 1
            self._window_failures += 1
        self._prune()

    def _prune(self) -> bool:
        """Drop buckets older than the window; whether any left."""
        horizon = self._clock.monotonic() - self.policy.window_s
        window = self.window
        pruned = False
        while window and window[0][0] + 1 <= horizon:  # a bucket leaves once all of its second has
            _, failures, total = window.popleft()
            self._window_failures -= failures
            self._window_total -= total
            pruned = True
        return pruned

    def _refresh(self) -> None:
        """Apply what the passage of time alone changes: an open period ending, a window sliding."""
        if self.state == "open" and self._clock.monotonic() >= self.open_until:
            self._move("half_open", "cooldown over")
            self.probes = 0
        elif self.state == "closed" and self._prune():
            self._check_window(None)  # only a bucket leaving the window can change the verdict

    def _cooldown(self) -> float:
        p = self.policy
        return min(p.cooldown_s * p.backoff ** max(self.streak - 1, 0), p.max_cooldown_s)

    def _trip(self, retry_after: float | None, reason: str) -> None:
        self._reported = False
        self.trips += 1
        self.streak += 1
        self.probes = 0
        until = self._clock.monotonic() + max(self._cooldown(), retry_after or 0.0)
        self.open_until = max(self.open_until, until)
        self._move("open", reason)

    def _extend(self, retry_after: float | None) -> None:
        if retry_after:
            self.open_until = max(self.open_until, self._clock.monotonic() + retry_after)

    def _close(self, reason: str) -> None:
        self._reported = False
        self.streak = 0
        self.consecutive = 0
        self.window.clear()  # a closed breaker starts from a clean window, so old failures cannot re-trip it
        self._window_failures = 0
        self._window_total = 0
        self._move("closed", reason)

    def _move(self, state: State, reason: str) -> None:
        old, self.state = self.state, state
        if old != state:
            self._notify(self.model, old, state, reason)


class BreakerBoard:
    """The breakers of every model, created on first use, sharing one policy and clock."""

    def __init__(
        self,
        policy: BreakerPolicy,
        clock: Clock,
        on_transition: Transition | None = None,
        shared: SharedFailures | None = None,
    ) -> None:
        self.policy = policy
        self._clock = clock
        self._notify: Transition = on_transition or (lambda *_: None)
        self._shared = shared
        self._breakers: dict[str, Breaker] = {}

    def get(self, model: str) -> Breaker:
        breaker = self._breakers.get(model)
        if breaker is None:
            breaker = Breaker(model, self.policy, self._clock, self._notify, self._shared)
            self._breakers[model] = breaker
        return breaker

    def available(self, model: str) -> bool:
        breaker = self._breakers.get(model)
        return breaker is None or breaker.available()

    def update(self, policy: BreakerPolicy, models: set[str]) -> None:
        """A reloaded catalog: its policy for every breaker, state kept for the models that remain."""
        self.policy = policy
        for model in list(self._breakers):
            if model in models:
                self._breakers[model].policy = policy
            else:
                del self._breakers[model]

    def states(self) -> dict[str, State]:
        return {model: breaker.view().state for model, breaker in self._breakers.items()}

    # --- other instances' breakers (shared state) ------------------------------------------------

    def peer_opened(self, model: str, until_wall: float, reason: str) -> None:
        until = self._clock.monotonic() + (until_wall - self._clock.wall())
        self.get(model).peer_opened(until, f"peer: {reason}")

    def peer_closed(self, model: str, reason: str) -> None:
        breaker = self._breakers.get(model)
        if breaker is not None:
            breaker.peer_closed(f"peer: {reason}")

    def shared_trip(self, model: str, failures: int, retry_after: float | None) -> None:
        self.get(model).shared_trip(failures, retry_after)

    def open_until_wall(self, model: str) -> float | None:
        """When this model's open breaker lets a probe through, in wall-clock seconds."""
        breaker = self._breakers.get(model)
        if breaker is None or breaker.state != "open":
            return None
        return self._clock.wall() + breaker.reopens_in()

    def open_models(self) -> list[tuple[str, float]]:
        """Every open breaker and when it reopens (wall clock), to share after a reconnection."""
        opened = []
        for model in self._breakers:
            until = self.open_until_wall(model)
            if until is not None:
                opened.append((model, until))
        return opened
