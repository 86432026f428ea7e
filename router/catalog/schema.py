"""Catalog file schema: the Structs that ``catalog.yaml`` is validated against, field by field."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import Meta

ProviderKind = Literal["openai", "anthropic", "gemini", "azure", "bedrock", "vertex"]
# Azure OpenAI: the URL form its calls take, and how its credential is sent.
AzureApi = Literal["v1", "deployments"]
AzureAuth = Literal["api-key", "entra"]
Capability = Literal[
    "streaming",
    "tools",
    "vision",
    "json_object",
    "json_schema",
    "reasoning",
    "embeddings",
    "audio",
    "pdf",
]
# The upstream APIs a model answers on. Chat-capable means "chat" or "responses": the OpenAI adapter
# speaks Responses to a Responses-only model on behalf of a chat client.
Endpoint = Literal["chat", "responses", "completions", "embeddings"]
Strategy = Literal["fast", "speed", "fast-flex", "balanced", "balanced-flex", "quality", "cost"]
STRATEGIES: tuple[str, ...] = ("fast", "speed", "fast-flex", "balanced", "balanced-flex", "quality", "cost")

NonNegative = Annotated[float, Meta(ge=0)]
Positive = Annotated[float, Meta(gt=0)]
PositiveInt = Annotated[int, Meta(gt=0)]
EnvName = Annotated[str, Meta(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]


class Spec(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Policy for every catalog Struct: immutable, and a misspelt field is an error, not a default."""


class Timeouts(Spec, frozen=True):
    """Seconds. ``read`` bounds the silence between two reads; ``first_token`` bounds a stream's wait."""

    connect: Positive = 5.0
    read: Positive = 120.0
    total: Positive = 600.0
    first_token: Positive = 60.0


class Price(Spec, frozen=True):
    """USD per one million tokens. Prompt-cache reads cost ``cached_input`` and writes ``cache_write``
    (``cache_write_1h`` for Anthropic's one-hour entries); either absent means the ``input`` price."""

    input: NonNegative
    output: NonNegative
    cached_input: NonNegative | None = None
    cache_write: NonNegative | None = None
    cache_write_1h: NonNegative | None = None


CacheTTL = Literal["5m", "1h"]


class AutoCacheSpec(Spec, frozen=True):
    """Prompt-cache breakpoints the router adds to an Anthropic request that carries none of its own:
    on the tools, the system prompt and the latest turns, once the prompt is ``min_tokens`` long
    (Anthropic caches nothing shorter: 1,024 tokens for Sonnet 4.5, 4,096 for Haiku 4.5 and Opus 4.5)."""

    ttl: CacheTTL = "5m"
    min_tokens: PositiveInt = 1024


class Speed(Spec, frozen=True):
    """Priors for latency, used until measurements exist."""

    ttft_ms: Positive
    tokens_per_s: Positive


class ProviderSpec(Spec, frozen=True):
    kind: ProviderKind
    # Absent: the URL comes only from the variable ``base_url_env`` names (the provider is not
    # configured while it is unset), as an Azure resource's endpoint does; a Vertex AI provider's
    # is derived from its region.
    base_url: str | None = None
    api_key_env: EnvName | None = None
    base_url_env: EnvName | None = None
    timeouts: Timeouts = Timeouts()
    max_connections: PositiveInt = 256
    # OpenAI's reasoning models refuse ``max_tokens``; their provider renames it.
    max_tokens_param: Literal["max_tokens", "max_completion_tokens"] = "max_tokens"
    headers: dict[str, str] = {}
    description: str = ""
    # Anthropic only: ``true`` or ``{ttl, min_tokens}`` marks cache breakpoints on every model of it.
    auto_cache: bool | AutoCacheSpec = False
    # Azure only. ``api``: ``v1`` ({endpoint}/openai/v1/...) or ``deployments``
    # ({endpoint}/openai/deployments/{deployment}/...?api-version=...), which needs ``api_version``.
    # ``auth``: the credential in ``api_key_env`` is a resource key sent as ``api-key`` (``api-key``)
    # or a Microsoft Entra ID access token sent as ``Authorization: Bearer`` (``entra``).
    api: AzureApi | None = None
    # An unquoted 2024-10-21, which YAML reads as a date, is taken as the version it spells.
    api_version: str | None = None
    auth: AzureAuth | None = None
    # AWS Bedrock and Vertex AI only. ``region``: where calls go (Bedrock: and are signed for; default
    # AWS_REGION, then AWS_DEFAULT_REGION. Vertex: ``global``, ``us``, ``eu`` or a region such as
    # ``us-east5``; default GOOGLE_CLOUD_LOCATION). Without ``base_url`` the URL follows from it.
    region: str | None = None
    # AWS Bedrock only: the AWS profile whose credentials sign its calls (default: the standard chain,
    # AWS_PROFILE included).
    profile: str | None = None
    # Vertex AI only: the Google Cloud project (default GOOGLE_CLOUD_PROJECT).
    project: str | None = None


