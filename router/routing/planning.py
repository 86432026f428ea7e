"""Planning: which models may answer a request, and in which order, before any upstream is called.

A model named outright (an id or an alias, its catalog fallbacks, the request's ``models`` list) is
kept unless the request surely cannot fit it; a strategy keyword ranks every model that can take the
request (router/routing/strategies.py). A request that no model can take is refused here, with the
answer that tells the client what to do: a 400 when it is too large for every model that could serve
it or asks for what no model has (it would fail anywhere, so SDKs must not send it again), a 503
naming the variables to set when only models without keys could serve it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import msgspec

from router.catalog import Catalog, Model, Target, remedy
from router.catalog.schema import Speed
from router.errors import InvalidRequest, NoCandidate, RouterError, listed
from router.routing.strategies import (
    CHAT_ENDPOINTS,
    Excluded,
    Needs,
    needs_of,
    prompt_floor,
    rank,
    too_large_for,
)
from router.types import ChatRequest


class Routable(Protocol):
    """What the engine reads of any request: the model asked, a fallback list, the raw body."""

    model: str
    models: list[str] | None
    raw: dict[str, Any]


class Plan(msgspec.Struct, frozen=True, kw_only=True):
    candidates: list[Target]
    strategy: str | None = None
    # The key variables of providers whose models were left out for want of them.
    unconfigured: tuple[str, ...] = ()


class Planner:
    """Plans requests against one catalog; ``unusable`` says why the router cannot call a model now
    (``None`` when it can), ``speed`` gives a model's measured speed for the ``fast`` strategy."""

    def __init__(
        self,
        catalog: Catalog,
        unusable: Callable[[Model], str | None],
        speed: Callable[[Model], Speed],
    ) -> None:
        self.catalog = catalog
        self._unusable = unusable
        self._speed = speed

    def plan(
        self,
        request: ChatRequest,
        endpoints: frozenset[str] = CHAT_ENDPOINTS,
        output_param: str | None = None,
    ) -> Plan:
        """The candidates for a chat-shaped request. A model named outright must answer on one of
        ``endpoints``; ``output_param`` is the name the client gave its output limit."""
        catalog = self.catalog
        named: list[Target] = []
        candidates: list[Target] = []
        excluded: list[Excluded] = []
        strategy: str | None = None
        target = catalog.lookup(request.model)
        if target is not None:
            check_endpoints(target.model, endpoints, "model")
            if not target.model.fallbacks and not request.models:  # the common case, kept short
                limit = request.output_limit
                reason = too_large_for(target.model, limit, prompt_floor(request), limit or 0)
                if reason is None:
                    return Plan(candidates=[target])
            named = [target, *(Target(catalog.models[f]) for f in target.model.fallbacks)]
        else:
            is_strategy = catalog.is_strategy(request.model)
            strategy = request.model if is_strategy else catalog.routing.unknown_model_strategy
            if strategy is None:
                raise catalog.not_found(request.model)
            needs = needs_of(request, catalog.routing.expected_output_tokens)
            ranked = rank(catalog, strategy, needs, self._unusable, self._speed)
            candidates, excluded = list(ranked.candidates), list(ranked.excluded)
        for i, name in enumerate(request.models or ()):
            named.append(self._listed_model(name, f"models[{i}]", endpoints))
        if named:
            # Named outright: refused only when the request surely cannot fit the model.
            limit = request.output_limit
            floor = prompt_floor(request)
            seen = {t.model.id for t in candidates}
            for target in named:
                if target.model.id in seen:
                    continue
                seen.add(target.model.id)
                reason = too_large_for(target.model, limit, floor, limit or 0)
                if reason is None:
                    candidates.append(target)
                else:
                    excluded.append(Excluded(target.model.id, reason, "size"))
        unconfigured = self._missing_keys(excluded) if excluded else ()
        if not candidates:
            named_limit = "max_completion_tokens" if request.max_completion_tokens else "max_tokens"
            needs = needs_of(request, catalog.routing.expected_output_tokens)
            raise self._nothing_fits(excluded, needs, output_param or named_limit, strategy, unconfigured)
        return Plan(candidates=candidates, strategy=strategy, unconfigured=unconfigured)

    def plan_fixed(self, request: Routable, capability: str, purpose: str) -> Plan:
        """A plan for requests whose answer depends on the exact model (embeddings: vectors of two
        models are not comparable), so no strategy may choose it: the model asked, then ``models``."""
        names = [request.model, *(request.models or ())]
        candidates: list[Target] = []
        for i, name in enumerate(names):
            param = "model" if i == 0 else f"models[{i - 1}]"
            target = self.catalog.lookup(name)
            if target is None and self.catalog.is_strategy(name):
                raise InvalidRequest(
                    f"'{name}' is a routing strategy; {purpose} need a concrete model, "
                    "because different models' answers are not interchangeable.",
                    param=param,
                )
            if target is None:
                raise self.catalog.not_found(name, param)
            if capability not in target.model.capabilities:
                raise InvalidRequest(
                    f"The model '{target.model.id}' does not support {purpose}; "
                    f"GET /v1/models lists the models with the '{capability}' capability.",
                    param=param,
                    code="model_not_supported",
                )
            if all(t.model.id != target.model.id for t in candidates):
                candidates.append(target)
        return Plan(candidates=candidates)

    def _listed_model(self, name: str, param: str, endpoints: frozenset[str]) -> Target:
        target = self.catalog.lookup(name)
        if target is None and self.catalog.is_strategy(name):
            raise InvalidRequest(
                f"'models' lists concrete models or aliases to fall back to; '{name}' is a strategy.",
                param=param,
            )
        if target is None:
            raise self.catalog.not_found(name, param)
        check_endpoints(target.model, endpoints, param)
        return target

    def _missing_keys(self, excluded: list[Excluded]) -> tuple[str, ...]:
        keys: set[str] = set()
        for entry in excluded:
            if entry.kind == "unusable":
                for view in self.catalog.models[entry.model].views():
                    keys.update(self.catalog.provider_of(view).missing)
        return tuple(sorted(keys))

    def _nothing_fits(
        self,
        excluded: list[Excluded],
        needs: Needs,
        param: str,
        strategy: str | None,
        unconfigured: tuple[str, ...],
    ) -> RouterError:
        what = f"strategy '{strategy}'" if strategy else "this request"
        reasons = listed([f"{e.model}: {e.reason}" for e in excluded if e.kind != "capability"])
        if any(e.kind == "unusable" for e in excluded):
            # Models that could serve it exist, but the router cannot call them: configuration.
            error = NoCandidate(f"No model can serve {what} now ({reasons}).")
            if unconfigured:
                todo = remedy(unconfigured, " or ")
                error.message += f" {todo[:1].upper()}{todo[1:]} to let the router use more models."
                error.client_should_retry = False
            return error
        too_small = [self.catalog.models[e.model] for e in excluded if e.kind == "size"]
        if too_small:
            return too_large(too_small, needs, param)
        lacking = listed([f"{e.model}: {e.reason}" for e in excluded])
        return InvalidRequest(
            f"No model in this router can serve {what}: {lacking}.", code="model_not_supported"
        )


