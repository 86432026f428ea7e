"""Catalog loading: the shipped catalog, resolution rules, and errors that say where the problem is."""

from __future__ import annotations

from pathlib import Path

import pytest

from router.catalog import STRATEGIES, CatalogError, load_catalog, parse_catalog

ROOT = Path(__file__).resolve().parents[2]

MINIMAL = """
providers:
  openai:
    kind: openai
    base_url: https://api.openai.com/v1
    api_key_env: OPENAI_API_KEY
models:
  gpt-5-mini:
    provider: openai
    context_window: 400000
    max_output: 128000
    price: {input: 0.25, output: 2.0}
    quality: 78
    speed: {ttft_ms: 900, tokens_per_s: 120}
aliases:
  mini: gpt-5-mini
"""


def test_shipped_catalog_has_every_listed_model_alias_and_price() -> None:
    catalog = load_catalog(ROOT / "catalog.yaml", {})
    expected = {
        "gpt-5": (1.25, 10.0, 400_000),
        "gpt-5-mini": (0.25, 2.0, 400_000),
        "gpt-5-nano": (0.05, 0.40, 400_000),
        "gpt-5.1": (1.25, 10.0, 400_000),
        "gpt-5.1-codex": (1.25, 10.0, 400_000),
        "gpt-5.2": (1.75, 14.0, 400_000),
        "sonnet-4-5": (3.0, 15.0, 200_000),
        "haiku-4-5": (1.0, 5.0, 200_000),
        "gemini-2.5-pro": (1.25, 10.0, 1_048_576),
        "gemini-2.5-flash": (0.30, 2.50, 1_048_576),
        "gemini-2.5-flash-lite": (0.10, 0.40, 1_048_576),
        "gemini-2.0-flash": (0.10, 0.40, 1_048_576),
        "gemini-2.0-flash-lite": (0.075, 0.30, 1_048_576),
        "gemini-3-pro-preview": (2.0, 12.0, 1_048_576),
        "gemini-3-flash-preview": (0.50, 3.0, 1_048_576),
    }
    for model_id, (price_in, price_out, context) in expected.items():
        model = catalog.models[model_id]
        assert (model.price.input, model.price.output, model.context_window) == (price_in, price_out, context)
        assert model.max_output <= model.context_window
        assert 0 <= model.quality <= 100
    aliases = {
        "gpt": "gpt-5.2",
        "gpt-mini": "gpt-5-mini",
        "gpt-nano": "gpt-5-nano",
        "sonnet": "sonnet-4-5",
        "claude-sonnet-4-5": "sonnet-4-5",
        "claude-sonnet-4-5-20250929": "sonnet-4-5",
        "haiku": "haiku-4-5",
        "claude-haiku-4-5": "haiku-4-5",
        "claude-haiku-4-5-20251001": "haiku-4-5",
        "gemini": "gemini-3-flash-preview",
        "gemini-flash": "gemini-3-flash-preview",
        "gemini-pro": "gemini-3-pro-preview",
        "gemini-flash-lite": "gemini-2.5-flash-lite",
        "gemini-2.5-pro-latest": "gemini-2.5-pro",
        "gemini-2.5-flash-latest": "gemini-2.5-flash",
    }
    for alias, target in aliases.items():
        resolved = catalog.lookup(alias)
        assert resolved is not None and resolved.model.id == target, alias
    flex = {
        "gpt-flex": ("gpt-5.2", 0.875, 7.0),
        "gpt-mini-flex": ("gpt-5-mini", 0.125, 1.0),
        "gpt-nano-flex": ("gpt-5-nano", 0.025, 0.20),
    }
    for alias, (target, price_in, price_out) in flex.items():
        resolved = catalog.lookup(alias)
        assert resolved is not None and resolved.model.id == target and resolved.service_tier == "flex"
        assert resolved.model.flex_price is not None
        assert (resolved.model.flex_price.input, resolved.model.flex_price.output) == (price_in, price_out)
    kinds = {name: p.kind for name, p in catalog.providers.items()}
    assert {name: kinds[name] for name in ("openai", "anthropic", "google", "ollama", "azure")} == {
        "openai": "openai",
        "anthropic": "anthropic",
        "google": "gemini",
        "ollama": "openai",
        "azure": "azure",
    }
    assert catalog.providers["ollama"].base_url == "http://127.0.0.1:11434/v1"
    assert catalog.providers["ollama"].configured


