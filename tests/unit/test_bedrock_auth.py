"""Bedrock authentication: SigV4 against AWS's test vector and the simulated runtime's own verifier,
credentials kept fresh off the event loop, and the catalog's reading of region and credential source."""

from __future__ import annotations

import asyncio
import datetime
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials, RefreshableCredentials

from router.catalog import CatalogError, parse_catalog
from router.catalog.aws import AwsAccess
from router.errors import ProviderNotConfigured
from router.mock import bedrock_wire
from router.providers._aws import BearerSigner, SigV4Signer, _ClockedSigV4, sigv4_headers

# AWS's SigV4 test suite, case post-x-www-form-urlencoded (botocore tests/unit/auth/aws4_testsuite).
VECTOR_SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
VECTOR_STS = (
    "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n"
    "42a5e5bb34198acb3e84da4f085bb7927f2bc277ca766e6d19c73c2154021281"
)
VECTOR_AUTHZ = (
    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
    "SignedHeaders=content-type;host;x-amz-date, "
    "Signature=ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a"
)
FIXED = datetime.datetime(2026, 8, 6, 12, 1, 2, tzinfo=datetime.UTC).timestamp()
URL = "https://bedrock-runtime.us-east-1.amazonaws.com/model/us.anthropic.claude-sonnet-4-5-20250929-v1%3A0/converse"


def test_the_signer_matches_the_aws_test_vector() -> None:
    request = AWSRequest(
        method="POST",
        url="https://example.amazonaws.com/",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        data=b"Param1=value1",
    )
    _ClockedSigV4(
        Credentials("AKIDEXAMPLE", VECTOR_SECRET), "us-east-1", "20150830T123600Z", "service"
    ).add_auth(request)
    assert request.headers["Authorization"] == VECTOR_AUTHZ


def test_the_simulated_runtime_verifies_the_aws_test_vector() -> None:
    headers = {
        "content-type": ["application/x-www-form-urlencoded"],
        "host": ["example.amazonaws.com"],
        "x-amz-date": ["20150830T123600Z"],
    }
    signed = ["content-type", "host", "x-amz-date"]
    scope = "20150830/us-east-1/service/aws4_request"
    sts = bedrock_wire.string_to_sign(
        "POST", "/", "", headers, signed, b"Param1=value1", "20150830T123600Z", scope
    )
    assert sts == VECTOR_STS
    assert VECTOR_AUTHZ.endswith(
        bedrock_wire.signature(VECTOR_SECRET, "20150830", "us-east-1", "service", sts)
    )


def test_a_signed_bedrock_call_at_a_fixed_time_is_what_the_simulated_runtime_accepts() -> None:
    credentials = Credentials("AKIDEXAMPLE", VECTOR_SECRET, "session-token")
    body = b'{"messages":[]}'
    base = {"content-type": "application/json", "user-agent": "router/0.1"}
    headers = sigv4_headers(credentials, "us-east-1", URL, base, body, FIXED)
    assert headers["X-Amz-Date"] == "20260806T120102Z" and headers["X-Amz-Security-Token"] == "session-token"
    authorization = headers["Authorization"]
    assert "Credential=AKIDEXAMPLE/20260806/us-east-1/bedrock/aws4_request" in authorization
    assert (
        "SignedHeaders=content-type;host;x-amz-date;x-amz-security-token," in authorization
    )  # not user-agent
    assert "host" not in {name.lower() for name in headers}  # the HTTP client writes it
    received = {k.lower(): [v] for k, v in headers.items()} | {
        "host": ["bedrock-runtime.us-east-1.amazonaws.com"]
    }
    signed = ["content-type", "host", "x-amz-date", "x-amz-security-token"]
    scope = "20260806/us-east-1/bedrock/aws4_request"
    path = (
        "/model/us.anthropic.claude-sonnet-4-5-20250929-v1%3A0/converse"  # ':' sent as %3A, signed as %253A
    )
    sts = bedrock_wire.string_to_sign("POST", path, "", received, signed, body, "20260806T120102Z", scope)
    expected = bedrock_wire.signature(VECTOR_SECRET, "20260806", "us-east-1", "bedrock", sts)
    assert authorization.endswith(f"Signature={expected}")
    assert (
        bedrock_wire.canonical_uri(path) == "/model/us.anthropic.claude-sonnet-4-5-20250929-v1%253A0/converse"
    )


async def test_a_bearer_key_is_sent_as_it_is() -> None:
    headers = await BearerSigner("ABSK-key").sign(URL, {"accept": "application/json"}, b"{}", FIXED)
    assert headers == {"accept": "application/json", "authorization": "Bearer ABSK-key"}


# --- credentials -----------------------------------------------------------------------------------

ACCESS = AwsAccess(region="us-east-1", kind="chain", source="test chain")


class Resolver:
    """A credential chain that records the thread it runs on."""

    def __init__(self, found: Any) -> None:
        self.found = found
        self.threads: list[str] = []

    def __call__(self) -> Any:
        self.threads.append(threading.current_thread().name)
        return self.found


def refreshable(expires_in_s: float, counter: list[int]) -> RefreshableCredentials:
    def refresh() -> dict[str, str]:
        counter.append(1)
        expiry = datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=1)
        return {"access_key": "AKIDNEW", "secret_key": "s", "token": "t", "expiry_time": expiry.isoformat()}

    expiry = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=expires_in_s)
    return RefreshableCredentials("AKIDOLD", "s", "t", expiry, refresh, "test")


