"""Schema-driven fuzzing of the router's own API: schemathesis reads the live router's ``/openapi.json``
and sends what it generates from it (valid requests and invalid ones) to the router, with the simulated
providers behind it. Every answer must be no 5xx, of a documented status and content type, and its body
(or each event of a stream) must fit the documented schema, headers included.

The run is bounded and reproducible: a fixed seed, derandomized generation, ``MAX_EXAMPLES`` generated
requests per operation in the fuzzing phase besides the deterministic examples and coverage phases, and
no stateful phase (the API's only state, stored responses, is covered by test_responses.py). A failure
names the check, the answer, and a curl command that reproduces it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import httpx
import pytest

from router.api.openapi import ENDPOINTS
from tests.integration.conftest import Router

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is in the test extra")
from hypothesis import strategies as st  # noqa: E402
from schemathesis.engine import events, from_schema  # noqa: E402

SEED = 20260101
# Per operation, in the fuzzing phase; ROUTER_FUZZ_EXAMPLES=500 digs deeper by hand.
MAX_EXAMPLES = int(os.environ.get("ROUTER_FUZZ_EXAMPLES", "25"))
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
    "unsupported_method",  # an undocumented method answers 405 with Allow
    "allow_header_conformance",  # OPTIONS lists exactly the documented methods
)
# Operations not fuzzed, and why.
NOT_FUZZED = {
    ("POST", "/admin/reload"): "it takes no input to generate, and reloading the shared router's catalog "
    "mid-suite is a side effect other tests would see; test_reload.py covers its answers",
}


def _answers_4xx(answer: httpx.Response) -> bool:
    return 400 <= answer.status_code < 500 and answer.json()["error"]["type"] == "invalid_request_error"


class Regression(NamedTuple):
    """A defect the fuzzer found once: a minimal request that showed it, and how its answer looks now."""

    what: str
    method: str
    path: str
    body: bytes
    headers: dict[str, str] = {"content-type": "application/json"}
    fixed: Callable[[httpx.Response], bool] = _answers_4xx


REGRESSIONS = [
    Regression(
        "a chat request routed to a Gemini model whose response_format.json_schema is not an object "
        "answered 500 instead of 400",
        "POST",
        "/v1/chat/completions",
        b'{"model": "gemini", "messages": [{"role": "user", "content": "hi"}], '
        b'"response_format": {"type": "json_schema", "json_schema": [null]}}',
    ),
    Regression(
        "a Responses request whose tools[i].type is not a string answered 500 instead of 400",
        "POST",
        "/v1/responses",
        b'{"model": "gpt-5-mini", "input": "hi", "tools": [{"type": {}, "name": "f"}]}',
    ),
    Regression(
        "a 405 answer carried no Allow header (RFC 9110)",
        "PUT",
        "/v1/models",
        b"",
        fixed=lambda answer: answer.status_code == 405 and "GET" in answer.headers.get("allow", ""),
    ),
    Regression(
        "a 405 from a model route carried no Allow header",
        "GET",
        "/v1/chat/completions",
        b"",
        fixed=lambda answer: answer.status_code == 405 and answer.headers.get("allow") == "POST, OPTIONS",
    ),
    Regression(
        "OPTIONS on /v1/responses/{id} answered 'Allow: GET, OPTIONS', leaving out DELETE",
        "OPTIONS",
        "/v1/responses/resp_0",
        b"",
        fixed=lambda answer: answer.headers.get("allow") == "DELETE, GET, OPTIONS",
    ),
    Regression(
        "a body that is not valid UTF-8 answered 500 instead of 400",
        "POST",
        "/v1/chat/completions",
        b'{"model": "gpt-5-mini", "messages": [{"role": "user", "content": "\xff"}]}',
    ),
    Regression(
        "a POST body sent as text/plain was served (200) instead of answering 400 unsupported_content_type",
        "POST",
        "/v1/chat/completions",
        b'{"model": "gpt-5-mini", "messages": [{"role": "user", "content": "hi"}]}',
        headers={"content-type": "text/plain"},
        fixed=lambda answer: (
            answer.status_code == 400 and answer.json()["error"]["code"] == "unsupported_content_type"
        ),
    ),
]


def _operations() -> list[Any]:
    params = []
    for method, path, _ in ENDPOINTS:
        marks = [pytest.mark.skip(reason=NOT_FUZZED[method, path])] if (method, path) in NOT_FUZZED else []
        params.append(pytest.param(method, path, id=f"{method} {path}", marks=marks))
    return params


@pytest.fixture(scope="module")
def api(router: Router) -> Any:
    config = schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "request-timeout": 10,
            # The reproductions must show the values sent (max_tokens is not a secret here).
            "output": {"sanitization": {"enabled": False}},
            "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True, "mode": "all"},
            "phases": {"stateful": {"enabled": False}},
            "checks": {"enabled": False, **{name: {"enabled": True} for name in CHECKS}},
        }
    )
    schema = schemathesis.openapi.from_url(f"{router.url}/openapi.json", config=config)
    names = _model_names(router)

    @schema.hook
    def flatmap_body(context: Any, body: Any) -> Any:
        """Half the generated bodies name a model of the catalog, so that they reach a provider (a
        random name only reaches the 404 of an unknown model); the other half keep what was drawn."""
        if not isinstance(body, dict) or "model" not in body or context.operation is None:
            return st.just(body)
        wanted = names["embeddings" if context.operation.path == "/v1/embeddings" else "chat"]
        return st.one_of(st.just(body), st.sampled_from(wanted).map(lambda name: {**body, "model": name}))

    return schema


def _model_names(router: Router) -> dict[str, list[str]]:
    """The catalog's names that can answer: the test catalog's dead-* providers refuse connections on
    purpose (their 502 is tested in test_routing.py) and needs-key has no key (503)."""
    models = router.http.get("/v1/models").json()["data"]
    usable = [
        m for m in models if m["router"].get("configured", True) and not m["owned_by"].startswith("dead")
    ]
    embedders = [m["id"] for m in usable if "embeddings" in m["router"].get("capabilities", ())]
    return {"embeddings": embedders, "chat": [m["id"] for m in usable if m["id"] not in embedders]}


@pytest.mark.parametrize(("method", "path"), _operations())
def test_every_answer_to_generated_requests_is_documented(api: Any, method: str, path: str) -> None:
    operation = api.include(method=method, path=path)
    failures: list[str] = []
    sent = 0
    for event in from_schema(operation).execute():
        if isinstance(event, events.ScenarioFinished):
            sent += len(event.recorder.interactions)
            failures.extend(_failures(event.recorder))
        elif isinstance(event, (events.NonFatalError, events.FatalError)):
            failures.append(f"schemathesis could not run: {getattr(event, 'value', None) or event}")
    assert sent > 0, f"no request was sent to {method} {path}"
    assert not failures, f"{len(failures)} undocumented answers of {method} {path}:\n\n" + "\n\n".join(
        failures[:5]
    )


@pytest.mark.parametrize("regression", [pytest.param(r, id=r.what[:60]) for r in REGRESSIONS])
def test_defects_the_fuzzer_found_stay_fixed(router: Router, regression: Regression) -> None:
    answer = router.http.request(
        regression.method, regression.path, content=regression.body, headers=regression.headers
    )
    assert regression.fixed(answer), f"{answer.status_code} {dict(answer.headers)} {answer.text[:200]}"


def _failures(recorder: Any) -> Iterator[str]:
    for case_id, checks in recorder.checks.items():
        for check in checks:
            info = check.failure_info
            if info is None:
                continue
            interaction = recorder.interactions.get(case_id)
            answer = interaction.response if interaction else None
            got = f"{answer.status_code} {answer.content[:300]!r}" if answer is not None else "no answer"
            failure = info.failure
            yield f"[{check.name}] {failure.title}: {failure.message}\nanswer: {got}\n{info.code_sample}"
