"""Spend budgets: per key (its own or the catalog's ``defaults``), over the whole router (``global``)
and per model (``model_limits``), each per UTC day and per UTC month, checked before a request is
served and settled with what it actually cost.

Admission reserves the request's estimated cost: its prompt (estimated from the body's size) plus
the output it asks for (``max_tokens``, ``max_completion_tokens`` or ``max_output_tokens``, else the
catalog's ``expected_output_tokens``), times ``n``, at the price of the model that would serve it.
When the request could be served by several models (a strategy keyword, catalog fallbacks, a
``models`` list), the estimate on arrival is that of the cheapest of them, so that nothing is refused
that some candidate could serve within the budget; then, as the engine picks each candidate
(``BudgetHold.admit_model``), that model's own budget is checked and the key's and the router's
reservations are raised to the candidate's estimate. A candidate that does not fit is passed over
like a model whose rate limit is spent, so a strategy falls to a cheaper model the budget still
allows; if none fits the request gets the budget's 429. The actual cost settles the reservations
when the answer ends (``settle``), so requests in flight together cannot spend much beyond their
estimates.

A key past ``downgrade_at_pct`` of its daily or monthly budget has its strategy keywords served with
``cost`` (``BudgetHold.downgrade``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Literal

import msgspec

from router.catalog import Catalog, Model, Target
from router.catalog.schema import BudgetSpec
from router.clock import Clock
from router.errors import BudgetExceeded, ModelBudgetExceeded
from router.store.spend import (
    KEY,
    MODEL,
    TOTAL,
    Cap,
    Charge,
    Reservation,
    SpendStore,
    day_of,
    month_of,
    next_day,
    next_month,
    to_units,
    usd_text,
)

# Models a strategy keyword can route to: the ones that write text.
WRITING_ENDPOINTS = frozenset({"chat", "responses", "completions"})
Period = Literal["daily", "monthly"]
# Told of every refusal: (key name, "key_daily" / "global_monthly" / "model_daily" ...).
OnRefusal = Callable[[str | None, str], None]


class BudgetRule(msgspec.Struct, frozen=True, kw_only=True):
    """A budget in units of 1e-8 USD; ``None`` where the catalog sets none."""

    daily: int | None = None
    monthly: int | None = None


def budget_rule(spec: BudgetSpec | None) -> BudgetRule | None:
    if spec is None:
        return None
    return BudgetRule(
        daily=to_units(spec.daily_usd) if spec.daily_usd is not None else None,
        monthly=to_units(spec.monthly_usd) if spec.monthly_usd is not None else None,
    )


class Ask(msgspec.Struct, frozen=True, kw_only=True):
    """What a request's cost is estimated from."""

    names: list[str]  # the model asked, then its ``models`` list
    prompt_tokens: int
    output_tokens: int | None  # the limit the request set; ``None``: the catalog's expectation
    copies: int = 1  # answers written per request (``n``, several prompts)
    writes: bool = True  # False for embeddings: no output is priced


class _Line(msgspec.Struct, frozen=True):
    """One cap of a request, with what a refusal says about it."""

    kind: Literal["key", "global", "model"]
    name: str  # the key's or the model's (empty for global)
    period: Period
    cap: Cap


class BudgetHold:
    """One admitted request's reservations; the engine asks it about each candidate it picks."""

    __slots__ = ("_ask", "_budgets", "_key", "_rule", "downgrade", "held", "leases", "model_held")

    def __init__(self, budgets: Budgets, key: str | None, rule: BudgetRule | None, ask: Ask) -> None:
        self._budgets = budgets
        self._key = key
        self._rule = rule
        self._ask = ask
        self.leases: list[str] = []
        self.held = 0  # the estimate reserved on the key's and the router's budgets
        self.model_held: dict[str, int] = {}  # the estimate reserved on each model's own budget
        self.downgrade = False  # strategy keywords are to be served with ``cost``

    async def admit_model(self, target: Target) -> None:
        """Reserve for ``target`` (a model, or one deployment of it, at its own prices) before the
        engine calls it: whatever its estimate adds to what is held already. Raises
        ``ModelBudgetExceeded`` (the engine moves on to the next deployment or model) when a budget
        has no room for it."""
        model = target.model
        budgets = self._budgets
        amount = budgets.estimate(target, self._ask)
        more, more_model = amount - self.held, amount - self.model_held.get(model.id, 0)
        if more <= 0 and more_model <= 0:
            return
        now = budgets.clock.wall()
        lines = budgets.model_lines(model.id, now, more_model) if more_model > 0 else []
        if more > 0:
            lines += budgets.shared_lines(self._key, self._rule, now, more)
        if lines:
            reservation = await budgets.reserve(self._key, lines, fallback=True)
            if reservation.lease is not None:
                self.leases.append(reservation.lease)
        self.held = max(self.held, amount)
        self.model_held[model.id] = max(self.model_held.get(model.id, 0), amount)