class DeploymentSpec(Spec, frozen=True):
    """One way to reach a model: a provider, the model's name there (an Azure deployment name, say),
    a share of the traffic, the provider key's own quota for it, and prices where they differ."""

    provider: str
    upstream: str | None = None
    weight: Positive = 1.0
    rpm: PositiveInt | None = None  # requests per minute this deployment's key may send
    tpm: PositiveInt | None = None  # tokens per minute
    price: Price | None = None
    flex_price: Price | None = None


class ModelSpec(Spec, frozen=True):
    context_window: PositiveInt
    max_output: PositiveInt
    price: Price
    quality: Annotated[int, Meta(ge=0, le=100)]
    speed: Speed
    # Exactly one of ``provider`` (one way in) or ``deployments`` (several).
    provider: str | None = None
    upstream: str | None = None
    flex_price: Price | None = None
    capabilities: list[Capability] = []
    # Default: ["embeddings"] for an embeddings model, else ["chat"].
    endpoints: list[Endpoint] | None = None
    description: str = ""
    fallbacks: list[str] = []
    # Anthropic only; overrides the provider's ``auto_cache`` (``false`` turns it off for this model).
    auto_cache: bool | AutoCacheSpec | None = None
    deployments: list[DeploymentSpec] = []


class AliasSpec(Spec, frozen=True):
    model: str
    service_tier: Literal["flex", "default", "priority", "auto"] | None = None


class BalancedWeights(Spec, frozen=True):
    quality: NonNegative = 0.5
    cost: NonNegative = 0.3
    latency: NonNegative = 0.2


class BreakerSpec(Spec, frozen=True):
    """Per-model circuit breaker policy (see router/routing/breaker.py for the state machine)."""

    consecutive_failures: PositiveInt = 5
    window_s: Positive = 60.0
    min_volume: PositiveInt = 10
    failure_rate: Annotated[float, Meta(gt=0, le=1)] = 0.5
    cooldown_s: Positive = 10.0
    max_cooldown_s: Positive = 300.0
    backoff: Annotated[float, Meta(ge=1)] = 2.0
    half_open_probes: PositiveInt = 1


class RetrySpec(Spec, frozen=True):
    """Retries of the same model for transient failures (5xx, 429, timeouts, broken connections)."""

    attempts_per_model: PositiveInt = 2
    initial_s: Positive = 0.2
    max_s: Positive = 2.0
    # A Retry-After longer than this moves on to the next model instead of waiting.
    retry_after_cap_s: NonNegative = 5.0


class RoutingSpec(Spec, frozen=True):
    # What an unknown ``model`` means: ``None`` answers 404, a strategy keyword routes by it.
    unknown_model_strategy: Strategy | None = None
    balanced: BalancedWeights = BalancedWeights()
    # Output tokens assumed when a request sets no limit (for cost and latency estimates).
    expected_output_tokens: PositiveInt = 500
    breaker: BreakerSpec = BreakerSpec()
    retry: RetrySpec = RetrySpec()
    # Every attempt of one request, retries and fallbacks included, must finish (or reach a stream's
    # first output) within this many seconds.
    deadline_s: Positive = 120.0
    # At most this many models are called for one request; candidates passed over without a call
    # (an open breaker, a spent model limit) do not count.
    max_models: PositiveInt = 5
    # A flex request refused for capacity (429) is sent again at the standard tier.
    flex_fallback_to_standard: bool = True


