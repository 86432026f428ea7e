"""``GET /dashboard``: a self-contained ops page that polls ``/health``, ``/model-health`` and
``/model-health/series``."""

from __future__ import annotations

from importlib.resources import files

from litestar import MediaType, Response, get
from litestar.handlers import HTTPRouteHandler

from router.api.services import Services


def dashboard_handlers(services: Services) -> list[HTTPRouteHandler]:
    # Read once: the page is static, and each request only gets the bytes.
    page = (files("router.api") / "static" / "dashboard.html").read_bytes()

    @get("/dashboard", sync_to_thread=False, include_in_schema=False)
    def dashboard() -> Response[bytes]:
        # Litestar adds "; charset=utf-8" to text media types itself.
        return Response(content=page, media_type=MediaType.HTML, headers={"cache-control": "no-cache"})

    return [dashboard]
