"""Spend reports from the ledger: ``GET /v1/usage`` (the calling key's own spend, budgets and what is
left) and ``GET /admin/spend`` (an operator's report by key, model or provider over a range of UTC
days, as JSON or, for ``Accept: text/csv``, CSV).

Amounts are the ledger's integers of 1e-8 USD shown as USD with eight decimals at most, so a report
adds up exactly to the ``x-router-cost-usd`` headers of the answers it counts.
"""

from __future__ import annotations

import csv
import io
import re
import time
from datetime import date, timedelta
from typing import Any, Literal

import msgspec
from litestar import Request, Response, get
from litestar.handlers import HTTPRouteHandler

from router.access import BudgetRule
from router.api.access import key_of, ledger_name
from router.api.errors import JSON
from router.api.services import Services
from router.errors import InvalidRequest
from router.store.spend import (
    COUNT,
    KEY,
    KEY_MODEL,
    MODEL,
    PROVIDER,
    TOTAL,
    day_of,
    month_of,
    next_day,
    next_month,
    to_usd,
    usd_text,
)

GroupBy = Literal["key", "model", "provider"]
GROUPS: dict[str, str] = {"key": KEY, "model": MODEL, "provider": PROVIDER}
MAX_DAYS = 366  # the longest range one report reads
QUERY = ("group_by", "from", "to")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
CSV_TYPE = "text/csv"  # Litestar adds the charset to text types

_encode = msgspec.json.Encoder().encode


class Pair(msgspec.Struct):
    today: float
    month: float


class Requests(msgspec.Struct):
    today: int
    month: int


class Limits(msgspec.Struct):
    daily: float | None
    monthly: float | None


class Resets(msgspec.Struct):
    daily: str
    monthly: str


class ModelSpend(msgspec.Struct):
    model: str
    today: float
    month: float


class KeyUsage(msgspec.Struct, kw_only=True):
    """``GET /v1/usage``: null budgets (and remaining amounts) where the key has none."""

    object: str = "usage"
    key: str
    day: str  # the UTC day and month the amounts are for
    month: str
    spend_usd: Pair
    requests: Requests
    budget_usd: Limits
    remaining_usd: Limits
    resets_at: Resets
    by_model: list[ModelSpend]


class SpendRow(msgspec.Struct):
    name: str  # the key, model or provider (see the report's group_by)
    spend_usd: float
    requests: int  # answers that cost something


class SpendReport(msgspec.Struct, kw_only=True):
    object: str = "spend_report"
    group_by: str
    from_: str = msgspec.field(name="from")
    to: str
    total_usd: float
    requests: int
    rows: list[SpendRow]


def spend_handlers(services: Services) -> list[HTTPRouteHandler]:
    @get(["/v1/usage", "/usage"])
    async def usage(request: Request[Any, Any, Any]) -> Response[bytes]:
        key = key_of(request.scope)
        now = services.clock.wall()
        day, month = day_of(now), month_of(now)
        tables = await services.spend.totals([day, month])
        name = ledger_name(key)
        report = key_usage(name, key.budget if key is not None else None, tables[day], tables[month], now)
        return Response(content=_encode(report), media_type=JSON)

    @get("/admin/spend")
    async def spend(request: Request[Any, Any, Any]) -> Response[bytes]:
        group_by, first, last = _query(request, services.clock.wall())
        days = [f"d:{first + timedelta(days=i)}" for i in range((last - first).days + 1)]
        tables = await services.spend.totals(days)
        grouped = Grouped(group_by, list(tables.values()))
        if "text/csv" in request.headers.get("accept", ""):
            filename = f"spend-by-{group_by}-{first}-{last}.csv"
            return Response(
                content=grouped.csv().encode(),
                media_type=CSV_TYPE,
                headers={"content-disposition": f'attachment; filename="{filename}"'},
            )
        return Response(content=_encode(grouped.report(first, last)), media_type=JSON)

    return [usage, spend]


