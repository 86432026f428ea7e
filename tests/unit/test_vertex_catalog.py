"""Vertex AI providers in the catalog: project and region from the catalog or Google's variables, the
URL derived from the region, the credential source, what a provider lacks and how to fix it, and the
entries refused at load with their line."""

from __future__ import annotations

import pytest

from router.catalog import CatalogError, parse_catalog
from router.catalog.schema import ProviderSpec
from router.catalog.vertex import INSTALL_GCP, vertex_setup

MODEL = """
models:
  m: {provider: vertex, upstream: UPSTREAM, context_window: 200000, max_output: 1000, quality: 50,
      price: {input: 1, output: 2}, speed: {ttft_ms: 500, tokens_per_s: 50}}
"""


def catalog_text(
    provider: str = "{kind: vertex}", upstream: str = "gemini-2.5-flash", extra: str = ""
) -> str:
    return f"providers:\n  vertex: {provider}\n{extra}" + MODEL.replace("UPSTREAM", upstream)


def refusal(text: str, environ: dict[str, str] | None = None) -> str:
    with pytest.raises(CatalogError) as info:
        parse_catalog(text, environ or {})
    return str(info.value)


def test_project_and_region_come_from_the_catalog_else_google_s_variables() -> None:
    from_env = parse_catalog(
        catalog_text(), {"GOOGLE_CLOUD_PROJECT": "env-project", "GOOGLE_CLOUD_LOCATION": "europe-west4"}
    ).providers["vertex"]
    assert from_env.vertex is not None
    assert (from_env.vertex.project, from_env.vertex.region) == ("env-project", "europe-west4")
    assert from_env.base_url == "https://europe-west4-aiplatform.googleapis.com"
    pinned = parse_catalog(
        catalog_text("{kind: vertex, project: my-project, region: global}"),
        {"GOOGLE_CLOUD_PROJECT": "env-project", "GOOGLE_CLOUD_LOCATION": "europe-west4"},
    ).providers["vertex"]
    assert pinned.vertex is not None and pinned.vertex.project == "my-project"
    assert pinned.base_url == "https://aiplatform.googleapis.com"


def test_a_provider_without_project_or_region_says_which_variables_to_set() -> None:
    bare = parse_catalog(catalog_text(), {}).providers["vertex"]
    assert not bare.configured
    assert bare.missing == ("GOOGLE_CLOUD_PROJECT", "GOOGLE_CLOUD_LOCATION")
    assert bare.remedy() == "set GOOGLE_CLOUD_PROJECT and GOOGLE_CLOUD_LOCATION"


def test_without_the_extra_google_auth_credentials_need_it_installed_a_static_token_does_not() -> None:
    spec = ProviderSpec(kind="vertex", project="my-project", region="us-east5")
    absent = vertex_setup(("providers", "vertex"), spec, {}, "VERTEX", installed=lambda: False)
    assert absent.missing == (INSTALL_GCP,) and absent.access.credentials == "default"
    assert "install router[gcp]" in INSTALL_GCP
    token = vertex_setup(
        ("providers", "vertex"),
        spec,
        {"ROUTER_VERTEX_ACCESS_TOKEN": "ya29.x"},
        "VERTEX",
        installed=lambda: False,
    )
    assert token.missing == () and token.token == "ya29.x" and token.access.credentials == "token"
    keyfile = vertex_setup(
        ("providers", "vertex"),
        spec,
        {"GOOGLE_APPLICATION_CREDENTIALS": "/k.json"},
        "VERTEX",
        installed=lambda: True,
    )
    assert keyfile.missing == () and keyfile.access.credentials_file == "/k.json"


def test_the_static_token_is_the_provider_s_secret_kept_out_of_its_repr() -> None:
    provider = parse_catalog(
        catalog_text("{kind: vertex, project: my-project, region: us}"),
        {"ROUTER_VERTEX_ACCESS_TOKEN": "ya29.secret"},
    ).providers["vertex"]
    assert provider.configured and provider.api_key == "ya29.secret"
    assert "secret" not in repr(provider)
    assert provider.base_url == "https://aiplatform.us.rep.googleapis.com"
    assert provider.vertex is not None
    assert provider.vertex.describe() == "static access token (ROUTER_VERTEX_ACCESS_TOKEN; not refreshed)"


@pytest.mark.parametrize(
    ("provider", "upstream", "environ", "expected"),
    [
        (
            "{kind: vertex, api_key_env: VERTEX_KEY}",
            "gemini-2.5-flash",
            {},
            "providers.vertex.api_key_env: a Vertex AI provider takes no API key",
        ),
        (
            "{kind: vertex, region: US-East5}",
            "gemini-2.5-flash",
            {},
            "providers.vertex.region: 'US-East5' is not a Vertex AI region",
        ),
        (
            "{kind: vertex}",
            "gemini-2.5-flash",
            {"GOOGLE_CLOUD_PROJECT": "a/b"},
            "'a/b' (from GOOGLE_CLOUD_PROJECT) is not a Vertex AI project",
        ),
        (
            "{kind: vertex, region: global, base_url: 'https://aiplatform.googleapis.com/v1'}",
            "gemini-2.5-flash",
            {},
            "holds an API path: give the host alone",
        ),
        (
            "{kind: vertex}",
            "claude-sonnet-4-5-20250929",
            {},
            "on Vertex the version follows an @: claude-sonnet-4-5@20250929",
        ),
        ("{kind: vertex}", "llama-3.3-70b", {}, "no Vertex model id the router can call"),
        (
            "{kind: anthropic, base_url: 'https://api.anthropic.com', region: us-east5}",
            "claude-x",
            {},
            "region is an AWS Bedrock or Google Vertex AI setting",
        ),
    ],
    ids=["api-key", "region", "project", "url-path", "dated-claude", "other-publisher", "region-elsewhere"],
)
def test_entries_refused_at_load_name_the_line_the_field_and_the_fix(
    provider: str, upstream: str, environ: dict[str, str], expected: str
) -> None:
    message = refusal(catalog_text(provider, upstream), environ)
    assert message.startswith("<catalog>:") and expected in message


def test_a_vertex_model_answers_chat_only_and_takes_auto_cache_only_for_claude() -> None:
    responses = catalog_text().replace("quality: 50,", "quality: 50, endpoints: [chat, responses],")
    assert "a provider of kind 'vertex' has no responses API" in refusal(responses)
    gemini = catalog_text().replace("quality: 50,", "quality: 50, auto_cache: true,")
    assert "models.m.auto_cache: auto_cache marks Anthropic prompt-cache breakpoints" in refusal(gemini)
    claude = catalog_text(upstream="claude-haiku-4-5@20251001").replace(
        "quality: 50,", "quality: 50, auto_cache: true,"
    )
    model = parse_catalog(claude, {}).models["m"]
    assert model.auto_cache is not None and model.endpoints == frozenset({"chat"})
    cached_provider = catalog_text("{kind: vertex, auto_cache: true}")
    assert parse_catalog(cached_provider, {}).models["m"].auto_cache is None  # Gemini caches on its own