# provider → (base URL, key variable); checked against each provider's docs (2026-12).
HOSTED = {
    "groq": ("https://api.groq.com/openai/v1", "GROQ_API_KEY"),
    "mistral": ("https://api.mistral.ai/v1", "MISTRAL_API_KEY"),
    "deepseek": ("https://api.deepseek.com", "DEEPSEEK_API_KEY"),
    "xai": ("https://api.x.ai/v1", "XAI_API_KEY"),
    "together": ("https://api.together.xyz/v1", "TOGETHER_API_KEY"),
    "fireworks": ("https://api.fireworks.ai/inference/v1", "FIREWORKS_API_KEY"),
    "cerebras": ("https://api.cerebras.ai/v1", "CEREBRAS_API_KEY"),
    "openrouter": ("https://openrouter.ai/api/v1", "OPENROUTER_API_KEY"),
}


def test_shipped_catalog_has_the_hosted_providers_and_azure_keyless() -> None:
    catalog = load_catalog(ROOT / "catalog.yaml", {})
    for name, (base_url, variable) in HOSTED.items():
        provider = catalog.providers[name]
        assert (provider.kind, provider.base_url, provider.api_key_env) == ("openai", base_url, variable)
        assert provider.missing == (variable,)
        models = [m for m in catalog.models.values() if m.provider == name]
        assert 1 <= len(models) <= 2, name
        assert all(m.price.input > 0 and m.max_output <= m.context_window for m in models), name
    assert set(catalog.providers["openrouter"].headers) == {"HTTP-Referer", "X-Title"}
    azure = catalog.providers["azure"]
    assert azure.missing == ("AZURE_OPENAI_ENDPOINT", "AZURE_OPENAI_API_KEY")
    # gpt-5-mini is reached through OpenAI and through an Azure deployment of the same name.
    openai_way, azure_way = catalog.models["gpt-5-mini"].deployments
    assert (openai_way.key, azure_way.key, azure_way.upstream) == (
        "openai/gpt-5-mini",
        "azure/gpt-5-mini",
        "gpt-5-mini",
    )
    assert azure_way.price == openai_way.price and openai_way.flex_price is not None
    assert azure_way.flex_price is None  # flex is OpenAI's tier
    ready = load_catalog(
        ROOT / "catalog.yaml",
        {"AZURE_OPENAI_ENDPOINT": "https://res.openai.azure.com", "AZURE_OPENAI_API_KEY": "k" * 32},
    )
    assert ready.providers["azure"].configured


def test_keys_come_from_the_environment_only() -> None:
    without = parse_catalog(MINIMAL, {})
    with_key = parse_catalog(MINIMAL, {"OPENAI_API_KEY": "sk-test"})
    assert not without.providers["openai"].configured
    assert with_key.providers["openai"].api_key == "sk-test"
    assert "sk-test" not in repr(with_key.providers["openai"])


def test_base_url_is_overridden_by_environment() -> None:
    catalog = parse_catalog(MINIMAL, {"ROUTER_OPENAI_BASE_URL": "http://127.0.0.1:9999/v1/"})
    assert catalog.providers["openai"].base_url == "http://127.0.0.1:9999/v1"


def test_inline_key_is_refused_with_the_line() -> None:
    text = MINIMAL.replace("api_key_env: OPENAI_API_KEY", "api_key: sk-live-123")
    with pytest.raises(CatalogError) as info:
        parse_catalog(text, {}, source="cat.yaml")
    message = str(info.value)
    assert message.startswith("cat.yaml:")
    assert "providers.openai" in message and "api_key_env" in message


