"""Google Vertex AI in the catalog: a vertex provider's project, region, URL and credential source,
resolved from the catalog and the environment, and the publisher each of its models names.

Policy:

- ``project`` and ``region`` come from the catalog, else from ``GOOGLE_CLOUD_PROJECT`` and
  ``GOOGLE_CLOUD_LOCATION`` (the variables Google's own SDKs read); a provider lacking either is
  not configured and says which variable to set. The region is a location Vertex serves models
  from: ``global``, the multi-regions ``us`` and ``eu``, or a region such as ``us-east5``.
- The base URL is derived from the region (``https://{region}-aiplatform.googleapis.com``,
  ``https://aiplatform.googleapis.com`` for ``global``, the ``aiplatform.{us,eu}.rep`` hosts for the
  multi-regions), unless the catalog or ``ROUTER_<NAME>_BASE_URL`` gives one; it is a host alone,
  the adapter adds ``/v1/projects/{project}/locations/{region}/...``.
- Credentials, first found wins: a static OAuth access token in ``ROUTER_<NAME>_ACCESS_TOKEN``
  (sent as it is, never refreshed); else google-auth, which needs the ``router[gcp]`` extra: the
  key file ``GOOGLE_APPLICATION_CREDENTIALS`` names, or application default credentials (gcloud's
  file, the metadata server on Google Cloud). API keys (Vertex's express mode) are not taken.
- A model's publisher follows from its upstream id: ``gemini-*`` is Google's (``generateContent``),
  ``claude-*`` Anthropic's (``rawPredict``, ids versioned with ``@``: ``claude-sonnet-4-5@20250929``).
  Any other id is refused at load, as is Anthropic's own dated form (``claude-...-20250929``).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Literal

import msgspec

from router.catalog.entry import EntryError
from router.catalog.schema import ProviderSpec

PROJECT_ENV = "GOOGLE_CLOUD_PROJECT"
REGION_ENV = "GOOGLE_CLOUD_LOCATION"
CREDENTIALS_ENV = "GOOGLE_APPLICATION_CREDENTIALS"
# What a provider that needs google-auth lacks without the extra: an instruction, not a variable.
INSTALL_GCP = "install router[gcp] (pip install 'router[gcp]')"
_LIBRARIES = ("google.auth", "requests")
_REGION = re.compile(r"^(global|us|eu|[a-z]+-[a-z]+[0-9]+)$")
# Google project ids (6 to 30 letters, digits and hyphens), and the older ``domain:project`` form.
_PROJECT = re.compile(r"^([a-z][a-z0-9.-]*[a-z0-9]:)?[a-z][a-z0-9-]{4,28}[a-z0-9]$")
_DATED_CLAUDE = re.compile(r"^(claude-.+)-(\d{8})$")
_MULTI_REGION_HOSTS = {
    "global": "https://aiplatform.googleapis.com",
    "us": "https://aiplatform.us.rep.googleapis.com",
    "eu": "https://aiplatform.eu.rep.googleapis.com",
}
_VERTEX_ONLY = ("project", "region")

Publisher = Literal["google", "anthropic"]
# Where the router gets its access token: a static one, a key file, or application defaults.
CredentialSource = Literal["token", "file", "default"]


class VertexAccess(msgspec.Struct, frozen=True, kw_only=True):
    """How a Vertex AI provider is called: which project and region, as whom. The static token's
    value, when there is one, is the provider's ``api_key`` (kept out of messages and reprs)."""

    project: str  # empty while neither the catalog nor GOOGLE_CLOUD_PROJECT gives it
    region: str  # likewise, from GOOGLE_CLOUD_LOCATION
    credentials: CredentialSource
    token_env: str  # the variable a static access token is read from
    credentials_file: str = ""  # the path GOOGLE_APPLICATION_CREDENTIALS names, if set

    def describe(self) -> str:
        """Where the credentials come from, in words (never their value)."""
        if self.credentials == "token":
            return f"static access token ({self.token_env}; not refreshed)"
        if self.credentials == "file":
            return f"{_file_kind(self.credentials_file)} ({CREDENTIALS_ENV})"
        return _default_source()


def publisher_of(upstream: str) -> Publisher | None:
    """The publisher whose API serves ``upstream`` on Vertex, or ``None`` for an id of neither."""
    if upstream.startswith("gemini-"):
        return "google"
    if upstream.startswith("claude-"):
        return "anthropic"
    return None


def check_vertex_model(path: tuple[str, ...], upstream: str) -> Publisher:
    """The publisher of a vertex model's ``upstream``, or the error that names the id to write."""
    publisher = publisher_of(upstream)
    if publisher is None:
        raise EntryError(
            (*path, "upstream"),
            f"{upstream!r} is no Vertex model id the router can call: give a Gemini id (gemini-2.5-flash) "
            "or a Claude id (claude-sonnet-4-5@20250929); the publisher follows from the prefix",
        )
    dated = _DATED_CLAUDE.match(upstream)
    if dated:
        raise EntryError(
            (*path, "upstream"),
            f"{upstream!r} is Anthropic's own id; on Vertex the version follows an @: "
            f"{dated.group(1)}@{dated.group(2)}",
        )
    return publisher


