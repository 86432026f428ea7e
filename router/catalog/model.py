"""The resolved catalog: providers with their effective URL and key state, models, aliases, strategies."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping

import msgspec

from router.catalog.aws import BEARER_ENV, AwsAccess, AwsEntryError, aws_access, check_not_aws, endpoint
from router.catalog.entry import EntryError
from router.catalog.schema import (
    STRATEGIES,
    AccessSpec,
    AliasSpec,
    AutoCacheSpec,
    AzureApi,
    AzureAuth,
    BudgetSpec,
    CacheSpec,
    Capability,
    CatalogFile,
    DeploymentSpec,
    Endpoint,
    ModelSpec,
    Price,
    ProviderKind,
    ProviderSpec,
    RoutingSpec,
    Speed,
    Timeouts,
)
from router.catalog.vertex import (
    VertexAccess,
    check_vertex_model,
    check_vertex_url,
    refuse_vertex_fields,
    vertex_setup,
)
from router.errors import ModelNotFound


class AzureAccess(msgspec.Struct, frozen=True, kw_only=True):
    """How an Azure OpenAI provider is called: its URL form, API version and credential header."""

    api: AzureApi = "v1"
    api_version: str | None = None
    auth: AzureAuth = "api-key"


class Provider(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    kind: ProviderKind
    base_url: str  # empty while the variable that supplies it is unset
    api_key_env: str | None
    api_key: str | None = msgspec.field(default=None)
    timeouts: Timeouts
    max_connections: int
    max_tokens_param: str
    headers: dict[str, str]
    description: str = ""
    auto_cache: AutoCacheSpec | None = None
    # The variable that overrides the catalog's base URL (or, without one, supplies it).
    base_url_env: str = ""
    # What this provider waits for: the variables of its URL and key, unset (or an instruction, such
    # as installing the extra its credentials need). Missing anything, it cannot be called.
    missing: tuple[str, ...] = ()
    azure: AzureAccess | None = None
    aws: AwsAccess | None = None
    vertex: VertexAccess | None = None

    @property
    def configured(self) -> bool:
        """A provider is usable when nothing it needs from the environment is missing."""
        return not self.missing

    def needs(self) -> str:
        """What this provider lacks: ``A`` or ``A and B``."""
        return " and ".join(self.missing)

    def remedy(self) -> str:
        """What to do before it can be called: ``set A and B``, ``install router[gcp] ...``."""
        return remedy(self.missing)

    def __repr__(self) -> str:  # never show the key, even in a debugger or a traceback
        return f"Provider(name={self.name!r}, kind={self.kind!r}, base_url={self.base_url!r})"


_VARIABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def remedy(missing: Iterable[str], joiner: str = " and ") -> str:
    """What to do about what ``missing`` lists: each instruction as it is, then ``set`` the
    variables (``install router[gcp] ... and set A and B``; ``joiner`` " or " for alternatives)."""
    items = list(dict.fromkeys(missing))
    variables = [item for item in items if _VARIABLE.match(item)]
    steps = [item for item in items if not _VARIABLE.match(item)]
    if variables:
        steps.append("set " + joiner.join(variables))
    return joiner.join(steps)


class Model(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    provider: str
    upstream: str
    context_window: int
    max_output: int
    price: Price
    flex_price: Price | None
    capabilities: frozenset[Capability]
    endpoints: frozenset[Endpoint]
    quality: int
    speed: Speed
    description: str
    fallbacks: tuple[str, ...]
    # The prompt-cache breakpoints the router adds by itself (Anthropic models), or None.
    auto_cache: AutoCacheSpec | None = None
    # A model reached through several deployments lists them here, each a view of this model with its
    # own provider, upstream name and prices (``provider``/``upstream`` above are the first one's). A
    # view carries its ``deployment`` id (``provider/model``) and none of its own.
    deployments: tuple[Model, ...] = ()
    deployment: str | None = None
    weight: float = 1.0
    rpm: int | None = None
    tpm: int | None = None

    @property
    def key(self) -> str:
        """What its breaker and statistics are kept under: the deployment, else the model."""
        return self.deployment or self.id

    def views(self) -> tuple[Model, ...]:
        """The deployments to try for this model: its views, or itself when it has one way in."""
        return self.deployments or (self,)


class Target(msgspec.Struct, frozen=True):
    """What a catalog id or alias names: a model, possibly at a given service tier."""

    model: Model
    service_tier: str | None = None


class Catalog(msgspec.Struct, frozen=True, kw_only=True):
    providers: dict[str, Provider]
    models: dict[str, Model]
    aliases: dict[str, AliasSpec]
    routing: RoutingSpec
    access: AccessSpec = AccessSpec()
    # ``provider/model`` → that one deployment of the model (a view, or the model when it has one).
    pins: dict[str, Model] = {}
    cache: CacheSpec = CacheSpec()

    def lookup(self, name: str) -> Target | None:
        """Resolve a catalog id, an alias or a pinned deployment (``azure/gpt-5-mini``); strategy
        keywords are the routing engine's business."""
        model = self.models.get(name)
        if model is not None:
            return Target(model)
        alias = self.aliases.get(name)
        if alias is not None:
            return Target(self.models[alias.model], alias.service_tier)
        pinned = self.pins.get(name)
        if pinned is not None:
            return Target(pinned)
        return None

    def is_strategy(self, name: str) -> bool:
        return name in STRATEGIES

    def known_names(self) -> list[str]:
        return [*self.models, *self.aliases, *STRATEGIES, *self.pins]

    def nearest(self, name: str, limit: int = 3) -> list[str]:
        """The valid names closest to ``name``, for 'did you mean' messages."""
        names = self.known_names()
        close = difflib.get_close_matches(name, names, n=limit, cutoff=0.5)
        if len(close) < limit:
            lowered = name.lower()
            for candidate in names:
                if candidate not in close and (lowered in candidate or candidate in lowered):
                    close.append(candidate)
                    if len(close) == limit:
                        break
        return close

    def provider_of(self, model: Model) -> Provider:
        return self.providers[model.provider]

    def not_found(self, name: str, param: str = "model") -> ModelNotFound:
        """The 404 for a name that is no model, alias or strategy here, with the nearest valid ones."""
        near = self.nearest(name)
        hint = f" Did you mean: {', '.join(near)}?" if near else ""
        return ModelNotFound(
            f"The model `{name}` does not exist or is not served by this router.{hint} "
            "GET /v1/models lists every model, alias and strategy.",
            param=param,
        )


