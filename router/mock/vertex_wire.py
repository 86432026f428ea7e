"""What the fake Vertex AI says of its own: Google's authentication refusals, its error defaults, the
models each publisher serves, and the checks Vertex adds to Gemini's and Anthropic's bodies.

Sources: Google's API error model (``google.rpc.Status`` with an ``ErrorInfo`` detail; the 401 bodies
of missing, invalid and expired tokens and of API keys, as captured in public issues), Vertex AI's
"API errors" page (429 ``RESOURCE_EXHAUSTED``), Anthropic's "Claude on Vertex AI" page (no ``model``
in the body, ``anthropic_version: vertex-2023-10-16``, ids versioned with ``@``) and public issues
for Gemini on Vertex (every content needs its role; no ``system`` role in ``contents``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

import msgspec
from aiohttp import web

from router.mock.anthropic_fake import MODELS as ANTHROPIC_MODELS
from router.mock.anthropic_fake import fault_error as anthropic_fault
from router.mock.anthropic_fake import invalid_request
from router.mock.faultspec import Fault
from router.mock.gemini_fake import MODELS as GOOGLE_MODELS
from router.mock.gemini_fake import fault_error as gemini_fault

PROVIDER: Final = "vertex"
PREFIX: Final = "/vertex"
"""The fake host's path: ``{mock}/vertex`` stands for ``https://{region}-aiplatform.googleapis.com``."""
ANTHROPIC_VERSION: Final = "vertex-2023-10-16"
GEMINI_MODELS: Final = frozenset(m for m in GOOGLE_MODELS if "embedding" not in m)
CLAUDE_MODELS: Final = frozenset(
    {m.rsplit("-", 1)[0] + "@" + m.rsplit("-", 1)[1] for m, _, _ in ANTHROPIC_MODELS}
    | {"claude-opus-4-6", "claude-sonnet-4-6"}
)
"""Claude ids as Vertex knows them: ``claude-haiku-4-5@20251001``; the newest have no date."""
METHODS: Final = {
    "google": ("generateContent", "streamGenerateContent"),
    "anthropic": ("rawPredict", "streamRawPredict"),
}
_RPC: Final = {
    "generateContent": "GenerateContent",
    "streamGenerateContent": "StreamGenerateContent",
    "rawPredict": "RawPredict",
    "streamRawPredict": "StreamRawPredict",
}
# Statuses Vertex's front end answers for Claude in Google's envelope (quota, IAM, routing); the
# others come from Claude itself, in Anthropic's.
PLATFORM_STATUSES: Final = frozenset({401, 403, 404, 429, 503, 504})
_DEFAULT_MESSAGES: Final[Mapping[int, str]] = {
    429: "Resource exhausted, please try again later. Please refer to "
    "https://cloud.google.com/vertex-ai/generative-ai/docs/error-code-429 for more details.",
    503: "The service is currently unavailable.",
    504: "Deadline expired before operation could complete.",
    403: "Permission 'aiplatform.endpoints.predict' denied on resource (or it may not exist).",
}

# --- authentication --------------------------------------------------------------------------------

_EXPECTED: Final = (
    "Expected OAuth 2 access token, login cookie or other valid authentication credential. "
    "See https://developers.google.com/identity/sign-in/web/devconsole-project."
)
MISSING_CREDENTIAL: Final = f"Request is missing required authentication credential. {_EXPECTED}"
INVALID_CREDENTIAL: Final = f"Request had invalid authentication credentials. {_EXPECTED}"
API_KEY_REFUSED: Final = (
    "API keys are not supported by this API. Expected OAuth2 access token or other authentication "
    "credentials that assert a principal. See https://cloud.google.com/docs/authentication"
)
INSUFFICIENT_SCOPES: Final = "Request had insufficient authentication scopes."


