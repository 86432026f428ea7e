"""What the fake Azure OpenAI shares: its URL forms and API versions, its error bodies, its content-filter
annotations, and the gate that admits a request the way Azure does before OpenAI's endpoints serve it.

Sources for each shape: Microsoft's Azure OpenAI docs (API version lifecycle, content filtering, content
streaming, the GA 2024-10-21 spec) and error bodies captured in public issues (see README, "Azure OpenAI").
"""

from __future__ import annotations

import re
from typing import Any, ClassVar, Final

import msgspec
from aiohttp import web

from router.mock._base import fault_headers
from router.mock.faultspec import Fault
from router.mock.openai_wire import OpenAIGate, fault_error

PROVIDER: Final = "azure"
PREFIX: Final = "/azure"
"""The fake resource's endpoint path: ``{mock}/azure`` stands for ``https://NAME.openai.azure.com``."""
DEPLOYMENTS: Final = {
    "gpt-5-mini": "gpt-5-mini-2025-08-07",
    "gpt-4.1-mini": "gpt-4.1-mini-2025-04-14",
    "gpt-4o-mini": "gpt-4o-mini-2024-07-18",
    "text-embedding-3-small": "text-embedding-3-small",
    "text-embedding-3-large": "text-embedding-3-large",
}
"""The resource's deployments (named after their models) and the model version each answers with."""
DATED_VERSIONS: Final = frozenset(
    {
        "2023-05-15",
        "2024-02-01",
        "2024-06-01",
        "2024-10-21",
        "2024-08-01-preview",
        "2024-09-01-preview",
        "2024-10-01-preview",
        "2024-12-01-preview",
        "2025-01-01-preview",
        "2025-03-01-preview",
        "2025-04-01-preview",
    }
)
"""API versions the deployment URLs accept (GA and the previews of the lifecycle doc)."""
V1_VERSIONS: Final = frozenset({"v1", "preview", "latest"})
RESPONSES_SINCE: Final = "2025-03-01"
FILTER_PROMPT: Final = "content_filter=prompt"
"""A prompt holding this is refused by the filter (HTTP 400 ``content_filter``)."""
FILTER_COMPLETION: Final = "content_filter=completion"
"""A prompt holding this gets an answer cut by the filter (``finish_reason: content_filter``)."""
_V1_PATH: Final = re.compile(r"^/azure/openai/v1/")
_DEPLOYMENT_PATH: Final = re.compile(r"^/azure/openai/deployments/(?P<name>[^/]+)/")

# --- error bodies ----------------------------------------------------------------------------------

KEY_REFUSED: Final = (
    "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key "
    "for an active subscription and use a correct regional API endpoint for your resource."
)
KEY_MISSING: Final = (
    "Access denied due to missing subscription key. Make sure to include subscription key when making "
    "requests to an API."
)
BEARER_REFUSED: Final = (
    "Unauthorized. Access token is missing, invalid, audience is incorrect "
    "(https://cognitiveservices.azure.com), or have expired."
)
NO_DEPLOYMENT: Final = (
    "The API deployment for this resource does not exist. If you created the deployment within the last "
    "5 minutes, please wait a moment and try again."
)
PROMPT_FILTERED: Final = (
    "The response was filtered due to the prompt triggering Azure OpenAI's content management policy. "
    "Please modify your prompt and retry. To learn more about our content filtering policies please read "
    "our documentation: https://go.microsoft.com/fwlink/?linkid=2198766"
)


class _AzureError(msgspec.Struct):
    code: str
    message: str


class _AzureEnvelope(msgspec.Struct):
    error: _AzureError


class _GatewayError(msgspec.Struct):
    """The gateway's own envelope (no ``error`` member), for a missing key or a refused token."""

    statusCode: int  # the wire name
    message: str


def azure_error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
    """Azure's own error shape: ``{"error": {"code", "message"}}``, the code a string."""
    body = msgspec.json.encode(_AzureEnvelope(_AzureError(code, message)))
    return web.Response(status=status, body=body, content_type="application/json", headers=headers)


def gateway_error(status: int, message: str) -> web.Response:
    body = msgspec.json.encode(_GatewayError(status, message))
    return web.Response(status=status, body=body, content_type="application/json")


def resource_not_found() -> web.Response:
    """A path Azure does not serve, or a deployment URL without ``api-version``."""
    return azure_error(404, "404", "Resource not found")


def prompt_filtered(category: str = "violence") -> web.Response:
    """The 400 for a prompt the filter refused; the verdicts in ``innererror.content_filter_result``
    (singular, as observed on the wire; Microsoft's samples write it plural)."""
    verdicts = prompt_verdicts()
    verdicts[category] = {"filtered": True, "severity": "medium"}
    body = {
        "error": {
            "message": PROMPT_FILTERED,
            "type": None,
            "param": "prompt",
            "code": "content_filter",
            "status": 400,
            "innererror": {"code": "ResponsibleAIPolicyViolation", "content_filter_result": verdicts},
        }
    }
    return web.Response(status=400, body=msgspec.json.encode(body), content_type="application/json")