def test_key_written_as_variable_name_is_refused() -> None:
    text = MINIMAL.replace("api_key_env: OPENAI_API_KEY", "api_key_env: sk-proj-abcdef0123456789")
    with pytest.raises(
        CatalogError, match=r"cat.yaml:6: providers.openai.api_key_env: this looks like a key"
    ):
        parse_catalog(text, {}, source="cat.yaml")


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            ("context_window: 400000", "context_window: lots"),
            r"cat.yaml:10: models.gpt-5-mini.context_window: Expected `int`",
        ),
        (("provider: openai", "provider: opanai"), r"models.gpt-5-mini.provider: unknown provider 'opanai'"),
        (
            ("quality: 78", "quality: 78\n    colour: blue"),
            r"models.gpt-5-mini: Object contains unknown field `colour`",
        ),
        (
            ("mini: gpt-5-mini", "mini: gpt-5-mimi"),
            r"cat.yaml:16: aliases.mini: unknown model 'gpt-5-mimi' \(did you mean 'gpt-5-mini'\?\)",
        ),
        (("mini: gpt-5-mini", "fast: gpt-5-mini"), r"aliases.fast: an alias cannot be a strategy keyword"),
        (("max_output: 128000", "max_output: 900000"), r"max_output 900000 exceeds context_window"),
        (
            ("kind: openai", "kind: cohere"),
            r"cat.yaml:4: providers.openai.kind: Invalid enum value 'cohere'",
        ),
        (
            ("price: {input: 0.25, output: 2.0}", "price: {input: -1, output: 2.0}"),
            r"models.gpt-5-mini.price.input",
        ),
    ],
)
def test_bad_catalog_names_file_line_entry_and_field(edit: tuple[str, str], expected: str) -> None:
    with pytest.raises(CatalogError, match=expected):
        parse_catalog(MINIMAL.replace(*edit), {}, source="cat.yaml")


def test_yaml_syntax_error_names_the_line() -> None:
    with pytest.raises(CatalogError, match=r"cat.yaml:\d+: not valid YAML"):
        parse_catalog("providers: {openai: [", {}, source="cat.yaml")


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="cannot read the catalog"):
        load_catalog(tmp_path / "absent.yaml", {})


def test_nearest_names_suggest_real_entries() -> None:
    catalog = load_catalog(ROOT / "catalog.yaml", {})
    assert "gpt-5" in catalog.nearest("gpt5")
    assert "sonnet" in catalog.nearest("sonet")
    assert set(STRATEGIES) <= set(catalog.known_names())


ANTHROPIC = """
providers:
  anthropic:
    kind: anthropic
    base_url: https://api.anthropic.com
    auto_cache: true
  openai:
    kind: openai
    base_url: https://api.openai.com/v1
models:
  sonnet:
    provider: anthropic
    context_window: 200000
    max_output: 64000
    price: {input: 3.0, output: 15.0, cached_input: 0.3, cache_write: 3.75, cache_write_1h: 6.0}
    quality: 90
    speed: {ttft_ms: 1000, tokens_per_s: 70}
  haiku:
    provider: anthropic
    context_window: 200000
    max_output: 64000
    price: {input: 1.0, output: 5.0}
    quality: 75
    speed: {ttft_ms: 600, tokens_per_s: 130}
    auto_cache: {ttl: 1h, min_tokens: 4096}
  quiet:
    provider: anthropic
    context_window: 200000
    max_output: 64000
    price: {input: 1.0, output: 5.0}
    quality: 75
    speed: {ttft_ms: 600, tokens_per_s: 130}
    auto_cache: false
  gpt:
    provider: openai
    context_window: 400000
    max_output: 128000
    price: {input: 0.25, output: 2.0}
    quality: 78
    speed: {ttft_ms: 900, tokens_per_s: 120}
"""


