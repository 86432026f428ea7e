"""The simulated Bedrock runtime, called as botocore's own signer and decoder would see it: real frames,
SigV4 refusals with AWS's bodies and ``x-amzn-ErrorType``, bearer keys, and its faults."""

from __future__ import annotations

import datetime
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.eventstream import EventStreamBuffer

from router.mock.bedrock_wire import ACCESS_KEY, SECRET_KEY
from router.mock.server import MockServer

MODEL = "us.anthropic.claude-haiku-4-5-20251001-v1:0"
BODY = {
    "messages": [{"role": "user", "content": [{"text": "say words=3"}]}],
    "inferenceConfig": {"maxTokens": 50},
}


@pytest.fixture()
async def mock() -> AsyncIterator[MockServer]:
    async with MockServer() as server:
        yield server


def signed(
    url: str, body: bytes, secret: str = SECRET_KEY, when: datetime.datetime | None = None
) -> dict[str, str]:
    request = AWSRequest(method="POST", url=url, headers={"content-type": "application/json"}, data=body)
    signer = SigV4Auth(Credentials(ACCESS_KEY, secret), "bedrock", "us-east-1")
    if when is None:
        signer.add_auth(request)
    else:  # botocore's steps at another time
        request.context["timestamp"] = when.strftime("%Y%m%dT%H%M%SZ")
        signer._modify_request_before_signing(request)
        canonical = signer.canonical_request(request)
        signer._inject_signature_to_request(
            request, signer.signature(signer.string_to_sign(request, canonical), request)
        )
    return dict(request.headers.items())


def url(mock: MockServer, operation: str = "converse") -> str:
    return f"{mock.url}/bedrock/model/{MODEL.replace(':', '%3A')}/{operation}"


async def post(mock: MockServer, operation: str = "converse", **sign: Any) -> httpx.Response:
    body = json.dumps(BODY).encode()
    async with httpx.AsyncClient() as client:
        return await client.post(
            url(mock, operation), content=body, headers=signed(url(mock, operation), body, **sign)
        )


async def test_a_botocore_signed_converse_call_is_answered(mock: MockServer) -> None:
    answer = await post(mock)
    assert answer.status_code == 200
    body = answer.json()
    assert body["output"]["message"]["content"] == [{"text": "lorem ipsum dolor"}]
    assert body["stopReason"] == "end_turn" and body["usage"]["outputTokens"] == 3


async def test_the_stream_is_event_stream_frames_botocore_decodes(mock: MockServer) -> None:
    answer = await post(mock, "converse-stream")
    assert answer.headers["content-type"] == "application/vnd.amazon.eventstream"
    buffer = EventStreamBuffer()
    buffer.add_data(answer.content)
    messages = list(buffer)
    kinds = [m.headers[":event-type"] for m in messages]
    assert kinds[0] == "messageStart" and kinds[-2:] == ["messageStop", "metadata"]
    assert all(
        m.headers[":message-type"] == "event" and m.headers[":content-type"] == "application/json"
        for m in messages
    )
    text = "".join(
        json.loads(m.payload)["delta"].get("text", "")
        for m in messages
        if m.headers[":event-type"] == "contentBlockDelta"
    )
    assert text == "lorem ipsum dolor"
    assert all("p" in json.loads(m.payload) for m in messages)  # Bedrock's padding


async def test_a_wrong_secret_is_refused_as_aws_does(mock: MockServer) -> None:
    answer = await post(mock, secret="not-the-secret")
    assert answer.status_code == 403
    assert answer.headers["x-amzn-errortype"].startswith("InvalidSignatureException:")
    assert answer.json()["message"].startswith("The request signature we calculated does not match")


async def test_a_skewed_date_is_refused_as_expired(mock: MockServer) -> None:
    old = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=20)
    answer = await post(mock, when=old)
    assert answer.status_code == 403
    assert answer.headers["x-amzn-errortype"].startswith("InvalidSignatureException:")
    assert answer.json()["message"].startswith(
        f"Signature expired: {old.strftime('%Y%m%dT%H%M%SZ')} is now earlier than"
    )


async def test_an_unknown_key_and_a_missing_signature(mock: MockServer) -> None:
    mock.state.set_required_key("bedrock", "AKIAOTHER:other-secret")
    answer = await post(mock)
    assert answer.status_code == 403 and answer.headers["x-amzn-errortype"].startswith(
        "UnrecognizedClientException:"
    )
    async with httpx.AsyncClient() as client:
        bare = await client.post(url(mock), json=BODY)
    assert bare.status_code == 403 and bare.json() == {"message": "Missing Authentication Token"}


async def test_a_bearer_key_and_a_required_one(mock: MockServer) -> None:
    async with httpx.AsyncClient() as client:
        ok = await client.post(url(mock), json=BODY, headers={"authorization": "Bearer ABSK-any"})
        mock.state.set_required_key("bedrock", "ABSK-right")
        refused = await client.post(url(mock), json=BODY, headers={"authorization": "Bearer ABSK-wrong"})
    assert ok.status_code == 200 and refused.status_code == 403


@pytest.mark.parametrize(
    ("fault", "status", "name"),
    [
        ({"kind": "status", "status": 429}, 429, "ThrottlingException"),
        ({"kind": "status", "status": 429, "type": "ModelNotReadyException"}, 429, "ModelNotReadyException"),
        ({"kind": "status", "status": 400}, 400, "ValidationException"),
    ],
)
async def test_status_faults_are_bedrocks_errors(
    mock: MockServer, fault: dict[str, Any], status: int, name: str
) -> None:
    mock.state.faults.add("bedrock", MODEL, fault)
    answer = await post(mock)
    assert answer.status_code == status and answer.headers["x-amzn-errortype"].split(":")[0] == name
    assert answer.json()["message"]


async def test_bedrocks_own_checks(mock: MockServer) -> None:
    bad = {"messages": [{"role": "assistant", "content": [{"text": "hi"}]}]}
    body = json.dumps(bad).encode()
    async with httpx.AsyncClient() as client:
        answer = await client.post(url(mock), content=body, headers=signed(url(mock), body))
    assert answer.status_code == 400 and answer.headers["x-amzn-errortype"].startswith("ValidationException:")
    assert answer.json()["message"].startswith("A conversation must start with a user message.")