def build_catalog(spec: CatalogFile, environ: Mapping[str, str]) -> Catalog:
    """Cross-check the validated file and resolve environment references."""
    providers = {name: _provider(name, p, environ) for name, p in spec.providers.items()}
    models: dict[str, Model] = {}
    pins: dict[str, Model] = {}
    for model_id, m in spec.models.items():
        if m.max_output > m.context_window:
            raise EntryError(
                ("models", model_id, "max_output"),
                f"max_output {m.max_output} exceeds context_window {m.context_window}",
            )
        if model_id in STRATEGIES:
            raise EntryError(("models", model_id), "a model id cannot be a strategy keyword")
        views = [_view(model_id, m, d, i, providers) for i, d in enumerate(_deployments(model_id, m))]
        model = views[0]
        if len(views) > 1:
            model = msgspec.structs.replace(model, deployment=None, deployments=tuple(views))
        else:
            views = [model]
        models[model_id] = model
        for view in views:
            pins[f"{view.provider}/{model_id}"] = view
    for model_id, m in spec.models.items():
        for i, fallback in enumerate(m.fallbacks):
            if fallback not in models:
                raise EntryError(("models", model_id, "fallbacks", str(i)), f"unknown model {fallback!r}")
    aliases = {name: _alias(name, value, models) for name, value in spec.aliases.items()}
    _check_access(spec.access, models, aliases)
    pins = {name: view for name, view in pins.items() if name not in models and name not in aliases}
    return Catalog(
        providers=providers,
        models=models,
        aliases=aliases,
        routing=spec.routing,
        access=spec.access,
        pins=pins,
        cache=spec.cache,
    )


