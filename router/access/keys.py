"""Client API keys: read from the environment once, matched in constant time, never logged or shown.

Keys are declared in the catalog's ``access.keys`` (a name, the environment variable holding the
value, limits and allowed models); ``ROUTER_API_KEY`` alone declares one key named ``default`` with
the catalog's default limits. No key declared means the router is open. ``ROUTER_OPS_KEY`` (or
``access.ops_key_env``) protects the ops routes with their own key.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

import msgspec

from router.access.budgets import BudgetRule, budget_rule
from router.access.limits import LimitRule, rule_of
from router.catalog import Catalog
from router.catalog.schema import AccessSpec

DEFAULT_KEY_ENV = "ROUTER_API_KEY"
DEFAULT_OPS_ENV = "ROUTER_OPS_KEY"


class ApiKey(msgspec.Struct, frozen=True, kw_only=True):
    """One client key's identity and rights; it holds no secret, so it may be logged by name."""

    name: str
    # Catalog ids, aliases and strategy keywords this key may ask for; ``None`` allows all.
    allowed: frozenset[str] | None
    limits: LimitRule
    ops: bool = False
    budget: BudgetRule | None = None
    # The share of its budget (0 to 1) past which its strategy keywords are served with ``cost``.
    downgrade_at: float | None = None

    def may_use(self, name: str, resolved: str | None) -> bool:
        """Whether this key may ask for ``name`` (an alias counts as the model it resolves to)."""
        allowed = self.allowed
        return allowed is None or name in allowed or (resolved is not None and resolved in allowed)


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()


class KeyRing:
    """The configured keys, held as SHA-256 digests: a presented key is hashed and compared with
    ``hmac.compare_digest``, so neither the lookup nor the comparison depends on the secret's bytes."""

    __slots__ = ("_keys", "_ops", "declared", "ops_declared", "warnings")

    def __init__(
        self,
        keys: Mapping[bytes, ApiKey],
        ops_digest: bytes | None,
        *,
        declared: bool,
        ops_declared: bool,
        warnings: list[str],
    ) -> None:
        self._keys = dict(keys)
        self._ops = ops_digest
        self.declared = declared  # keys are configured: every model route needs one
        self.ops_declared = ops_declared  # the ops routes need the ops key (or a key with ops rights)
        self.warnings = warnings

    @property
    def names(self) -> list[str]:
        return [key.name for key in self._keys.values()]

    @property
    def declared_keys(self) -> list[ApiKey]:
        """The active keys (their names and rights, never their values)."""
        return list(self._keys.values())

    def identify(self, token: str | None) -> ApiKey | None:
        if not token:
            return None
        digest = _digest(token)
        for known, key in self._keys.items():
            if hmac.compare_digest(known, digest):
                return key
        return None

    def opens_ops(self, token: str | None) -> bool:
        if not self.ops_declared:
            return True
        if not token:
            return False
        digest = _digest(token)
        if self._ops is not None and hmac.compare_digest(self._ops, digest):
            return True
        key = self.identify(token)
        return key is not None and key.ops


def build_keyring(catalog: Catalog, environ: Mapping[str, str]) -> KeyRing:
    """Resolve the catalog's keys against ``environ``. A declared key whose variable is unset is left
    out with a warning; the router stays closed (it never falls open because a variable is missing)."""
    access: AccessSpec = catalog.access
    keys: dict[bytes, ApiKey] = {}
    warnings: list[str] = []
    declared = bool(access.keys)
    for spec in access.keys:
        value = spec.key if spec.key is not None else environ.get(spec.key_env or "", "")
        if not value:
            warnings.append(f"API key '{spec.name}' is not active: its variable {spec.key_env} is not set")
            continue
        key = ApiKey(
            name=spec.name,
            allowed=frozenset(spec.models) if spec.models is not None else None,
            limits=rule_of(access.defaults, spec.requests_per_minute, spec.burst, spec.tokens_per_minute),
            ops=spec.ops,
            budget=budget_rule(spec.budget or access.defaults.budget),
            downgrade_at=_fraction(spec.downgrade_at_pct or access.defaults.downgrade_at_pct),
        )
        _add(keys, value, key, warnings)
    default = environ.get(DEFAULT_KEY_ENV, "")
    if default:
        declared = True
        key = ApiKey(
            name="default",
            allowed=None,
            limits=rule_of(access.defaults),
            budget=budget_rule(access.defaults.budget),
            downgrade_at=_fraction(access.defaults.downgrade_at_pct),
        )
        _add(keys, default, key, warnings)
    ops_env = access.ops_key_env or DEFAULT_OPS_ENV
    ops_value = environ.get(ops_env, "")
    ops_declared = bool(ops_value) or access.ops_key_env is not None
    if access.ops_key_env is not None and not ops_value:
        warnings.append(f"the ops key variable {ops_env} is not set: the ops routes accept only ops keys")
    if declared and not keys:
        warnings.append("API keys are declared but none is set: every model route answers 401")
    return KeyRing(
        keys,
        _digest(ops_value) if ops_value else None,
        declared=declared,
        ops_declared=ops_declared,
        warnings=warnings,
    )


def _add(keys: dict[bytes, ApiKey], value: str, key: ApiKey, warnings: list[str]) -> None:
    digest = _digest(value)
    if digest in keys:
        warnings.append(
            f"API keys '{keys[digest].name}' and '{key.name}' have the same value; using the first"
        )
        return
    keys[digest] = key


def _fraction(percent: float | None) -> float | None:
    return percent / 100.0 if percent is not None else None
