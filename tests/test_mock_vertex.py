"""The simulated Vertex AI answers Google's and Anthropic's official SDKs (``google-genai`` with
``vertexai=True``, ``AnthropicVertex``) as Vertex does, refuses credentials with Google's bodies, checks
what Vertex checks, plays faults in Vertex's envelopes, and exchanges service-account assertions for
tokens only when their signature, audience and lifetime hold (google-auth's own refresh is the client)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest
import pytest_asyncio
from google import genai
from google.auth import crypt, jwt
from google.auth.transport.requests import Request
from google.oauth2 import credentials as oauth2
from google.oauth2 import service_account

from router.mock import MockServer

TOKEN = "ya29.a0AfB_static-test-token"
PROJECT = "router-test"
CLAUDE = "claude-haiku-4-5@20251001"
RESOURCE = f"/v1/projects/{PROJECT}/locations/us-east5/publishers"
SCOPE = "https://www.googleapis.com/auth/cloud-platform"


@pytest_asyncio.fixture
async def mock() -> AsyncIterator[MockServer]:
    async with MockServer() as server:
        yield server


@pytest_asyncio.fixture
async def http(mock: MockServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=mock.vertex_url, timeout=5.0) as client:
        yield client


def claude_body(**extra: Any) -> dict[str, Any]:
    return {
        "anthropic_version": "vertex-2023-10-16",
        "max_tokens": 64,
        "messages": [{"role": "user", "content": "hello vertex"}],
        **extra,
    }


def bearer(token: str = TOKEN) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


async def test_anthropic_s_vertex_client_gets_claude_s_message(mock: MockServer) -> None:
    # The SDK installed here (anthropic 2.17) defaults the body's version to its own API version,
    # 2026-10-21; Anthropic's and Google's docs, and the SDK through 0.121, say vertex-2023-10-16, which
    # the router sends and the simulated Vertex requires.
    version = {"anthropic_version": "vertex-2023-10-16"}
    client = anthropic.AsyncAnthropicVertex(
        region="us-east5",
        project_id=PROJECT,
        access_token=TOKEN,
        base_url=mock.vertex_url + "/v1",
        max_retries=0,
    )
    message = await client.messages.create(
        model=CLAUDE, max_tokens=64, messages=[{"role": "user", "content": "hi"}], extra_body=version
    )
    assert message.id.startswith("msg_vrtx_") and message.model == "claude-haiku-4-5-20251001"
    assert message.content[0].text == "Echo: hi"  # type: ignore[union-attr]
    texts = []
    async with client.messages.stream(
        model=CLAUDE, max_tokens=64, messages=[{"role": "user", "content": "say words=3"}], extra_body=version
    ) as stream:
        async for text in stream.text_stream:
            texts.append(text)
    assert "".join(texts).split() == ["lorem", "ipsum", "dolor"]
    sent = mock.state.requests("vertex")[-1]
    assert sent.path == f"/vertex{RESOURCE}/anthropic/models/{CLAUDE}:streamRawPredict"


async def test_google_s_genai_client_on_vertex_gets_gemini_s_answer(mock: MockServer) -> None:
    client = genai.Client(
        vertexai=True,
        project=PROJECT,
        location="global",
        credentials=oauth2.Credentials(token=TOKEN),  # type: ignore[no-untyped-call]
        http_options=genai.types.HttpOptions(base_url=mock.vertex_url, api_version="v1"),
    )
    answer = await client.aio.models.generate_content(model="gemini-2.5-flash", contents="hello gemini")
    assert answer.text == "Echo: hello gemini"
    pieces = [
        c.text
        async for c in await client.aio.models.generate_content_stream(
            model="gemini-2.5-flash", contents="say words=4"
        )
    ]
    assert "".join(p or "" for p in pieces).split() == ["lorem", "ipsum", "dolor", "sit"]
    sent = mock.state.requests("vertex")[-1]
    where = f"/vertex/v1/projects/{PROJECT}/locations/global/publishers/google/models/gemini-2.5-flash"
    assert sent.path == f"{where}:streamGenerateContent"
    assert sent.query == "alt=sse" and sent.headers["authorization"] == f"Bearer {TOKEN}"


# --- credentials -----------------------------------------------------------------------------------


async def test_no_token_and_an_api_key_are_google_s_401s(http: httpx.AsyncClient) -> None:
    url = f"{RESOURCE}/google/models/gemini-2.5-flash:generateContent"
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    missing = await http.post(url, json=body)
    error = missing.json()["error"]
    assert missing.status_code == 401 and error["status"] == "UNAUTHENTICATED"
    assert error["message"].startswith("Request is missing required authentication credential.")
    info = error["details"][0]
    assert (
        info["reason"] == "CREDENTIALS_MISSING" and info["metadata"]["service"] == "aiplatform.googleapis.com"
    )
    assert info["metadata"]["method"] == "google.cloud.aiplatform.v1.PredictionService.GenerateContent"
    keyed = await http.post(url, json=body, headers={"x-goog-api-key": "AIza-test"})
    assert keyed.status_code == 401 and keyed.json()["error"]["message"].startswith(
        "API keys are not supported"
    )


async def test_a_wrong_token_is_refused_once_a_token_is_required(
    mock: MockServer, http: httpx.AsyncClient
) -> None:
    mock.state.set_required_key("vertex", TOKEN)
    url = f"{RESOURCE}/anthropic/models/{CLAUDE}:rawPredict"
    refused = await http.post(url, json=claude_body(), headers=bearer("ya29.other"))
    error = refused.json()["error"]
    assert refused.status_code == 401 and error["message"].startswith(
        "Request had invalid authentication credentials."
    )
    assert error["details"][0]["reason"] == "ACCESS_TOKEN_TYPE_UNSUPPORTED"
    assert (await http.post(url, json=claude_body(), headers=bearer())).status_code == 200


# --- what Vertex checks ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (claude_body(model=CLAUDE), "model: Extra inputs are not permitted"),
        (
            {k: v for k, v in claude_body().items() if k != "anthropic_version"},
            "anthropic_version: Field required",
        ),
        (
            claude_body(anthropic_version="2023-06-01"),
            "anthropic_version: Input should be 'vertex-2023-10-16'",
        ),
    ],
    ids=["model-in-body", "no-version", "wrong-version"],
)
async def test_claude_bodies_carry_vertex_s_version_and_no_model(
    http: httpx.AsyncClient, body: dict[str, Any], message: str
) -> None:
    answer = await http.post(f"{RESOURCE}/anthropic/models/{CLAUDE}:rawPredict", json=body, headers=bearer())
    assert answer.status_code == 400
    assert answer.json()["type"] == "error" and answer.json()["error"]["message"] == message
    assert answer.json()["request_id"].startswith("req_vrtx_")


async def test_gemini_contents_need_their_role_and_unknown_models_are_404(http: httpx.AsyncClient) -> None:
    url = f"{RESOURCE}/google/models/gemini-2.5-flash:generateContent"
    roleless = await http.post(url, json={"contents": [{"parts": [{"text": "hi"}]}]}, headers=bearer())
    assert (
        roleless.status_code == 400
        and roleless.json()["error"]["message"] == "Please use a valid role: user, model."
    )
    undated = await http.post(
        f"{RESOURCE}/anthropic/models/claude-haiku-4-5:rawPredict", json=claude_body(), headers=bearer()
    )
    error = undated.json()["error"]
    assert (
        undated.status_code == 404
        and error["status"] == "NOT_FOUND"
        and "Publisher Model" in error["message"]
    )


# --- faults ----------------------------------------------------------------------------------------


async def test_throttling_is_resource_exhausted_an_array_on_stream_raw_predict(
    mock: MockServer, http: httpx.AsyncClient
) -> None:
    mock.state.faults.add("vertex", CLAUDE, {"kind": "status", "status": 429, "retry_after": 4}, times=2)
    url = f"{RESOURCE}/anthropic/models/{CLAUDE}"
    plain = await http.post(f"{url}:rawPredict", json=claude_body(), headers=bearer())
    error = plain.json()["error"]
    assert plain.status_code == 429 and error["status"] == "RESOURCE_EXHAUSTED"
    assert error["details"] == [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "4s"}]
    streamed = await http.post(f"{url}:streamRawPredict", json=claude_body(stream=True), headers=bearer())
    assert streamed.status_code == 429 and streamed.json()[0]["error"]["status"] == "RESOURCE_EXHAUSTED"
    mock.state.faults.add("vertex", "gemini-2.5-flash", {"kind": "status", "status": 503})
    down = await http.post(
        f"{RESOURCE}/google/models/gemini-2.5-flash:generateContent",
        json={"contents": [{"role": "user", "parts": [{"text": "hi"}]}]},
        headers=bearer(),
    )
    assert down.status_code == 503 and down.json()["error"]["status"] == "UNAVAILABLE"
    mock.state.faults.add("vertex", CLAUDE, {"kind": "status", "status": 529})
    overloaded = await http.post(f"{url}:rawPredict", json=claude_body(), headers=bearer())
    assert overloaded.json()["error"]["type"] == "overloaded_error"  # Claude's own, in Anthropic's envelope


# --- the token endpoint ----------------------------------------------------------------------------


async def key_file(http: httpx.AsyncClient, tmp_path: Path, **spec: Any) -> dict[str, str]:
    root = str(http.base_url).removesuffix("/").removesuffix("/vertex")
    answer = await http.post(f"{root}/__mock__/vertex/service-account", json={"project": PROJECT, **spec})
    key: dict[str, str] = answer.json()
    assert key["token_uri"].endswith("/vertex/token") and key["type"] == "service_account"
    return key


async def test_google_auth_exchanges_the_key_for_a_token_the_models_accept(
    mock: MockServer, tmp_path: Path
) -> None:
    async with httpx.AsyncClient(base_url=mock.url, timeout=5.0) as http:
        key = await key_file(http, tmp_path, lifetime_s=2)
        credentials = service_account.Credentials.from_service_account_info(key, scopes=[SCOPE])
        await asyncio.to_thread(credentials.refresh, Request())
        assert credentials.token.startswith("ya29.mock-")
        url = f"/vertex{RESOURCE}/anthropic/models/{CLAUDE}:rawPredict"
        assert (
            await http.post(url, json=claude_body(), headers=bearer(credentials.token))
        ).status_code == 200
        await asyncio.sleep(2.1)
        expired = await http.post(url, json=claude_body(), headers=bearer(credentials.token))
        assert (
            expired.status_code == 401
            and expired.json()["error"]["details"][0]["reason"] == "ACCESS_TOKEN_EXPIRED"
        )
        unscoped = service_account.Credentials.from_service_account_info(key, scopes=["openid"])
        await asyncio.to_thread(unscoped.refresh, Request())
        scoped_out = await http.post(url, json=claude_body(), headers=bearer(unscoped.token))
        assert scoped_out.status_code == 403 and scoped_out.json()["error"]["status"] == "PERMISSION_DENIED"


def assertion(claims: dict[str, Any], key: dict[str, str]) -> str:
    """A JWT signed with ``key``'s private key, as google-auth would make one (with other claims)."""
    signer = crypt.RSASigner.from_service_account_info(key)
    return jwt.encode(signer, claims).decode()