class Budgets:
    """The budgets of one catalog (rebuilt on reload) over the spend store (which outlives reloads)."""

    def __init__(
        self, store: SpendStore, clock: Clock, catalog: Catalog, on_refusal: OnRefusal | None = None
    ) -> None:
        access = catalog.access
        self.store = store
        self.clock = clock
        self.catalog = catalog
        self.global_rule = budget_rule(access.global_.budget)
        self.model_rules = {
            name: rule for name, spec in access.model_limits.items() if (rule := budget_rule(spec.budget))
        }
        keyed = access.defaults.budget is not None or any(key.budget for key in access.keys)
        # Whether any budget applies to anything: without one, a request reserves nothing.
        self.active = keyed or self.global_rule is not None or bool(self.model_rules)
        self._writers = [
            model
            for model in catalog.models.values()
            if model.endpoints & WRITING_ENDPOINTS
            and any(catalog.provider_of(view).configured for view in model.views())
        ]
        self._on_refusal = on_refusal

    async def admit(
        self, key: str | None, rule: BudgetRule | None, downgrade_at: float | None, ask: Ask
    ) -> BudgetHold | None:
        """Reserve the request's estimate on every budget that applies to it; ``None`` when none
        can. Raises ``BudgetExceeded`` (nothing reserved) when one has no room for it."""
        if rule is None and self.global_rule is None and not self.model_rules:
            return None
        targets = self.candidates(ask.names)
        amount = min((self.estimate(t, ask) for t in targets), default=0)
        hold = BudgetHold(self, key, rule, ask)
        now = self.clock.wall()
        lines = self.shared_lines(key, rule, now, amount)
        models = {t.model.id for t in targets}
        if len(models) == 1:
            (only,) = models
            lines += self.model_lines(only, now, amount)
            hold.model_held[only] = amount
        if lines:
            reservation = await self.reserve(key, lines, fallback=False)
            if reservation.lease is not None:
                hold.leases.append(reservation.lease)
            if downgrade_at is not None:
                hold.downgrade = any(
                    _share(level, line.cap.limit) >= downgrade_at
                    for line, level in zip(lines, reservation.levels, strict=True)
                    if line.kind == "key"
                )
        hold.held = amount
        return hold

    async def reserve(self, key: str | None, lines: list[_Line], *, fallback: bool) -> Reservation:
        """Reserve on all of ``lines`` or none. Raises the refusal of the first that has no room
        (``ModelBudgetExceeded`` when another candidate may serve)."""
        reservation = await self.store.reserve([line.cap for line in lines])
        if reservation.failed is None:
            return reservation
        line = lines[reservation.failed]
        if self._on_refusal is not None:
            self._on_refusal(key, f"{line.kind}_{line.period}")
        raise self._refusal(line, reservation.levels[reservation.failed], fallback)

    def settle(self, hold: BudgetHold | None, key: str, model: Model, cost: float | None) -> None:
        """The answer is over: release its reservations and add what it cost to the ledger (a cost of
        ``None`` or 0, such as an answer from a cache, adds nothing)."""
        units = to_units(cost) if cost else 0
        leases = hold.leases if hold is not None else []
        if units <= 0 and not leases:
            return
        charge = Charge(key, model.id, model.provider, units) if units > 0 else None
        self.store.settle(leases, charge)
        if hold is not None:
            hold.leases = []

    def release(self, hold: BudgetHold | None) -> None:
        """The request ended without an answer: give its reservations back."""
        if hold is not None and hold.leases:
            self.store.settle(hold.leases, None)
            hold.leases = []

    # --- estimates ---------------------------------------------------------------------------------

    def candidates(self, names: Sequence[str]) -> list[Target]:
        """The models (each deployment apart, at its own prices) that could serve a request naming
        ``names``; for a strategy, every model that writes text and that the router can call."""
        catalog = self.catalog
        listed = [target for name in names[1:] if (target := catalog.lookup(name)) is not None]
        first = catalog.lookup(names[0]) if names else None
        if first is not None:
            fallbacks = [Target(catalog.models[name]) for name in first.model.fallbacks]
            return _ways([first, *fallbacks, *listed])
        asked = names[0] if names else ""
        strategy = asked if catalog.is_strategy(asked) else catalog.routing.unknown_model_strategy
        if strategy is None:
            return _ways(listed)  # an unknown model: answered 404 by the engine
        flex = strategy.endswith("-flex")
        pool = [Target(m, "flex" if flex and m.flex_price is not None else None) for m in self._writers]
        return _ways([*pool, *listed])

    def estimate(self, target: Target, ask: Ask) -> int:
        """The request's estimated cost on ``target``, in units."""
        model = target.model
        flex = target.service_tier == "flex" and model.flex_price is not None
        price = model.flex_price if flex and model.flex_price is not None else model.price
        output = 0
        if ask.writes:
            asked = ask.output_tokens or self.catalog.routing.expected_output_tokens
            output = min(asked, model.max_output) * ask.copies
        return to_units((ask.prompt_tokens * price.input + output * price.output) / 1_000_000)

    # --- caps ----------------------------------------------------------------------------------------

    def shared_lines(self, key: str | None, rule: BudgetRule | None, now: float, amount: int) -> list[_Line]:
        """The key's and the router's caps, reserving ``amount``."""
        lines: list[_Line] = []
        if rule is not None and key is not None:
            lines += _lines("key", key, KEY + key, rule, now, amount)
        if self.global_rule is not None:
            lines += _lines("global", "", TOTAL, self.global_rule, now, amount)
        return lines

    def model_lines(self, model: str, now: float, amount: int) -> list[_Line]:
        rule = self.model_rules.get(model)
        return _lines("model", model, MODEL + model, rule, now, amount) if rule is not None else []

    def _refusal(self, line: _Line, level: int, fallback: bool) -> BudgetExceeded:
        cap = line.cap
        now = self.clock.wall()
        daily = line.period == "daily"
        resets = next_day(now) if daily else next_month(now)
        whose = {"key": f"key '{line.name}'", "global": "the router", "model": f"model '{line.name}'"}
        when = "today (UTC)" if daily else "this month (UTC)"
        reset_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(resets))
        message = (
            f"Budget exceeded: the {line.period} budget of {whose[line.kind]} is ${usd(cap.limit)}, "
            f"${usd(level)} of it is spent or reserved {when}, and this request needs about "
            f"${usd(cap.amount)} more. It resets at {reset_at} (in {_until(resets - now)})."
        )
        error_class = ModelBudgetExceeded if fallback else BudgetExceeded
        return error_class(message, retry_after=max(resets - now, 1.0))


def _lines(
    kind: Literal["key", "global", "model"], name: str, scope: str, rule: BudgetRule, now: float, amount: int
) -> list[_Line]:
    lines: list[_Line] = []
    if rule.daily is not None:
        lines.append(_Line(kind, name, "daily", Cap(scope, day_of(now), rule.daily, amount)))
    if rule.monthly is not None:
        lines.append(_Line(kind, name, "monthly", Cap(scope, month_of(now), rule.monthly, amount)))
    return lines


def _ways(targets: list[Target]) -> list[Target]:
    """Each target as the deployments it may be served by (itself when it has one)."""
    return [Target(view, t.service_tier) for t in targets for view in t.model.views()]


def _share(level: int, limit: int) -> float:
    return level / limit if limit else 1.0


def usd(units: int) -> str:
    """An amount for people: at least cents, at most the eight decimals the ledger keeps."""
    text = usd_text(units).rstrip("0")
    whole, _, fraction = text.partition(".")
    return f"{whole}.{fraction.ljust(2, '0')}"


def _until(seconds: float) -> str:
    minutes = max(int(seconds // 60), 0)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days}d{hours}h"
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m"