def test_auto_cache_comes_from_the_model_or_else_its_provider() -> None:
    catalog = parse_catalog(ANTHROPIC, {})
    sonnet, haiku = catalog.models["sonnet"], catalog.models["haiku"]
    assert sonnet.auto_cache is not None and (sonnet.auto_cache.ttl, sonnet.auto_cache.min_tokens) == (
        "5m",
        1024,
    )
    assert haiku.auto_cache is not None and (haiku.auto_cache.ttl, haiku.auto_cache.min_tokens) == (
        "1h",
        4096,
    )
    assert catalog.models["quiet"].auto_cache is None
    assert catalog.models["gpt"].auto_cache is None
    assert (sonnet.price.cache_write, sonnet.price.cache_write_1h) == (3.75, 6.0)


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            ("quality: 78\n", "quality: 78\n    auto_cache: true\n"),
            r"cat.yaml:\d+: models.gpt.auto_cache: auto_cache marks Anthropic prompt-cache breakpoints; "
            r"a provider of kind 'openai'",
        ),
        (
            (
                "base_url: https://api.openai.com/v1",
                "base_url: https://api.openai.com/v1\n    auto_cache: true",
            ),
            r"cat.yaml:10: providers.openai.auto_cache: auto_cache marks Anthropic",
        ),
        (("ttl: 1h", "ttl: 2h"), r"cat.yaml:\d+: models.haiku.auto_cache.ttl: Invalid enum value '2h'"),
        (("min_tokens: 4096", "min_tokens: 0"), r"models.haiku.auto_cache.min_tokens: Expected `int` >= 1"),
        (("cache_write: 3.75", "cache_write: -1"), r"models.sonnet.price.cache_write: Expected `float` >= 0"),
        (("auto_cache: false", "auto_cache: maybe"), r"models.quiet.auto_cache: Expected `bool | object"),
    ],
)
def test_bad_cache_settings_name_the_line_and_field(edit: tuple[str, str], expected: str) -> None:
    with pytest.raises(CatalogError, match=expected):
        parse_catalog(ANTHROPIC.replace(*edit), {}, source="cat.yaml")


def test_shipped_anthropic_prices_carry_both_cache_write_rates() -> None:
    catalog = load_catalog(ROOT / "catalog.yaml", {})
    for model_id in ("sonnet-4-5", "haiku-4-5"):
        price = catalog.models[model_id].price
        assert price.cached_input == pytest.approx(price.input * 0.1)
        assert price.cache_write == pytest.approx(price.input * 1.25)
        assert price.cache_write_1h == pytest.approx(price.input * 2)


AZURE = """
providers:
  az:
    kind: azure
    base_url_env: AZURE_OPENAI_ENDPOINT
    api_key_env: AZURE_OPENAI_API_KEY
models:
  az-mini:
    provider: az
    upstream: gpt-5-mini
    context_window: 400000
    max_output: 128000
    price: {input: 0.25, output: 2.0}
    quality: 78
    speed: {ttft_ms: 900, tokens_per_s: 120}
"""
AZURE_ENV = {"AZURE_OPENAI_ENDPOINT": "https://res.openai.azure.com/", "AZURE_OPENAI_API_KEY": "k" * 20}


def test_an_azure_provider_waits_for_its_endpoint_and_its_key() -> None:
    bare = parse_catalog(AZURE, {}).providers["az"]
    assert not bare.configured and bare.missing == ("AZURE_OPENAI_ENDPOINT", "AZURE_OPENAI_API_KEY")
    assert bare.needs() == "AZURE_OPENAI_ENDPOINT and AZURE_OPENAI_API_KEY"
    keyed = parse_catalog(AZURE, {"AZURE_OPENAI_API_KEY": "k" * 20}).providers["az"]
    assert keyed.missing == ("AZURE_OPENAI_ENDPOINT",)
    ready = parse_catalog(AZURE, AZURE_ENV).providers["az"]
    assert ready.configured and ready.base_url == "https://res.openai.azure.com"
    assert ready.azure is not None and (ready.azure.api, ready.azure.auth) == ("v1", "api-key")