def base_url_for(region: str) -> str:
    """The Vertex AI host serving ``region``."""
    return _MULTI_REGION_HOSTS.get(region) or f"https://{region}-aiplatform.googleapis.com"


def gcp_installed() -> bool:
    """Whether google-auth and its HTTP transport can be imported (the ``router[gcp]`` extra)."""
    for name in _LIBRARIES:
        try:
            if importlib.util.find_spec(name) is None:
                return False
        except (ImportError, ValueError):
            return False
    return True


class VertexSetup(msgspec.Struct, frozen=True, kw_only=True):
    """A vertex provider's resolved settings: access, derived URL, static token and what it lacks."""

    access: VertexAccess
    base_url: str  # derived from the region; empty without one
    token: str | None
    missing: tuple[str, ...]


def vertex_setup(
    path: tuple[str, ...],
    p: ProviderSpec,
    environ: Mapping[str, str],
    env_token: str,
    installed: Callable[[], bool] = gcp_installed,
) -> VertexSetup:
    """Resolve a vertex provider against ``environ`` (see the module's docstring); ``installed``
    says whether the google-auth extra is there (asked only when the credentials need it)."""
    if p.api_key_env is not None:
        raise EntryError(
            (*path, "api_key_env"),
            "a Vertex AI provider takes no API key: it authenticates with Google credentials "
            f"(google-auth: {CREDENTIALS_ENV} or application default credentials), or with an access "
            f"token in ROUTER_{env_token}_ACCESS_TOKEN",
        )
    project = p.project or environ.get(PROJECT_ENV, "")
    region = p.region or environ.get(REGION_ENV, "")
    for field, value, variable, pattern in (
        ("project", project, PROJECT_ENV, _PROJECT),
        ("region", region, REGION_ENV, _REGION),
    ):
        if value and not pattern.match(value):
            where = "" if getattr(p, field) else f" (from {variable})"
            example = "my-project-123" if field == "project" else "global, us, eu or us-east5"
            raise EntryError((*path, field), f"{value!r}{where} is not a Vertex AI {field} (e.g. {example})")
    token_env = f"ROUTER_{env_token}_ACCESS_TOKEN"
    token = environ.get(token_env) or None
    key_file = environ.get(CREDENTIALS_ENV, "")
    source: CredentialSource = "token" if token else "file" if key_file else "default"
    missing = [variable for value, variable in ((project, PROJECT_ENV), (region, REGION_ENV)) if not value]
    if source != "token" and not installed():
        missing.insert(0, INSTALL_GCP)
    access = VertexAccess(
        project=project,
        region=region,
        credentials=source,
        token_env=token_env,
        credentials_file=key_file if source == "file" else "",
    )
    return VertexSetup(
        access=access, base_url=base_url_for(region) if region else "", token=token, missing=tuple(missing)
    )


def check_vertex_url(path: tuple[str, ...], base_url: str, url_env: str) -> None:
    """A vertex base URL is a host: the adapter adds the API version and the resource path."""
    if re.search(r"/v1(beta1)?(/|$)", base_url):
        raise EntryError(
            (*path, "base_url"),
            f"{base_url!r} holds an API path: give the host alone (base_url or {url_env}, e.g. "
            "https://us-east5-aiplatform.googleapis.com); the router adds /v1/projects/...",
        )


def refuse_vertex_fields(path: tuple[str, ...], p: ProviderSpec) -> None:
    """``project`` and ``region`` belong to Vertex AI providers only (AWS Bedrock has a region too)."""
    for field in _VERTEX_ONLY:
        if field == "region" and p.kind == "bedrock":
            continue
        if getattr(p, field) is not None:
            raise EntryError(
                (*path, field),
                f"project and region are Vertex AI settings; a provider of kind '{p.kind}' takes neither",
            )


def _file_kind(path: str) -> str:
    """What the credentials file holds, by its ``type`` (read for ``router check`` only)."""
    try:
        kind = json.loads(Path(path).read_text(encoding="utf-8")).get("type")
    except (OSError, ValueError, AttributeError):
        return "credentials file that cannot be read"
    return {
        "service_account": "service account file",
        "authorized_user": "user credentials file",
        "external_account": "workload identity federation file",
        "impersonated_service_account": "impersonated service account file",
    }.get(kind, f"credentials file of type {kind!r}")


def _default_source() -> str:
    """Application default credentials as google-auth would find them (no network call)."""
    config = os.environ.get("CLOUDSDK_CONFIG") or str(Path.home() / ".config" / "gcloud")
    if (Path(config) / "application_default_credentials.json").is_file():
        return "application default credentials (gcloud's file)"
    return "application default credentials (no gcloud file here: the metadata server's, on Google Cloud)"