def rate_limited(fault: Fault, version: str) -> web.Response:
    wait = f"{fault.retry_after:g}" if fault.retry_after is not None else "6"
    message = fault.message or (
        f"Requests to the ChatCompletions_Create Operation under Azure OpenAI API version {version} have "
        f"exceeded token rate limit of your current OpenAI S0 pricing tier. Please retry after {wait} "
        "seconds. Please go here: https://aka.ms/oai/quotaincrease if you would like to further increase "
        "the default rate limit."
    )
    return azure_error(429, "429", message, fault_headers(fault, with_ms=True))


# --- content-filter annotations --------------------------------------------------------------------


def prompt_verdicts() -> dict[str, Any]:
    """The filter's verdicts on a harmless prompt."""
    safe = {"filtered": False, "severity": "safe"}
    return {
        "hate": dict(safe),
        "jailbreak": {"filtered": False, "detected": False},
        "self_harm": dict(safe),
        "sexual": dict(safe),
        "violence": dict(safe),
    }


def output_verdicts(filtered: str | None = None) -> dict[str, Any]:
    """The filter's verdicts on a piece of output; ``filtered`` names the category that cut it."""
    safe = {"filtered": False, "severity": "safe"}
    verdicts: dict[str, Any] = {
        "hate": dict(safe),
        "protected_material_code": {"filtered": False, "detected": False},
        "protected_material_text": {"filtered": False, "detected": False},
        "self_harm": dict(safe),
        "sexual": dict(safe),
        "violence": dict(safe),
    }
    if filtered is not None:
        verdicts[filtered] = {"filtered": True, "severity": "medium"}
    return verdicts


def prompt_results() -> list[dict[str, Any]]:
    return [{"prompt_index": 0, "content_filter_results": prompt_verdicts()}]


# --- the gate ---------------------------------------------------------------------------------------


class AzureGate(OpenAIGate):
    """Admits a request as Azure does: its URL form and ``api-version``, its credential (``api-key``, or
    ``Authorization: Bearer`` with an Entra token, or on v1 the key), its deployment; then the prompt
    filter. On the deployment form the deployment named in the path is put in the body's ``model``, so
    that OpenAI's endpoints serve the request as they serve any other."""

    __slots__ = ()
    provider: ClassVar[str] = PROVIDER

    async def admit(self, request: web.BaseRequest) -> tuple[bytes, web.Response | None]:
        body = await request.read()
        self.state.record(request, PROVIDER, body)
        refused = self._route(request) or self.denied(request)
        if refused is not None:
            return body, refused
        named = _DEPLOYMENT_PATH.match(request.path)
        if named is not None:
            body = _with_model(body, named["name"])
        deployment = named["name"] if named is not None else _model_of(body)
        if deployment is not None and deployment not in DEPLOYMENTS:
            return body, azure_error(404, "DeploymentNotFound", NO_DEPLOYMENT)
        if FILTER_PROMPT.encode() in body and not request.path.endswith("/embeddings"):
            return body, prompt_filtered()
        return body, None

    def _route(self, request: web.BaseRequest) -> web.Response | None:
        """Azure's answer to a URL form or ``api-version`` it does not serve; ``None`` when it does."""
        version = request.query.get("api-version")
        if _V1_PATH.match(request.path):
            if version is None or version in V1_VERSIONS:
                return None
            return azure_error(400, "BadRequest", "API version not supported")
        if version is None:
            return resource_not_found()
        if version not in DATED_VERSIONS:
            return azure_error(400, "BadRequest", "API version not supported")
        if request.path.endswith("/openai/responses") and version[:10] < RESPONSES_SINCE:
            return resource_not_found()
        return None

    def denied(self, request: web.BaseRequest) -> web.Response | None:
        """A key in ``api-key``, or a bearer token: an Entra token (a JWT) on either form, the key itself
        on v1 only. Without a required key set, any credential passes."""
        required = self.state.required_key(PROVIDER)
        if required is None:
            return None
        key = request.headers.get("api-key")
        if key is not None:
            return None if key == required else azure_error(401, "401", KEY_REFUSED)
        bearer = request.headers.get("Authorization", "")
        if not bearer:
            return gateway_error(401, KEY_MISSING)
        token = bearer.removeprefix("Bearer ").strip()
        entra = token.startswith("eyJ") and token.count(".") == 2
        if token == required and (entra or _V1_PATH.match(request.path)):
            return None
        return gateway_error(401, BEARER_REFUSED)

    def fault_error(self, fault: Fault, model: str) -> web.Response:
        """Azure's bodies for what it answers its own way (429, 401, 404, a filtered prompt); OpenAI's
        (which Azure passes on) for the rest."""
        if fault.status == 429:
            return rate_limited(fault, "2024-10-21")
        if fault.status == 400 and fault.code == "content_filter":
            return prompt_filtered()
        if fault.status == 401:
            return azure_error(401, "401", fault.message or KEY_REFUSED, fault_headers(fault))
        if fault.status == 404:
            return azure_error(
                404, "DeploymentNotFound", fault.message or NO_DEPLOYMENT, fault_headers(fault)
            )
        return fault_error(fault, model)


def _with_model(body: bytes, deployment: str) -> bytes:
    try:
        data = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return body  # the endpoint answers the body that is not JSON
    if not isinstance(data, dict):
        return body
    data["model"] = deployment
    return msgspec.json.encode(data)


class _ModelView(msgspec.Struct):
    model: str | None = None


def _model_of(body: bytes) -> str | None:
    try:
        return msgspec.json.decode(body, type=_ModelView).model
    except msgspec.DecodeError:
        return None
