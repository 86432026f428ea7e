"""API keys from the catalog's access section: resolution from the environment, the errors a bad
section gets (with its line), constant-time matching, model rights and the ops key."""

from __future__ import annotations

import pytest

from router.access import build_keyring
from router.catalog import CatalogError, parse_catalog
from tests.unit.test_catalog import MINIMAL


def catalog(access: str) -> str:
    return MINIMAL + access


def test_keys_come_from_their_variables_and_are_matched_by_value() -> None:
    text = catalog(
        """
access:
  defaults: {requests_per_minute: 100}
  keys:
    - {name: alpha, key_env: ALPHA_KEY, models: [mini, fast]}
    - {name: beta, key_env: BETA_KEY, requests_per_minute: 5, burst: 2, tokens_per_minute: 900}
"""
    )
    ring = build_keyring(parse_catalog(text, {}), {"ALPHA_KEY": "a" * 20, "BETA_KEY": "b" * 20})
    assert ring.declared and not ring.ops_declared
    alpha = ring.identify("a" * 20)
    assert alpha is not None and alpha.name == "alpha"
    assert alpha.limits.requests_per_minute == 100 and alpha.limits.burst == 10
    beta = ring.identify("b" * 20)
    assert beta is not None and (beta.limits.burst, beta.limits.tokens_per_minute) == (2, 900)
    assert ring.identify("a" * 19) is None and ring.identify("") is None and ring.identify(None) is None
    # Model rights: by name, and an alias counts as its model.
    assert alpha.may_use("mini", "gpt-5-mini") and alpha.may_use("fast", None)
    assert not alpha.may_use("gpt-5-mini", "gpt-5-mini")
    assert beta.may_use("anything", None)
    assert "a" * 20 not in repr(ring.identify("a" * 20))


def test_no_keys_means_open_and_router_api_key_alone_closes_it() -> None:
    parsed = parse_catalog(MINIMAL, {})
    assert not build_keyring(parsed, {}).declared
    ring = build_keyring(parsed, {"ROUTER_API_KEY": "k"})
    key = ring.identify("k")
    assert ring.declared and key is not None and key.name == "default" and key.allowed is None


def test_a_declared_key_without_its_variable_stays_closed_with_a_warning() -> None:
    text = catalog("access:\n  keys:\n    - {name: alpha, key_env: ALPHA_KEY}\n")
    ring = build_keyring(parse_catalog(text, {}), {})
    assert ring.declared and ring.names == []
    assert any("ALPHA_KEY" in w for w in ring.warnings)
    assert any("401" in w for w in ring.warnings)


def test_the_ops_key_opens_ops_routes_and_so_does_a_key_with_ops_rights() -> None:
    text = catalog(
        "access:\n  keys:\n    - {name: admin, key_env: ADMIN_KEY, ops: true}\n"
        "    - {name: user, key_env: U}\n"
    )
    ring = build_keyring(parse_catalog(text, {}), {"ROUTER_OPS_KEY": "ops", "ADMIN_KEY": "adm", "U": "usr"})
    assert ring.ops_declared
    assert ring.opens_ops("ops") and ring.opens_ops("adm")
    assert not ring.opens_ops("usr") and not ring.opens_ops(None)
    assert build_keyring(parse_catalog(MINIMAL, {}), {}).opens_ops(None)


@pytest.mark.parametrize(
    ("access", "line", "message"),
    [
        ("access:\n  keys:\n    - {name: a, key: sk-abcdefghijklmnopqrstu}\n", 19, "key_env"),
        ("access:\n  keys:\n    - {name: a}\n", 19, "exactly one of key_env"),
        ("access:\n  keys:\n    - {name: a, key_env: A}\n    - {name: a, key_env: B}\n", 20, "a second key"),
        ("access:\n  keys:\n    - {name: a, key_env: A, models: [mini, gtp-5-mini]}\n", 19, "gpt-5-mini"),
        ("access:\n  model_limits:\n    nope: {requests_per_minute: 1}\n", 19, "unknown model 'nope'"),
        ("access:\n  keys:\n    - {name: a, key_env: A, rpm: 3}\n", 19, "unknown field `rpm`"),
        ("access:\n  defaults: {requests_per_minute: 0}\n", 18, ">= 1"),
    ],
)
def test_a_bad_access_section_names_its_line(access: str, line: int, message: str) -> None:
    with pytest.raises(CatalogError) as error:
        parse_catalog(catalog(access), {}, source="c.yaml")
    text = str(error.value)
    assert text.startswith(f"c.yaml:{line}:"), text
    assert message in text


def test_inline_keys_need_the_explicit_switch() -> None:
    text = catalog(
        "access:\n  allow_inline_keys: true\n  keys:\n    - {name: a, key: rk-inline-0123456789abcdef}\n"
    )
    ring = build_keyring(parse_catalog(text, {}), {})
    assert ring.identify("rk-inline-0123456789abcdef") is not None


async def test_admin_routes_answer_only_local_clients_without_an_ops_key() -> None:
    from router.api.edge import Edge
    from router.app import create_app
    from router.settings import Settings
    from router.telemetry.logging import RequestLog

    async def app(scope: object, receive: object, send: object) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})  # type: ignore[operator]
        await send({"type": "http.response.body", "body": b"reloaded"})  # type: ignore[operator]

    services = create_app(Settings(), catalog=parse_catalog(MINIMAL, {})).services
    edge = Edge(app, services, RequestLog(False))

    async def status(client: str) -> int:
        sent: list[dict[str, object]] = []

        async def send(message: dict[str, object]) -> None:
            sent.append(message)

        scope = {
            "type": "http",
            "method": "POST",
            "path": "/admin/reload",
            "headers": [],
            "client": (client, 5),
        }
        await edge(scope, None, send)  # type: ignore[arg-type]
        code: int = sent[0]["status"]  # type: ignore[assignment]
        return code

    assert await status("127.0.0.1") == 200
    assert await status("10.1.2.3") == 403
    # With an ops key it is the key that decides, wherever the client is.
    keyed = build_keyring(parse_catalog(MINIMAL, {}), {"ROUTER_OPS_KEY": "ops"})
    services.swap(services.engine, keyed, services.limiter)
    assert await status("10.1.2.3") == 401