@pytest.mark.parametrize(
    ("change", "error", "description"),
    [
        ({"aud": "http://127.0.0.1/vertex/token"}, "invalid_grant", "Invalid JWT: Failed audience check"),
        ({"exp_after": 7200}, "invalid_grant", "Token must be a short-lived token (60 minutes)"),
        (
            {"iss": "nobody@router-test.iam.gserviceaccount.com"},
            "invalid_grant",
            "Invalid grant: account not found",
        ),
        ({"forge": True}, "invalid_grant", "Invalid JWT Signature."),
        ({"scope": ""}, "invalid_scope", "Invalid OAuth scope"),
        ({"grant_type": "client_credentials"}, "unsupported_grant_type", "Invalid grant_type"),
    ],
    ids=["audience", "lifetime", "account", "signature", "scope", "grant-type"],
)
async def test_the_token_endpoint_refuses_assertions_google_would(
    http: httpx.AsyncClient, tmp_path: Path, change: dict[str, Any], error: str, description: str
) -> None:
    key = await key_file(http, tmp_path)
    now = int(time.time())
    claims = {
        "iss": change.get("iss", key["client_email"]),
        "aud": change.get("aud", "https://oauth2.googleapis.com/token"),
        "scope": change.get("scope", SCOPE),
        "iat": now,
        "exp": now + change.get("exp_after", 3600),
    }
    # Forged: this account's claims signed with another account's key.
    signed = assertion(claims, (await key_file(http, tmp_path)) if change.get("forge") else key)
    form = {
        "grant_type": change.get("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
        "assertion": signed,
    }
    answer = await http.post("/token", data=form)
    assert answer.status_code == 400
    assert answer.json()["error"] == error and description in answer.json()["error_description"]
    assert json.dumps(answer.json()).count("PRIVATE KEY") == 0
