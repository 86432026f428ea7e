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


class Defect(NamedTuple):
    """A router defect: what goes wrong, a minimal request that shows it, which failures of the fuzz runs
    it explains (from the generated case, the answer and the failure), and how its fixed answer looks."""

    what: str
    method: str
    path: str
    body: bytes
    explains: Callable[[Any, Any, Any], bool]
    headers: dict[str, str] = {"content-type": "application/json"}
    fixed: Callable[[httpx.Response], bool] = _answers_4xx


def _server_error_on(path: str, hit: Callable[[dict[str, Any]], bool]) -> Callable[[Any, Any, Any], bool]:
    """Explains a 5xx of ``path`` whose generated body ``hit`` recognises."""

    def explains(case: Any, response: Any, failure: Any) -> bool:
        body = case.body
        return (
            case.operation.path == path
            and response.status_code >= 500
            and isinstance(body, dict)
            and hit(body)
        )

    return explains


def _items(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _field(value: Any, name: str) -> Any:
    return value.get(name) if isinstance(value, dict) else None


def _never(case: Any, response: Any, failure: Any) -> bool:
    return False  # a request schemathesis does not send; its reproduction is the test


# Failures these explain are dropped from the fuzz runs, so that the fuzzer goes on past them;
# test_known_defect_is_fixed expects each to fail and says when one is fixed: then delete its entry.
DEFECTS = [
    Defect(
        "a chat request routed to a Gemini model whose response_format.json_schema is not an object "
        "answers 500 (AttributeError in router/providers/gemini.py _generation) instead of 400",
        "POST",
        "/v1/chat/completions",
        b'{"model": "gemini", "messages": [{"role": "user", "content": "hi"}], '
        b'"response_format": {"type": "json_schema", "json_schema": [null]}}',
        _server_error_on(
            "/v1/chat/completions",
            lambda body: not isinstance(_field(body.get("response_format"), "json_schema") or {}, dict),
        ),
    ),
    Defect(
        "a Responses request whose tools[i].type is not a string (an object or an array) answers 500 "
        "(TypeError: unhashable type in router/responses/request.py check) instead of 400",
        "POST",
        "/v1/responses",
        b'{"model": "gpt-5-mini", "input": "hi", "tools": [{"type": {}, "name": "f"}]}',
        _server_error_on(
            "/v1/responses",
            lambda body: any(
                isinstance(_field(tool, "type"), (dict, list)) for tool in _items(body.get("tools"))
            ),
        ),
    ),
    Defect(
        "a 405 answer carries no Allow header (RFC 9110; the document requires it)",
        "PUT",
        "/v1/models",
        b"",
        lambda case, response, failure: getattr(failure, "failure_reason", None) == "missing_allow_header",
        fixed=lambda answer: answer.status_code == 405 and "allow" in answer.headers,
    ),
    Defect(
        "OPTIONS on /v1/responses/{id} answers 'Allow: GET, OPTIONS', leaving out DELETE",
        "OPTIONS",
        "/v1/responses/resp_0",
        b"",
        lambda case, response, failure: getattr(failure, "missing_methods", None) == ["DELETE"],
        fixed=lambda answer: "DELETE" in answer.headers.get("allow", ""),
    ),
    Defect(
        "a body that is not valid UTF-8 answers 500 instead of 400",
        "POST",
        "/v1/chat/completions",
        b'{"model": "gpt-5-mini", "messages": [{"role": "user", "content": "\xff"}]}',
        _never,
    ),
    Defect(
        "a POST body sent as text/plain is served (200) instead of answering 400 unsupported_content_type",
        "POST",
        "/v1/chat/completions",
        b'{"model": "gpt-5-mini", "messages": [{"role": "user", "content": "hi"}]}',
        _never,
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

    @schema.hook
    def filter_failure(context: Any, failure: Any, case: Any, response: Any) -> bool:
        """Keep every failure that no known defect explains."""
        return not any(defect.explains(case, response, failure) for defect in DEFECTS)

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


@pytest.mark.parametrize(
    "defect",
    [pytest.param(d, id=d.what[:60], marks=pytest.mark.xfail(reason=d.what, strict=True)) for d in DEFECTS],
)
def test_known_defect_is_fixed(router: Router, defect: Defect) -> None:
    """Each known defect's minimal request, expected to fail until the defect is fixed; then it passes,
    which strict xfail reports: delete the entry from DEFECTS then."""
    answer = router.http.request(defect.method, defect.path, content=defect.body, headers=defect.headers)
    assert defect.fixed(answer), f"{answer.status_code} {dict(answer.headers)} {answer.text[:200]}"


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