def _deployments(model_id: str, m: ModelSpec) -> list[DeploymentSpec]:
    """The model's ways in: its ``deployments``, or its one ``provider``."""
    path = ("models", model_id)
    if (m.provider is None) == (not m.deployments):
        raise EntryError(path, "give exactly one of provider (one way in) or deployments (several)")
    if m.provider is not None:
        return [DeploymentSpec(provider=m.provider, upstream=m.upstream)]
    if m.upstream is not None:
        raise EntryError((*path, "upstream"), "with deployments, each deployment names its own upstream")
    seen: set[str] = set()
    for i, d in enumerate(m.deployments):
        if d.provider in seen:
            raise EntryError(
                (*path, "deployments", str(i), "provider"),
                f"provider {d.provider!r} is listed twice; a deployment is one provider's way in "
                "(declare a second provider for a second region or key)",
            )
        seen.add(d.provider)
    return m.deployments


def _view(
    model_id: str, m: ModelSpec, d: DeploymentSpec, index: int, providers: dict[str, Provider]
) -> Model:
    """The model as one deployment serves it."""
    path = ("models", model_id) if m.provider is not None else ("models", model_id, "deployments", str(index))
    provider = providers.get(d.provider)
    if provider is None:
        known = ", ".join(providers)
        raise EntryError((*path, "provider"), f"unknown provider {d.provider!r} (known: {known})")
    check_azure_model(model_id, m, provider.name, provider.azure)
    upstream = d.upstream or model_id
    # The wire format the upstream speaks: a Vertex model's is its publisher's.
    wire: ProviderKind = provider.kind
    if provider.kind == "vertex":
        wire = "anthropic" if check_vertex_model(path, upstream) == "anthropic" else "vertex"
    several = m.provider is None and len(m.deployments) > 1
    return Model(
        id=model_id,
        provider=d.provider,
        upstream=upstream,
        context_window=m.context_window,
        max_output=m.max_output,
        price=d.price or m.price,
        # Flex is OpenAI's tier: another kind of deployment serves it only with a flex price of its own.
        flex_price=d.flex_price or (m.flex_price if provider.kind == "openai" else None),
        capabilities=frozenset(m.capabilities),
        quality=m.quality,
        speed=m.speed,
        description=m.description,
        endpoints=_endpoints(model_id, m, provider.kind),
        fallbacks=tuple(m.fallbacks),
        auto_cache=(provider.auto_cache if wire == "anthropic" else None)
        if m.auto_cache is None
        else _auto_cache(("models", model_id), m.auto_cache, wire),
        deployment=f"{d.provider}/{model_id}" if several else None,
        weight=d.weight,
        rpm=d.rpm,
        tpm=d.tpm,
    )


# The ledger's name for requests without a key (an open router); no declared key may take it.
ANONYMOUS_KEY = "anonymous"


