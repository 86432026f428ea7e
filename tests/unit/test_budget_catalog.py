"""Budgets in the catalog's access section: how keys, defaults, global and model budgets resolve, and
the error a bad value gets (naming the file, line and field)."""

from __future__ import annotations

from pathlib import Path

import pytest

from router.access import BudgetRule, Budgets, build_keyring
from router.catalog import CatalogError, parse_catalog
from router.cli import check
from router.clock import FakeClock
from router.settings import Settings
from router.store import MemorySpendStore
from tests.unit.test_catalog import MINIMAL

ACCESS = """
access:
  defaults: {budget: {daily_usd: 5, monthly_usd: 100}, downgrade_at_pct: 80}
  global: {budget: {monthly_usd: 1000}}
  model_limits:
    gpt-5-mini: {requests_per_minute: 60, budget: {daily_usd: 0.5}}
  keys:
    - {name: team, key_env: TEAM_KEY, budget: {daily_usd: 0.25}, downgrade_at_pct: 50}
    - {name: plain, key_env: PLAIN_KEY}
"""


def test_a_key_has_its_own_budget_or_else_the_defaults() -> None:
    catalog = parse_catalog(MINIMAL + ACCESS, {})
    ring = build_keyring(catalog, {"TEAM_KEY": "t" * 20, "PLAIN_KEY": "p" * 20, "ROUTER_API_KEY": "d" * 20})
    team, plain, default = (ring.identify(c * 20) for c in "tpd")
    assert team is not None and team.budget == BudgetRule(daily=25_000_000) and team.downgrade_at == 0.5
    assert plain is not None and plain.budget == BudgetRule(daily=500_000_000, monthly=10_000_000_000)
    assert plain.downgrade_at == 0.8
    assert default is not None and default.budget == plain.budget  # ROUTER_API_KEY's key: the defaults
    budgets = Budgets(MemorySpendStore(FakeClock()), FakeClock(), catalog)
    assert budgets.active
    assert budgets.global_rule == BudgetRule(monthly=100_000_000_000)
    assert budgets.model_rules == {"gpt-5-mini": BudgetRule(daily=50_000_000)}


def test_no_budget_anywhere_leaves_budgets_off() -> None:
    catalog = parse_catalog(MINIMAL + "access:\n  defaults: {requests_per_minute: 5}\n", {})
    assert not Budgets(MemorySpendStore(FakeClock()), FakeClock(), catalog).active


@pytest.mark.parametrize(
    ("access", "line", "message"),
    [
        (
            "access:\n  global: {budget: {}}\n",
            18,
            "access.global.budget: a budget needs daily_usd, monthly_usd",
        ),
        ("access:\n  global: {budget: {daily_usd: -1}}\n", 18, "access.global.budget.daily_usd: Expected"),
        ("access:\n  global: {budget: {daily_usd: ten}}\n", 18, "got `str`"),
        ("access:\n  global: {budget: {daily_usd: .inf}}\n", 18, "<= 1000000000.0"),
        ("access:\n  defaults: {budget: {weekly_usd: 3}}\n", 18, "unknown field `weekly_usd`"),
        (
            "access:\n  keys:\n    - {name: a, key_env: A, downgrade_at_pct: 50}\n",
            19,
            "downgrade_at_pct is a share of a budget, and key 'a' has none",
        ),
        (
            "access:\n  keys:\n    - {name: a, key_env: A, budget: {daily_usd: 1}, downgrade_at_pct: 150}\n",
            19,
            "keys.0.downgrade_at_pct: Expected `float` <= 100.0",
        ),
        ("access:\n  defaults: {downgrade_at_pct: 50}\n", 18, "set defaults.budget too"),
        ("access:\n  model_limits:\n    gpt-5-mini: {budget: {monthly_usd: 0}}\n", None, None),
        (
            "access:\n  keys:\n    - {name: anonymous, key_env: A}\n",
            19,
            "'anonymous' is reserved: the spend ledger records requests without a key under it",
        ),
    ],
)
def test_a_bad_budget_names_its_line_and_field(access: str, line: int | None, message: str | None) -> None:
    if message is None:  # a zero budget is valid: only free models may be used
        parse_catalog(MINIMAL + access, {}, source="c.yaml")
        return
    with pytest.raises(CatalogError) as error:
        parse_catalog(MINIMAL + access, {}, source="c.yaml")
    text = str(error.value)
    assert text.startswith(f"c.yaml:{line}:"), text
    assert message in text


def test_router_check_lists_the_budgets(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "catalog.yaml"
    path.write_text(MINIMAL + ACCESS)
    assert check(Settings(catalog_path=str(path))) == 0
    line = next(line for line in capsys.readouterr().out.splitlines() if "budgets" in line)
    assert line.strip() == (
        "budgets (UTC days and months): key team $0.25/day; every other key $5/day, $100/month; "
        "the router $1000/month; model gpt-5-mini $0.5/day"
    )
    path.write_text(MINIMAL)
    assert check(Settings(catalog_path=str(path))) == 0
    assert "budgets: none" in capsys.readouterr().out
