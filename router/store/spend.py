"""The spend ledger and budget reservations: the interface every backend implements, the ledger's
units and periods, and the memory backend.

Amounts are integers of 1e-8 USD (``to_units``): exactly the eight decimals the ``x-router-cost-usd``
header shows, so that the ledger adds up to the cent (and below) against the headers; floats are
never summed. The ledger counts every answer's cost per UTC day (``d:2025-01-31``) and per UTC month
(``m:2025-01``), each period a table of fields:

- ``g``: everything; ``k:<key>``, ``m:<model>``, ``p:<provider>``; ``km:<key>:<model>`` (a key's
  spend by model: key names hold no ``:``);
- the same names after ``#`` count the answers that cost something (``#k:<key>``).

A budget is checked by ``reserve``: each ``Cap`` (a scope such as ``k:team`` over one period, with
its limit) must hold what is spent, what other requests in flight have reserved, and this request's
estimate; then the estimate is reserved on all of them at once, or on none. ``settle`` releases a
request's reservations and adds its actual cost to the ledger. A reservation is a lease: one that is
never settled (its process died) is given back after ``LEASE_S``.
"""

from __future__ import annotations

import calendar
import time
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from typing import Protocol

import msgspec

from router.clock import Clock

USD_UNITS = 100_000_000  # units of 1e-8 USD in a dollar
LEASE_S = 900.0  # a reservation not settled by then is given back (a stream may outlive it: harmless)
KEEP_DAYS = 400  # days of daily tables kept (months: twice as long)
TOTAL = "g"
KEY, MODEL, PROVIDER, KEY_MODEL = "k:", "m:", "p:", "km:"
COUNT = "#"


def to_units(usd: float) -> int:
    """``usd`` in 1e-8 USD, rounded exactly as ``f"{usd:.8f}"`` rounds it (the header's digits)."""
    whole, _, fraction = f"{usd:.8f}".partition(".")
    units = abs(int(whole)) * USD_UNITS + int(fraction)
    return -units if whole.startswith("-") else units


def to_usd(units: int) -> float:
    """Units back to USD: the nearest float, which prints as the exact eight decimals."""
    return units / USD_UNITS


def usd_text(units: int) -> str:
    """Units as a decimal string with eight places, computed on integers (for CSV)."""
    sign = "-" if units < 0 else ""
    whole, fraction = divmod(abs(units), USD_UNITS)
    return f"{sign}{whole}.{fraction:08d}"


# --- periods -------------------------------------------------------------------------------------


def day_of(wall: float) -> str:
    """The UTC day of a wall-clock time, as a period id: ``d:2025-01-31``."""
    t = time.gmtime(wall)
    return f"d:{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}"


def month_of(wall: float) -> str:
    """The UTC month of a wall-clock time, as a period id: ``m:2025-01``."""
    t = time.gmtime(wall)
    return f"m:{t.tm_year:04d}-{t.tm_mon:02d}"


class Periods:
    """The day and month ids of a wall-clock time, worked out once a day rather than per answer."""

    __slots__ = ("_end", "_ids", "_start")

    def __init__(self) -> None:
        self._start = self._end = 0.0
        self._ids = ("", "")

    def of(self, wall: float) -> tuple[str, str]:
        if not self._start <= wall < self._end:
            self._end = next_day(wall)
            self._start = self._end - 86_400.0
            self._ids = (day_of(wall), month_of(wall))
        return self._ids


def next_day(wall: float) -> float:
    """When the UTC day of ``wall`` ends (the next midnight UTC)."""
    t = time.gmtime(wall)
    return float(calendar.timegm((t.tm_year, t.tm_mon, t.tm_mday, 0, 0, 0)) + 86_400)


def next_month(wall: float) -> float:
    """When the UTC month of ``wall`` ends (the first of the next month, midnight UTC)."""
    t = time.gmtime(wall)
    year, month = (t.tm_year + 1, 1) if t.tm_mon == 12 else (t.tm_year, t.tm_mon + 1)
    return float(calendar.timegm((year, month, 1, 0, 0, 0)))


# --- what is recorded and checked ----------------------------------------------------------------