def too_large(models: list[Model], needs: Needs, param: str) -> InvalidRequest:
    """The 400 for a request too large for every model that could serve it; OpenAI's codes, so that
    SDKs raise ``BadRequestError`` and do not send the same body again."""
    limit = needs.output_limit
    if limit is not None and all(limit > m.max_output for m in models):
        best = max(models, key=lambda m: m.max_output)
        error = InvalidRequest(
            f"'{param}' is too large: {limit}. The models that could serve this request write at most "
            f"{best.max_output} tokens ({best.id}), whereas you asked for {limit}.",
            param=param,
            code="invalid_value",
        )
    else:
        best = max(models, key=lambda m: m.context_window)
        error = InvalidRequest(
            f"The largest context window among the models that could serve this request is "
            f"{best.context_window} tokens ({best.id}); your messages hold about {needs.prompt_tokens} "
            "tokens. Please reduce the length of the messages.",
            param="messages",
            code="context_length_exceeded",
        )
    error.client_should_retry = False
    return error


def check_endpoints(model: Model, endpoints: frozenset[str], param: str) -> None:
    if model.endpoints & endpoints:
        return
    if "embeddings" in model.endpoints:
        what = "is an embeddings model: use POST /v1/embeddings"
    elif "completions" in model.endpoints:
        what = "answers only the legacy completions API: use POST /v1/completions"
    else:
        what = "cannot serve this API"
    raise InvalidRequest(f"The model '{model.id}' {what}.", param=param, code="model_not_supported")