def _check_access(access: AccessSpec, models: dict[str, Model], aliases: dict[str, AliasSpec]) -> None:
    """Key names unique, each key's value named exactly one way, every model name known, budgets
    that say something."""
    seen: set[str] = set()
    _check_budgets(access)
    for i, key in enumerate(access.keys):
        path = ("access", "keys", str(i))
        if key.name in seen:
            raise EntryError((*path, "name"), f"a second key named {key.name!r}")
        if key.name == ANONYMOUS_KEY:
            raise EntryError(
                (*path, "name"),
                f"{ANONYMOUS_KEY!r} is reserved: the spend ledger records requests without a key under it",
            )
        seen.add(key.name)
        if (key.key_env is None) == (key.key is None):
            raise EntryError(path, "give exactly one of key_env (an environment variable) or key")
        if key.key is not None and not access.allow_inline_keys:
            raise EntryError(
                (*path, "key"),
                "keys are not written in the catalog: put the key in the environment and name the "
                "variable in key_env (or set access.allow_inline_keys: true)",
            )
        if key.key is not None and len(key.key) < 16:
            raise EntryError((*path, "key"), "an inline key must be at least 16 characters long")
        for j, name in enumerate(key.models or ()):
            if name not in models and name not in aliases and name not in STRATEGIES:
                hint = difflib.get_close_matches(name, [*models, *aliases, *STRATEGIES], n=1)
                suffix = f" (did you mean {hint[0]!r}?)" if hint else ""
                raise EntryError((*path, "models", str(j)), f"unknown model {name!r}{suffix}")
    for name in access.model_limits:
        if name not in models:
            raise EntryError(("access", "model_limits", name), f"unknown model {name!r} (use a catalog id)")


def _check_budgets(access: AccessSpec) -> None:
    """Every budget names an amount; a downgrade threshold has a budget to be a share of."""
    budgets: list[tuple[tuple[str, ...], BudgetSpec | None]] = [
        (("access", "defaults"), access.defaults.budget),
        (("access", "global"), access.global_.budget),
        *((("access", "model_limits", name), spec.budget) for name, spec in access.model_limits.items()),
        *((("access", "keys", str(i)), key.budget) for i, key in enumerate(access.keys)),
    ]
    for path, budget in budgets:
        if budget is not None and budget.daily_usd is None and budget.monthly_usd is None:
            raise EntryError((*path, "budget"), "a budget needs daily_usd, monthly_usd or both")
    defaults = access.defaults
    if defaults.downgrade_at_pct is not None and defaults.budget is None:
        raise EntryError(
            ("access", "defaults", "downgrade_at_pct"),
            "downgrade_at_pct is a share of a budget: set defaults.budget too",
        )
    for i, key in enumerate(access.keys):
        if key.downgrade_at_pct is not None and key.budget is None and defaults.budget is None:
            raise EntryError(
                ("access", "keys", str(i), "downgrade_at_pct"),
                f"downgrade_at_pct is a share of a budget, and key {key.name!r} has none "
                "(give it a budget, or set one in access.defaults)",
            )


# Which upstream APIs each provider kind's adapter can speak.
KIND_ENDPOINTS: dict[str, frozenset[Endpoint]] = {
    "openai": frozenset({"chat", "responses", "completions", "embeddings"}),
    "anthropic": frozenset({"chat"}),
    "gemini": frozenset({"chat", "embeddings"}),
    "azure": frozenset({"chat", "responses", "embeddings"}),
    "bedrock": frozenset({"chat"}),
    "vertex": frozenset({"chat"}),
}


def _endpoints(model_id: str, m: ModelSpec, kind: ProviderKind) -> frozenset[Endpoint]:
    embeds = "embeddings" in m.capabilities
    endpoints: frozenset[Endpoint] = (
        frozenset(m.endpoints)
        if m.endpoints is not None
        else frozenset({"embeddings"} if embeds else {"chat"})
    )
    path = ("models", model_id, "endpoints")
    if not endpoints:
        raise EntryError(path, "a model needs at least one endpoint")
    foreign = endpoints - KIND_ENDPOINTS[kind]
    if foreign:
        raise EntryError(path, f"a provider of kind '{kind}' has no {', '.join(sorted(foreign))} API")
    if embeds != ("embeddings" in endpoints):
        raise EntryError(path, "the 'embeddings' endpoint and the 'embeddings' capability go together")
    return endpoints