async def test_credentials_are_resolved_in_a_thread_when_the_adapter_starts() -> None:
    resolver = Resolver(Credentials("AKIDEXAMPLE", "s"))
    signer = SigV4Signer("bedrock", ACCESS, resolver)
    headers = await signer.sign(URL, {}, b"{}", FIXED)
    await signer.sign(URL, {}, b"{}", FIXED)
    assert "AKIDEXAMPLE" in headers["Authorization"]
    assert len(resolver.threads) == 1 and resolver.threads[0] != threading.current_thread().name
    await signer.aclose()


async def test_credentials_near_expiry_are_refreshed_in_the_background() -> None:
    refreshed: list[int] = []
    signer = SigV4Signer("bedrock", ACCESS, Resolver(refreshable(14 * 60, refreshed)))
    first = await signer.sign(URL, {}, b"{}", FIXED)
    # Within botocore's advisory window (15 minutes) the frozen copy may already be the new one;
    # once refreshed, later calls sign with the new key without waiting.
    for _ in range(50):
        await asyncio.sleep(0.01)
        if refreshed:
            break
    later = await signer.sign(URL, {}, b"{}", FIXED)
    assert refreshed and "AKIDNEW" in later["Authorization"] and "Credential=" in first["Authorization"]
    await signer.aclose()


async def test_no_credentials_is_a_503_naming_the_source_and_is_not_retried_at_once() -> None:
    resolver = Resolver(None)
    signer = SigV4Signer("bedrock", ACCESS, resolver)
    for _ in range(3):
        with pytest.raises(ProviderNotConfigured) as caught:
            await signer.sign(URL, {}, b"{}", FIXED)
    assert caught.value.status == 503 and "test chain" in caught.value.message
    assert len(resolver.threads) == 1
    await signer.aclose()


# --- catalog ---------------------------------------------------------------------------------------

CATALOG = """
providers:
  bedrock: {{kind: bedrock{extra}}}
models:
  m: {{provider: bedrock, upstream: amazon.nova-pro-v1:0, context_window: 1000, max_output: 100,
      quality: 1, price: {{input: 1, output: 1}}, speed: {{ttft_ms: 1, tokens_per_s: 1}}}}
"""


def provider(environ: Mapping[str, str], extra: str = "") -> Any:
    return parse_catalog(CATALOG.format(extra=extra), {"HOME": "/nonexistent", **environ}).providers[
        "bedrock"
    ]


def test_region_and_credentials_from_the_environment() -> None:
    found = provider({"AWS_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "s"})
    assert found.configured and found.base_url == "https://bedrock-runtime.eu-west-1.amazonaws.com"
    assert found.aws.source == "AWS credentials from environment (AWS_ACCESS_KEY_ID)"
    assert "AKID" not in repr(found) and "AKID" not in found.aws.source


def test_a_bedrock_api_key_is_preferred_and_kept_out_of_messages() -> None:
    found = provider({"AWS_DEFAULT_REGION": "us-west-2", "AWS_BEARER_TOKEN_BEDROCK": "ABSK-secret-key"})
    assert found.aws.kind == "bearer" and found.api_key_env == "AWS_BEARER_TOKEN_BEDROCK"


def test_a_profile_in_the_catalog_and_the_base_url_override() -> None:
    found = provider(
        {"ROUTER_BEDROCK_BASE_URL": "http://127.0.0.1:9/bedrock"}, ", region: us-east-1, profile: ops"
    )
    assert found.aws.profile == "ops" and found.base_url == "http://127.0.0.1:9/bedrock" and found.configured


def test_what_a_bedrock_provider_lacks_is_said_as_what_to_do() -> None:
    found = provider({})
    assert not found.configured and found.base_url == ""
    assert found.remedy().startswith("set AWS credentials (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
    assert found.remedy().endswith(" and set AWS_REGION")


def test_an_instance_role_is_taken_only_when_said(tmp_path: Path) -> None:
    assert not provider({"AWS_REGION": "us-east-1"}).configured
    said = provider({"AWS_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "false"})
    assert said.configured and "instance role" in said.aws.source
    (tmp_path / ".aws").mkdir()
    (tmp_path / ".aws" / "credentials").write_text("[default]\n")
    shared = parse_catalog(CATALOG.format(extra=", region: us-east-1"), {"HOME": str(tmp_path)})
    assert shared.providers["bedrock"].configured


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (", region: Virginia", "providers.bedrock.region: 'Virginia' is not an AWS region"),
        (", region: us-east-1, api_key_env: KEY", "providers.bedrock.api_key_env: a bedrock provider takes"),
        (
            ", region: us-east-1, auto_cache: true",
            "providers.bedrock.auto_cache: auto_cache is not available",
        ),
    ],
)
def test_bad_bedrock_settings_name_the_field(extra: str, message: str) -> None:
    with pytest.raises(CatalogError, match=message):
        provider({}, extra)


def test_region_and_profile_are_refused_on_other_kinds() -> None:
    text = CATALOG.format(extra="").replace(
        "kind: bedrock", "kind: anthropic, base_url: 'https://a.b', region: us-east-1"
    )
    with pytest.raises(CatalogError, match="region is an AWS Bedrock or Google Vertex AI setting"):
        parse_catalog(text, {})
    profiled = text.replace("region: us-east-1", "profile: ops")
    with pytest.raises(CatalogError, match="profile is an AWS Bedrock setting"):
        parse_catalog(profiled, {})
