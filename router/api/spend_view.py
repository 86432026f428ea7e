"""``GET /model-health/spend``: today's and this month's spend per key and per model against their
budgets, and the router's total against the global budget, for the dashboard's spend panel.

It sits with the other read-only ops routes (the ops key when one is set), so the dashboard can show
it to an operator's browser where ``/admin/spend`` (loopback only without an ops key) would refuse.
"""

from __future__ import annotations

import msgspec
from litestar import Response, get
from litestar.handlers import HTTPRouteHandler

from router.access import BudgetRule
from router.api.errors import JSON
from router.api.services import Services
from router.store.spend import COUNT, KEY, MODEL, TOTAL, day_of, month_of, to_usd

_encode = msgspec.json.Encoder().encode


class Against(msgspec.Struct, kw_only=True):
    """One row: spend today and this month (USD), answers, and the budgets that bound it (null: none)."""

    name: str
    today: float
    month: float
    requests_today: int
    requests_month: int
    budget_daily: float | None
    budget_monthly: float | None


class KeySpend(Against, kw_only=True):
    downgrade_at_pct: float | None  # past this share of a budget, strategy keywords are served as cost
    declared: bool  # a key of the catalog (else a name only the ledger knows: anonymous, a removed key)


class SpendOverview(msgspec.Struct, kw_only=True):
    object: str = "spend_overview"
    day: str  # the UTC day and month the amounts are for
    month: str
    scope: str  # "shared" (Redis: every worker and instance) or "per_worker"
    total: Against
    keys: list[KeySpend]
    models: list[Against]


def spend_view_handlers(services: Services) -> list[HTTPRouteHandler]:
    @get(["/model-health/spend", "/v1/model-health/spend"])
    async def spend_overview() -> Response[bytes]:
        now = services.clock.wall()
        day, month = day_of(now), month_of(now)
        tables = await services.spend.totals([day, month])
        today, this_month = tables[day], tables[month]
        budgets = services.budgets
        scope = "per_worker" if services.state.report().scope == "per_worker" else "shared"

        def row(name: str, field: str, rule: BudgetRule | None) -> Against:
            return Against(
                name=name,
                today=to_usd(today.get(field, 0)),
                month=to_usd(this_month.get(field, 0)),
                requests_today=today.get(COUNT + field, 0),
                requests_month=this_month.get(COUNT + field, 0),
                budget_daily=_usd(rule.daily if rule else None),
                budget_monthly=_usd(rule.monthly if rule else None),
            )

        declared = {key.name: key for key in services.keys.declared_keys}
        spenders = {f[len(KEY) :] for f in (*today, *this_month) if f.startswith(KEY)}
        keys = []
        for name in sorted(declared.keys() | spenders):
            key = declared.get(name)
            base = row(name, KEY + name, key.budget if key is not None else None)
            downgrade = key.downgrade_at if key is not None else None
            keys.append(
                KeySpend(
                    **msgspec.structs.asdict(base),
                    downgrade_at_pct=round(downgrade * 100, 6) if downgrade is not None else None,
                    declared=key is not None,
                )
            )
        spent_models = {f[len(MODEL) :] for f in (*today, *this_month) if f.startswith(MODEL)}
        ruled = budgets.model_rules
        models = [row(name, MODEL + name, ruled.get(name)) for name in sorted(spent_models | ruled.keys())]
        overview = SpendOverview(
            day=day[2:],
            month=month[2:],
            scope=scope,
            total=row("router", TOTAL, budgets.global_rule),
            keys=sorted(keys, key=lambda k: (-k.month, k.name)),
            models=sorted(models, key=lambda m: (-m.month, m.name)),
        )
        return Response(content=_encode(overview), media_type=JSON)

    return [spend_overview]


def _usd(units: int | None) -> float | None:
    return to_usd(units) if units is not None else None