KeyName = Annotated[str, Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")]
# USD amounts of a budget: finite, at most a billion (0 allows only free models).
Usd = Annotated[float, Meta(ge=0, le=1e9)]
# A share of a budget, in percent.
Percent = Annotated[float, Meta(gt=0, le=100)]


class BudgetSpec(Spec, frozen=True):
    """Spend allowed per UTC day and per UTC calendar month, in USD at the catalog's prices; either
    may be left out (at least one is given)."""

    daily_usd: Usd | None = None
    monthly_usd: Usd | None = None


class LimitSpec(Spec, frozen=True):
    """Rate limits. Requests: a token bucket refilled at ``requests_per_minute`` holding at most
    ``burst`` (default: a tenth of a minute's requests, at least 1). Tokens: a budget of
    ``tokens_per_minute`` charged with the estimated prompt up front, corrected with actual usage.
    ``budget``: spend per day and month (see router/access/budgets.py)."""

    requests_per_minute: PositiveInt | None = None
    burst: PositiveInt | None = None
    tokens_per_minute: PositiveInt | None = None
    budget: BudgetSpec | None = None


class KeyDefaults(LimitSpec, frozen=True):
    """What every key that sets no value of its own gets (``ROUTER_API_KEY``'s key included)."""

    # Past this share of the key's budget, strategy keywords are served with ``cost``.
    downgrade_at_pct: Percent | None = None


class KeySpec(Spec, frozen=True):
    """One client API key: its value comes from ``key_env`` (or ``key``, when inline keys are allowed)."""

    name: KeyName
    key_env: EnvName | None = None
    key: str | None = None
    # Catalog ids, aliases or strategy keywords this key may ask for; absent means all.
    models: list[str] | None = None
    requests_per_minute: PositiveInt | None = None
    burst: PositiveInt | None = None
    tokens_per_minute: PositiveInt | None = None
    # Spend per UTC day and month; absent means the ``defaults`` budget, if any.
    budget: BudgetSpec | None = None
    # Past this share of its daily or monthly budget, the key's strategy keywords are served with
    # the ``cost`` strategy; absent means the ``defaults`` value, if any.
    downgrade_at_pct: Percent | None = None
    # Whether this key also opens the ops routes (/health, /metrics, /model-health).
    ops: bool = False


CORS_HEADERS = (
    "authorization",
    "content-type",
    "x-api-key",
    "openai-organization",
    "openai-project",
    "x-stainless-arch",
    "x-stainless-lang",
    "x-stainless-os",
    "x-stainless-package-version",
    "x-stainless-retry-count",
    "x-stainless-runtime",
    "x-stainless-runtime-version",
    "x-stainless-timeout",
)


class CorsSpec(Spec, frozen=True):
    """Cross-origin access for browser clients; no origins means CORS is off."""

    origins: list[str] = []
    allow_headers: list[str] = msgspec.field(default_factory=lambda: list(CORS_HEADERS))
    max_age_s: Annotated[int, Meta(ge=0)] = 600
    allow_credentials: bool = False


class AccessSpec(Spec, frozen=True):
    """Who may call the router and how much: keys, limits, the ops key, CORS and input bounds."""

    keys: list[KeySpec] = []
    defaults: KeyDefaults = KeyDefaults()
    # Limits over every request the router serves, whichever key sends it.
    global_: LimitSpec = msgspec.field(default_factory=LimitSpec, name="global")
    # Limits per concrete catalog model (to stay under an upstream quota), over every key.
    model_limits: dict[str, LimitSpec] = {}
    ops_key_env: EnvName | None = None
    allow_inline_keys: bool = False
    cors: CorsSpec = CorsSpec()
    # The HTTP server itself refuses requests with more than 100 headers (431, empty body).
    max_headers: Annotated[int, Meta(ge=8, le=100)] = 64
    max_header_bytes: Annotated[int, Meta(ge=1024, le=1_048_576)] = 32_768


MAX_CACHE_TTL_S = 30 * 86_400


class CacheSpec(Spec, frozen=True):
    """The response cache, off unless ``enabled`` (or ``ROUTER_CACHE_TTL_S`` > 0): an exact repeat of
    a request by the same key is answered with the answer kept for ``ttl_s`` seconds. In memory it
    keeps at most ``max_entries`` answers (least recently used out first), so it holds at most
    ``max_entries * max_entry_bytes`` bytes; a larger answer is served but not kept."""

    enabled: bool = False
    ttl_s: Annotated[int, Meta(gt=0, le=MAX_CACHE_TTL_S)] = 3600
    max_entries: Annotated[int, Meta(gt=0, le=10_000_000)] = 1000
    max_entry_bytes: Annotated[int, Meta(ge=1024, le=64 * 1024 * 1024)] = 256 * 1024


class CatalogFile(Spec, frozen=True):
    providers: dict[str, ProviderSpec]
    models: dict[str, ModelSpec]
    version: Literal[1] = 1
    aliases: dict[str, str | AliasSpec] = {}
    routing: RoutingSpec = RoutingSpec()
    access: AccessSpec = AccessSpec()
    cache: CacheSpec = CacheSpec()
