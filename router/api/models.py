"""``GET /v1/models`` and ``GET /v1/models/{id}``: catalog models, aliases and strategies, OpenAI-shaped."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, Response, get
from litestar.handlers import HTTPRouteHandler

from router.api.access import key_of
from router.api.errors import JSON
from router.api.services import Services
from router.catalog import STRATEGIES, Catalog

# Models have no creation date in the catalog; a fixed epoch keeps answers stable across restarts.
CREATED = 1_735_689_600  # 2025-01-01

STRATEGY_NOTES = {
    "fast": "lowest expected latency (time to first token and output speed)",
    "speed": "same as fast",
    "fast-flex": "lowest expected latency, flex tier where a model has one",
    "balanced": "weighted quality, cost and latency (weights in the catalog)",
    "balanced-flex": "balanced, priced and sent at the flex tier where a model has one",
    "quality": "highest quality score, cost as tie-break",
    "cost": "lowest estimated cost for this request",
}


class ModelObject(msgspec.Struct):
    id: str
    owned_by: str
    router: dict[str, Any]
    object: str = "model"
    created: int = CREATED


def model_objects(catalog: Catalog) -> list[ModelObject]:
    out: list[ModelObject] = []
    for model in catalog.models.values():
        provider = catalog.provider_of(model)
        out.append(
            ModelObject(
                id=model.id,
                owned_by=model.provider,
                router={
                    "kind": "model",
                    "provider": model.provider,
                    "deployments": [view.key for view in model.deployments],
                    "upstream": model.upstream,
                    "configured": provider.configured,
                    "context_window": model.context_window,
                    "max_output": model.max_output,
                    "price_per_1m": msgspec.to_builtins(model.price),
                    "capabilities": sorted(model.capabilities),
                },
            )
        )
        for view in model.deployments:
            out.append(
                ModelObject(
                    id=view.key,
                    owned_by=view.provider,
                    router={
                        "kind": "deployment",
                        "model": model.id,
                        "provider": view.provider,
                        "upstream": view.upstream,
                        "configured": catalog.provider_of(view).configured,
                        "weight": view.weight,
                        "rpm": view.rpm,
                        "tpm": view.tpm,
                        "price_per_1m": msgspec.to_builtins(view.price),
                    },
                )
            )
    for name, alias in catalog.aliases.items():
        target = catalog.models[alias.model]
        info: dict[str, Any] = {"kind": "alias", "target": alias.model, "provider": target.provider}
        if alias.service_tier:
            info["service_tier"] = alias.service_tier
        out.append(ModelObject(id=name, owned_by=target.provider, router=info))
    for name in STRATEGIES:
        out.append(
            ModelObject(
                id=name, owned_by="router", router={"kind": "strategy", "optimises": STRATEGY_NOTES[name]}
            )
        )
    return out


class ModelList(msgspec.Struct):
    data: list[ModelObject]
    object: str = "list"


_encode = msgspec.json.Encoder().encode


def model_handlers(services: Services) -> list[HTTPRouteHandler]:
    @get(["/v1/models", "/models"], sync_to_thread=False)
    def list_models(request: Request[Any, Any, Any]) -> Response[bytes]:
        catalog = services.catalog
        objects = model_objects(catalog)
        key = key_of(request.scope)
        if key is not None and key.allowed is not None:
            # A key limited to some models sees only those (an alias counts as its model).
            objects = [o for o in objects if key.may_use(o.id, _resolved(catalog, o.id))]
        return Response(content=_encode(ModelList(objects)), media_type=JSON)

    @get(["/v1/models/{model_id:path}", "/models/{model_id:path}"], sync_to_thread=False)
    def retrieve_model(model_id: str) -> Response[bytes]:
        wanted = model_id.lstrip("/")
        for obj in model_objects(services.catalog):
            if obj.id == wanted:
                return Response(content=_encode(obj), media_type=JSON)
        raise services.catalog.not_found(wanted)

    return [list_models, retrieve_model]


def _resolved(catalog: Catalog, name: str) -> str | None:
    target = catalog.lookup(name)
    return target.model.id if target else None