def _auto_cache(
    path: tuple[str, ...], value: bool | AutoCacheSpec | None, kind: ProviderKind
) -> AutoCacheSpec | None:
    """What an ``auto_cache`` entry means (``true``: the defaults); only Anthropic models take one."""
    spec = (AutoCacheSpec() if value else None) if isinstance(value, bool) or value is None else value
    if spec is not None and kind == "bedrock":
        raise EntryError(
            (*path, "auto_cache"),
            "auto_cache is not available on the bedrock kind: the router passes a client's cache_control "
            "markers to Bedrock as cachePoint blocks, but adds none of its own there",
        )
    if spec is not None and kind != "anthropic":
        raise EntryError(
            (*path, "auto_cache"),
            f"auto_cache marks Anthropic prompt-cache breakpoints; a provider of kind '{kind}' caches "
            "prompts on its own (OpenAI and Gemini need no markers)",
        )
    return spec


def _alias(name: str, value: str | AliasSpec, models: dict[str, Model]) -> AliasSpec:
    alias = AliasSpec(model=value) if isinstance(value, str) else value
    if name in models:
        raise EntryError(("aliases", name), "an alias cannot have the same name as a model")
    if name in STRATEGIES:
        raise EntryError(("aliases", name), "an alias cannot be a strategy keyword")
    if alias.model not in models:
        hint = difflib.get_close_matches(alias.model, list(models), n=1)
        suffix = f" (did you mean {hint[0]!r}?)" if hint else ""
        raise EntryError(("aliases", name), f"unknown model {alias.model!r}{suffix}")
    if alias.service_tier == "flex" and models[alias.model].flex_price is None:
        raise EntryError(("aliases", name), f"model {alias.model!r} has no flex_price")
    return alias


def _provider(name: str, p: ProviderSpec, environ: Mapping[str, str]) -> Provider:
    path = ("providers", name)
    aws: AwsAccess | None = None
    lacks: list[str] = []
    try:
        if p.kind == "bedrock":
            aws, lacks = aws_access(p, environ)
        else:
            check_not_aws(p)
    except AwsEntryError as exc:
        raise EntryError((*path, exc.field), exc.reason) from None
    if aws is not None and p.base_url is None and p.base_url_env is None:
        # The region's endpoint ("" while the region is unknown: then the region is what it waits for).
        p = msgspec.structs.replace(p, base_url=endpoint(aws))
    token = _env_token(name)
    url_env = p.base_url_env or f"ROUTER_{token}_BASE_URL"
    vertex = vertex_setup(path, p, environ, token) if p.kind == "vertex" else None
    if vertex is None:
        refuse_vertex_fields(path, p)
    if p.base_url is None and p.base_url_env is None and vertex is None:
        raise EntryError(
            (*path, "base_url"), "give base_url, or base_url_env naming the variable that holds it"
        )
    base_url = (environ.get(url_env) or p.base_url or (vertex.base_url if vertex else "")).rstrip("/")
    if base_url and not re.match(r"^https?://[^/\s]+", base_url):
        where = f" (from {url_env})" if environ.get(url_env) else ""
        raise EntryError((*path, "base_url"), f"{base_url!r}{where} is not an http(s) URL")
    key = environ.get(p.api_key_env) if p.api_key_env else None
    missing = ([] if base_url else [url_env]) + ([p.api_key_env] if p.api_key_env and not key else [])
    if p.kind == "bedrock":
        missing = [*lacks, *(m for m in missing if not (aws is not None and not aws.region and m == url_env))]
        if aws is not None and aws.kind == "bearer":
            key = environ.get(BEARER_ENV)  # kept out of messages like any key
    if vertex is not None:
        check_vertex_url(path, base_url, url_env)
        key = vertex.token
        # Its URL follows from the region: without one, the region is what to set.
        missing = list(vertex.missing)
    # A Vertex provider's auto_cache is for its Claude models (the Gemini ones cache on their own).
    auto_cache = _auto_cache(path, p.auto_cache, "anthropic" if p.kind == "vertex" else p.kind)
    return Provider(
        name=name,
        kind=p.kind,
        base_url=base_url,
        api_key_env=BEARER_ENV if aws is not None and aws.kind == "bearer" else p.api_key_env,
        api_key=key or None,
        timeouts=p.timeouts,
        max_connections=p.max_connections,
        max_tokens_param=p.max_tokens_param,
        headers=dict(p.headers),
        description=p.description,
        auto_cache=auto_cache,
        base_url_env=url_env,
        missing=tuple(missing),
        azure=azure_access(path, p, base_url, url_env),
        aws=aws,
        vertex=vertex.access if vertex is not None else None,
    )