class Charge(msgspec.Struct, frozen=True):
    """One answer's cost, for the ledger."""

    key: str  # the key's name ("anonymous" without one)
    model: str
    provider: str
    units: int


def charge_fields(charge: Charge, answers: int = 1) -> list[tuple[str, int]]:
    """The ledger fields a charge (of ``answers`` answers) adds to, with what it adds."""
    units = charge.units
    names = (
        TOTAL,
        KEY + charge.key,
        MODEL + charge.model,
        PROVIDER + charge.provider,
        f"{KEY_MODEL}{charge.key}:{charge.model}",
    )
    return [*((name, units) for name in names), *((COUNT + name, answers) for name in names)]


class Cap(msgspec.Struct, frozen=True):
    """One budget a request must fit: ``scope`` (a ledger field: ``k:team``, ``g``, ``m:gpt-5``) over
    ``period``, at most ``limit`` units; ``amount`` is what the request reserves on it."""

    scope: str
    period: str
    limit: int
    amount: int

    @property
    def held(self) -> str:
        """The name its reservations are counted under."""
        return f"{self.scope}|{self.period}"


class Reservation(msgspec.Struct, frozen=True):
    """``failed``: the index of the first cap the request does not fit (``None``: reserved on all);
    ``levels``: each cap's spend plus what others hold, before this request; ``lease``: what
    ``settle`` releases (``None`` when nothing was reserved)."""

    failed: int | None
    levels: tuple[int, ...]
    lease: str | None


Totals = dict[str, dict[str, int]]  # period -> field -> units (or counts)


class SpendStore(Protocol):
    async def reserve(self, caps: Sequence[Cap]) -> Reservation: ...

    def settle(self, leases: Sequence[str], charge: Charge | None) -> None:
        """Release ``leases`` and add ``charge`` to the ledger, without waiting for the backend."""
        ...

    async def totals(self, periods: Sequence[str]) -> Totals:
        """The ledger's tables for ``periods``, with everything settled so far included."""
        ...

    async def aclose(self) -> None: ...


# --- memory --------------------------------------------------------------------------------------


class Tally:
    """Charges as they come, added up by (day, month, key, model, provider): one dictionary update an
    answer. ``fold`` expands them into the ledger's fields when something reads them."""

    __slots__ = ("_entries", "_periods")

    def __init__(self) -> None:
        self._entries: dict[tuple[str, str, str, str, str], list[int]] = {}
        self._periods = Periods()

    def add(self, charge: Charge, wall: float) -> None:
        day, month = self._periods.of(wall)
        entry_key = (day, month, charge.key, charge.model, charge.provider)
        entry = self._entries.get(entry_key)
        if entry is None:
            self._entries[entry_key] = [charge.units, 1]
        else:
            entry[0] += charge.units
            entry[1] += 1

    def __bool__(self) -> bool:
        return bool(self._entries)

    def fold(self, table: SpendTable) -> None:
        """Add what was gathered to ``table``, and start again from nothing."""
        entries, self._entries = self._entries, {}
        for (day, month, key, model, provider), (units, count) in entries.items():
            fields = charge_fields(Charge(key, model, provider, units), count)
            table.add(day, fields)
            table.add(month, fields)


class SpendTable:
    """Ledger tables in memory: period -> field -> units."""

    __slots__ = ("periods",)

    def __init__(self) -> None:
        self.periods: Totals = {}

    def add(self, period: str, fields: Iterable[tuple[str, int]]) -> None:
        table = self.periods.get(period)
        if table is None:
            table = self.periods[period] = {}
        for name, value in fields:
            table[name] = table.get(name, 0) + value

    def get(self, period: str, name: str) -> int:
        table = self.periods.get(period)
        return table.get(name, 0) if table is not None else 0

    def copy(self, periods: Sequence[str]) -> Totals:
        return {period: dict(self.periods.get(period, {})) for period in periods}

    def prune(self, now: float) -> None:
        """Drop daily tables older than ``KEEP_DAYS`` and monthly ones older than twice that."""
        oldest_day = day_of(now - KEEP_DAYS * 86_400.0)
        oldest_month = month_of(now - 2 * KEEP_DAYS * 86_400.0)
        for period in list(self.periods):
            if period < (oldest_day if period.startswith("d:") else oldest_month):
                del self.periods[period]


