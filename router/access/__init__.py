"""Access control: who may call the router (API keys), how much (rate limits and spend budgets), and
from where (CORS)."""

from router.access.budgets import Ask, BudgetHold, BudgetRule, Budgets
from router.access.keys import ApiKey, KeyRing, build_keyring
from router.access.limits import Grant, Limiter, LimitRule

__all__ = [
    "ApiKey",
    "Ask",
    "BudgetHold",
    "BudgetRule",
    "Budgets",
    "Grant",
    "KeyRing",
    "LimitRule",
    "Limiter",
    "build_keyring",
]