def rpc_error(
    status: int,
    message: str,
    name: str,
    details: Sequence[Any] = (),
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    """A ``google.rpc.Status`` error answer."""
    error: dict[str, Any] = {"code": status, "message": message, "status": name}
    if details:
        error["details"] = list(details)
    body = msgspec.json.encode({"error": error})
    return web.Response(status=status, body=body, content_type="application/json", headers=headers)


def auth_error(status: int, message: str, reason: str, method: str) -> web.Response:
    """A refused credential: 401 ``UNAUTHENTICATED`` (or 403 for scopes) with its ``ErrorInfo``."""
    info = {
        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        "reason": reason,
        "domain": "googleapis.com",
        "metadata": {
            "service": "aiplatform.googleapis.com",
            "method": f"google.cloud.aiplatform.v1.PredictionService.{_RPC.get(method, method)}",
        },
    }
    name = "UNAUTHENTICATED" if status == 401 else "PERMISSION_DENIED"
    headers = {"www-authenticate": 'Bearer realm="https://accounts.google.com/"'} if status == 401 else None
    return rpc_error(status, message, name, [info], headers)


def model_not_found(resource: str) -> web.Response:
    return rpc_error(
        404,
        f"Publisher Model `{resource}` was not found or your project does not have access to it. Please "
        "ensure you are using a valid model version. For more information, see: "
        "https://cloud.google.com/vertex-ai/generative-ai/docs/learn/model-versions",
        "NOT_FOUND",
    )


# --- faults ----------------------------------------------------------------------------------------


def platform_fault(fault: Fault, in_array: bool) -> web.Response:
    """A ``status`` fault from Vertex's front end: Google's envelope with Vertex's default messages
    (a one-element array where the answer would have been one)."""
    message = fault.message or _DEFAULT_MESSAGES.get(fault.status)
    return gemini_fault(msgspec.structs.replace(fault, message=message), in_array=in_array)


def claude_fault(fault: Fault, model: str, request_id: str, streaming: bool) -> web.Response:
    """A ``status`` fault on Claude: the front end's statuses (or a ``type`` in Google's upper case) in
    Google's envelope, an array on ``streamRawPredict``; Claude's own in Anthropic's."""
    google = fault.type.isupper() if fault.type else fault.status in PLATFORM_STATUSES
    if google:
        return platform_fault(fault, streaming)
    return anthropic_fault(fault, model, request_id)


# --- request checks --------------------------------------------------------------------------------


def gemini_problem(req: Mapping[str, Any]) -> str | None:
    """What Vertex refuses in a generateContent body that the Gemini API takes: a content without its
    role, and the ``system`` role in ``contents``."""
    for content in req.get("contents", ()):
        role = content.get("role")
        if role == "system":
            return "Content with system role is not supported."
        if role not in ("user", "model"):
            return "Please use a valid role: user, model."
    return None


def claude_body(body: bytes, model: str, request_id: str) -> bytes | web.Response:
    """A rawPredict body as a Messages body for ``model`` (Anthropic's name for it), or Claude's 400:
    Vertex takes ``anthropic_version`` in the body and no ``model``. The documented version alone is
    accepted (what refusing another looks like is unconfirmed: one report, clawvisor#156, saw a 404 for
    ``2023-06-01``; anthropic 2.17's Vertex client sends its own API version, 2026-10-21)."""
    try:
        raw = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return invalid_request(
            "There was an error parsing the body of your request: it is not valid JSON.", request_id
        )
    if not isinstance(raw, dict):
        return invalid_request("Input should be a valid dictionary", request_id)
    version = raw.pop("anthropic_version", None)
    if version is None:
        return invalid_request("anthropic_version: Field required", request_id)
    if version != ANTHROPIC_VERSION:
        return invalid_request(f"anthropic_version: Input should be '{ANTHROPIC_VERSION}'", request_id)
    if "model" in raw:
        return invalid_request("model: Extra inputs are not permitted", request_id)
    raw["model"] = model
    return msgspec.json.encode(raw)


def anthropic_name(model: str) -> str:
    """Claude's name for a Vertex id: ``claude-haiku-4-5@20251001`` → ``claude-haiku-4-5-20251001``."""
    return model.replace("@", "-")