class _Lease(msgspec.Struct):
    expires: float  # monotonic
    holds: list[tuple[str, int]]  # (Cap.held, amount)


class MemorySpendStore:
    """This process's ledger and reservations. With Redis it is the fallback during an outage: then
    ``baseline`` holds each cap's level as Redis last reported it, and the table what this process
    settled that Redis does not hold yet (``forget`` clears both when it returns)."""

    def __init__(self, clock: Clock, lease_s: float = LEASE_S) -> None:
        self._clock = clock
        self._lease_s = lease_s
        self.table = SpendTable()
        self._tally = Tally()  # settled since the table was last read
        self._held: dict[str, int] = {}  # Cap.held -> units reserved by requests in flight
        self._leases: OrderedDict[str, _Lease] = OrderedDict()  # oldest first: leases expire in order
        self._baseline: dict[str, int] = {}
        self._next_lease = 0
        self._days: set[str] = set()

    async def reserve(self, caps: Sequence[Cap]) -> Reservation:
        return self.reserve_now(caps)

    def reserve_now(self, caps: Sequence[Cap]) -> Reservation:
        self._expire()
        if self._tally:
            self._fold()
        levels = tuple(
            self.table.get(cap.period, cap.scope)
            + self._held.get(cap.held, 0)
            + self._baseline.get(cap.held, 0)
            for cap in caps
        )
        for i, (cap, level) in enumerate(zip(caps, levels, strict=True)):
            if level + cap.amount > cap.limit:
                return Reservation(failed=i, levels=levels, lease=None)
        holds = [(cap.held, cap.amount) for cap in caps if cap.amount > 0]
        if not holds:
            return Reservation(failed=None, levels=levels, lease=None)
        for name, amount in holds:
            self._held[name] = self._held.get(name, 0) + amount
        self._next_lease += 1
        lease = str(self._next_lease)
        self._leases[lease] = _Lease(self._clock.monotonic() + self._lease_s, holds)
        return Reservation(failed=None, levels=levels, lease=lease)

    def settle(self, leases: Sequence[str], charge: Charge | None) -> None:
        for lease in leases:
            self.release(lease)
        if charge is not None and charge.units:
            self.add(charge)

    def add(self, charge: Charge) -> None:
        self._tally.add(charge, self._clock.wall())

    def _fold(self) -> None:
        self._tally.fold(self.table)
        now = self._clock.wall()
        day = day_of(now)
        if day not in self._days:
            self._days = {day}
            self.table.prune(now)

    def release(self, lease: str) -> None:
        held = self._leases.pop(lease, None)
        if held is not None:
            self._give_back(held)

    def remember(self, caps: Sequence[Cap], levels: Sequence[int]) -> None:
        """Redis's levels for ``caps``: what an outage starts from."""
        for cap, level in zip(caps, levels, strict=True):
            self._baseline[cap.held] = level

    def spent_meanwhile(self, tables: Sequence[SpendTable]) -> None:
        """During an outage, the ledger is what was settled since Redis last answered (``tables``)."""
        merged = SpendTable()
        for table in tables:
            for period, fields in table.periods.items():
                merged.add(period, fields.items())
        self.table = merged
        self._tally = Tally()

    def forget(self) -> None:
        """Redis is back and holds everything: keep only the reservations in flight."""
        self.table = SpendTable()
        self._tally = Tally()
        self._baseline.clear()

    async def totals(self, periods: Sequence[str]) -> Totals:
        if self._tally:
            self._fold()
        return self.table.copy(periods)

    async def aclose(self) -> None:
        return None

    def _expire(self) -> None:
        now = self._clock.monotonic()
        leases = self._leases
        while leases:
            lease, held = next(iter(leases.items()))
            if held.expires > now:
                return
            del leases[lease]
            self._give_back(held)

    def _give_back(self, lease: _Lease) -> None:
        for name, amount in lease.holds:
            left = self._held.get(name, 0) - amount
            if left > 0:
                self._held[name] = left
            else:
                self._held.pop(name, None)