# Azure API versions are dates, with ``-preview`` for previews: compared by their date.
_API_VERSION = re.compile(r"^\d{4}-\d{2}-\d{2}(-preview)?$")
# Streamed answers carry usage (which the router prices) from this version on (GA: 2024-10-21).
STREAM_USAGE_SINCE = "2024-09-01"
# The Responses API on the deployments form (``/openai/responses``) exists from this version on.
RESPONSES_SINCE = "2025-03-01"
_AZURE_ONLY = ("api", "api_version", "auth")


def azure_access(path: tuple[str, ...], p: ProviderSpec, base_url: str, url_env: str) -> AzureAccess | None:
    """The URL form, API version and credential header of an Azure provider (``None`` for the
    other kinds, which take none of the three settings)."""
    if p.kind != "azure":
        for field in _AZURE_ONLY:
            if getattr(p, field) is not None:
                raise EntryError(
                    (*path, field),
                    f"api, api_version and auth are Azure OpenAI settings; a provider of kind '{p.kind}' "
                    "takes none of them",
                )
        return None
    if p.api_key_env is None:
        raise EntryError(
            (*path, "api_key_env"),
            "an Azure provider needs api_key_env: the variable holding its resource key "
            "(or, with auth: entra, a Microsoft Entra ID access token)",
        )
    if re.search(r"/openai(/|$)", base_url):
        raise EntryError(
            (*path, "base_url"),
            f"{base_url!r} holds /openai: give the resource endpoint alone (base_url or {url_env}, "
            "e.g. https://NAME.openai.azure.com); the router adds the path of the api form",
        )
    version = p.api_version
    access = AzureAccess(api=p.api or "v1", api_version=version, auth=p.auth or "api-key")
    where = (*path, "api_version")
    if access.api == "v1":
        if version not in (None, "v1", "preview"):
            raise EntryError(
                where,
                f"the v1 API takes no dated api-version ({version!r}): leave api_version out, or use preview",
            )
        return access
    if version is None:
        raise EntryError(
            where,
            "api: deployments needs api_version, e.g. 2024-10-21 (the latest GA version) or "
            "2025-04-01-preview (Responses API, reasoning models)",
        )
    if not _API_VERSION.match(version):
        raise EntryError(where, f"{version!r} is not an Azure API version (YYYY-MM-DD or YYYY-MM-DD-preview)")
    if version[:10] < STREAM_USAGE_SINCE:
        raise EntryError(
            where,
            f"API version {version} sends no usage in streams, which the router prices: use "
            "2024-10-21 or later (or api: v1)",
        )
    return access


def check_azure_model(model_id: str, m: ModelSpec, provider: str, access: AzureAccess | None) -> None:
    """An Azure model on the deployments form answers the Responses API only from 2025-03-01-preview."""
    if access is None or access.api != "deployments" or not m.endpoints or "responses" not in m.endpoints:
        return
    if (access.api_version or "")[:10] < RESPONSES_SINCE:
        raise EntryError(
            ("models", model_id, "endpoints"),
            f"the Responses API on Azure needs api_version {RESPONSES_SINCE}-preview or later on its "
            f"provider '{provider}' (it has {access.api_version}), or api: v1",
        )


def _env_token(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]", "_", name).upper()