def key_usage(
    name: str, budget: BudgetRule | None, today: dict[str, int], month: dict[str, int], now: float
) -> KeyUsage:
    spent_today, spent_month = today.get(KEY + name, 0), month.get(KEY + name, 0)
    daily = budget.daily if budget is not None else None
    monthly = budget.monthly if budget is not None else None
    prefix = f"{KEY_MODEL}{name}:"
    models = {field[len(prefix) :] for field in (*today, *month) if field.startswith(prefix)}
    by_model = sorted(
        (
            ModelSpend(model, to_usd(today.get(prefix + model, 0)), to_usd(month.get(prefix + model, 0)))
            for model in models
        ),
        key=lambda m: (-m.month, m.model),
    )
    return KeyUsage(
        key=name,
        day=day_of(now)[2:],
        month=month_of(now)[2:],
        spend_usd=Pair(to_usd(spent_today), to_usd(spent_month)),
        requests=Requests(today.get(COUNT + KEY + name, 0), month.get(COUNT + KEY + name, 0)),
        budget_usd=Limits(_usd(daily), _usd(monthly)),
        remaining_usd=Limits(_left(daily, spent_today), _left(monthly, spent_month)),
        resets_at=Resets(_iso(next_day(now)), _iso(next_month(now))),
        by_model=by_model,
    )


class Grouped:
    """The ledger's days added up by key, model or provider, the largest spender first."""

    def __init__(self, group_by: GroupBy, tables: list[dict[str, int]]) -> None:
        self.group_by = group_by
        prefix = GROUPS[group_by]
        counted = COUNT + prefix
        units: dict[str, int] = {}
        counts: dict[str, int] = {}
        self.total = self.requests = 0
        for table in tables:
            self.total += table.get(TOTAL, 0)
            self.requests += table.get(COUNT + TOTAL, 0)
            for field, value in table.items():
                if field.startswith(prefix):
                    name = field[len(prefix) :]
                    units[name] = units.get(name, 0) + value
                elif field.startswith(counted):
                    name = field[len(counted) :]
                    counts[name] = counts.get(name, 0) + value
        ordered = sorted(units, key=lambda name: (-units[name], name))
        self.rows = [(name, units[name], counts.get(name, 0)) for name in ordered]

    def report(self, first: date, last: date) -> SpendReport:
        return SpendReport(
            group_by=self.group_by,
            from_=first.isoformat(),
            to=last.isoformat(),
            total_usd=to_usd(self.total),
            requests=self.requests,
            rows=[SpendRow(name, to_usd(units), count) for name, units, count in self.rows],
        )

    def csv(self) -> str:
        """A header naming the group, then one line per group with its amount to eight decimals."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow([self.group_by, "spend_usd", "requests"])
        for name, units, count in self.rows:
            writer.writerow([name, usd_text(units), count])
        return out.getvalue()


def _query(request: Request[Any, Any, Any], now: float) -> tuple[GroupBy, date, date]:
    """``group_by`` (default ``key``), ``from`` (default: the first of this UTC month) and ``to``
    (default: today, UTC), checked: every bad value is a 400 naming it."""
    params = request.query_params
    for name in params:
        if name not in QUERY:
            raise InvalidRequest(
                f"Unknown query parameter '{name}'. /admin/spend takes group_by, from and to.", param=name
            )
        if len(params.getall(name)) > 1:
            raise InvalidRequest(f"The query parameter '{name}' is given more than once.", param=name)
    group_by = params.get("group_by", "key")
    if group_by not in GROUPS:
        raise InvalidRequest(
            f"Invalid value for 'group_by': '{group_by[:100]}'. Use key, model or provider.", param="group_by"
        )
    today = date.fromisoformat(day_of(now)[2:])
    first = _date(params.get("from"), "from", today.replace(day=1))
    last = _date(params.get("to"), "to", today)
    if first > last:
        raise InvalidRequest(f"'from' ({first}) is after 'to' ({last}).", param="from")
    if (last - first).days + 1 > MAX_DAYS:
        raise InvalidRequest(
            f"The range {first} to {last} is {(last - first).days + 1} days; one report covers at most "
            f"{MAX_DAYS}.",
            param="from",
        )
    return group_by, first, last  # type: ignore[return-value]  # checked against GROUPS above


def _date(value: str | None, param: str, default: date) -> date:
    if value is None:
        return default
    if _DATE.fullmatch(value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise InvalidRequest(
        f"Invalid value for '{param}': '{value[:100]}'. Use a UTC day as YYYY-MM-DD.", param=param
    )


def _usd(units: int | None) -> float | None:
    return to_usd(units) if units is not None else None


def _left(limit: int | None, spent: int) -> float | None:
    return to_usd(max(limit - spent, 0)) if limit is not None else None


def _iso(wall: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(wall))