def test_an_unquoted_api_version_is_the_version_it_spells() -> None:
    text = AZURE.replace(
        "    api_key_env:", "    api: deployments\n    api_version: 2024-10-21\n    api_key_env:"
    )
    provider = parse_catalog(text, AZURE_ENV).providers["az"]
    assert provider.azure is not None and provider.azure.api_version == "2024-10-21"


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            ("    api_key_env: AZURE_OPENAI_API_KEY\n", ""),
            r"cat.yaml:3: providers.az.api_key_env: an Azure provider needs api_key_env",
        ),
        (
            ("    api_key_env:", "    api: deployments\n    api_key_env:"),
            r"providers.az.api_version: api: deployments needs api_version, e.g. 2024-10-21",
        ),
        (
            ("    api_key_env:", "    api: deployments\n    api_version: 2024-06-01\n    api_key_env:"),
            r"cat.yaml:7: providers.az.api_version: API version 2024-06-01 sends no usage in streams",
        ),
        (
            ("    api_key_env:", "    api: deployments\n    api_version: 2024/10/21\n    api_key_env:"),
            r"providers.az.api_version: '2024/10/21' is not an Azure API version",
        ),
        (
            ("    api_key_env:", "    api_version: 2024-10-21\n    api_key_env:"),
            r"providers.az.api_version: the v1 API takes no dated api-version",
        ),
        (
            ("    api_key_env:", "    api: v2\n    api_key_env:"),
            r"providers.az.api: Invalid enum value 'v2'",
        ),
        (
            ("    api_key_env:", "    auth: password\n    api_key_env:"),
            r"providers.az.auth: Invalid enum value 'password'",
        ),
        (
            (
                "    base_url_env: AZURE_OPENAI_ENDPOINT",
                "    base_url: https://res.openai.azure.com/openai/v1",
            ),
            r"providers.az.base_url: 'https://res.openai.azure.com/openai/v1' holds /openai",
        ),
        (
            ("    base_url_env: AZURE_OPENAI_ENDPOINT\n", ""),
            r"providers.az.base_url: give base_url, or base_url_env naming the variable",
        ),
        (
            ("    kind: azure", "    kind: openai\n    api: v1"),
            r"providers.az.api: api, api_version and auth are Azure OpenAI settings",
        ),
        (
            ("    quality: 78", "    quality: 78\n    endpoints: [completions]"),
            r"models.az-mini.endpoints: a provider of kind 'azure' has no completions API",
        ),
        (
            (
                "    api_key_env:",
                "    api: deployments\n    api_version: 2024-10-21\n    api_key_env:",
            ),
            None,
        ),
    ],
)
def test_a_bad_azure_provider_is_refused_naming_the_field(
    edit: tuple[str, str], expected: str | None
) -> None:
    text = AZURE.replace(*edit)
    if expected is None:  # the control: this edit alone is valid
        assert parse_catalog(text, AZURE_ENV, source="cat.yaml").providers["az"].configured
        return
    with pytest.raises(CatalogError, match=expected):
        parse_catalog(text, AZURE_ENV, source="cat.yaml")


def test_the_responses_api_on_azure_deployment_urls_needs_its_version() -> None:
    text = AZURE.replace(
        "    api_key_env:", "    api: deployments\n    api_version: '2024-10-21'\n    api_key_env:"
    ).replace("    quality: 78", "    quality: 78\n    endpoints: [chat, responses]")
    with pytest.raises(CatalogError, match=r"models.az-mini.endpoints: the Responses API on Azure needs"):
        parse_catalog(text, AZURE_ENV, source="cat.yaml")
    fine = text.replace("'2024-10-21'", "2025-04-01-preview")
    assert "responses" in parse_catalog(fine, AZURE_ENV).models["az-mini"].endpoints
