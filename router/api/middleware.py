"""Request ids: made by the edge for every request, read by the routes from the ASGI scope."""

from __future__ import annotations

import os
from typing import Any, cast

from litestar.types import Scope

REQUEST_ID_KEY = "router.request_id"


def new_request_id() -> str:
    return "req_" + os.urandom(12).hex()


def request_id_of(scope: Scope) -> str:
    request_id: str = cast(dict[str, Any], scope)[REQUEST_ID_KEY]
    return request_id
