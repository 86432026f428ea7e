"""AWS Bedrock providers in the catalog: their region, where their credentials come from, and whether
the AWS extra is installed, all read from the environment without any network call.

The credential source is found the way botocore's default chain would look, in its order, but only
from what is visible without I/O (variables and the presence of the shared files): a Bedrock API key
(``AWS_BEARER_TOKEN_BEDROCK``, which botocore prefers when set), the catalog's ``profile``, the
access-key variables, ``AWS_PROFILE``, web identity, container credentials, the shared files, and the
EC2 instance role only when ``AWS_EC2_METADATA_DISABLED=false`` says that the router runs where one
exists (otherwise a laptop without credentials would wait on the metadata address at every start).
The credentials themselves are resolved by the adapter, in a thread, when it starts.
"""

from __future__ import annotations

import importlib.util
import os
import re
from collections.abc import Mapping
from typing import Literal

import msgspec

from router.catalog.schema import ProviderSpec

EXTRA = "install router[aws]"
BEARER_ENV = "AWS_BEARER_TOKEN_BEDROCK"
REGION_ENVS = ("AWS_REGION", "AWS_DEFAULT_REGION")
_CREDENTIAL_SOURCES = "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or AWS_BEARER_TOKEN_BEDROCK"
CREDENTIALS_NEEDED = f"set AWS credentials ({_CREDENTIAL_SOURCES})"
ENDPOINT = "https://bedrock-runtime.{region}.amazonaws.com"
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+$")


# How the adapter gets its credentials: the bearer key, the access-key variables as they are, or
# botocore's chain (profiles, web identity, container, instance role), which may need network I/O.
CredentialKind = Literal["bearer", "environment", "chain"]


class AwsAccess(msgspec.Struct, frozen=True, kw_only=True):
    """How a Bedrock provider's calls are authenticated: region, credential kind and its source."""

    region: str  # "" while unknown (the provider is then not configured)
    kind: CredentialKind
    source: str  # what ``router check`` and errors say: never a value, only where it comes from
    profile: str | None = None


class AwsEntryError(Exception):
    """A Bedrock setting that does not fit (the caller locates it in the catalog)."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason


def aws_installed() -> bool:
    """Whether botocore (the ``router[aws]`` extra) can be imported, without importing it."""
    try:
        return importlib.util.find_spec("botocore") is not None
    except (ImportError, ValueError):  # ValueError: a module entry set to None (blocked)
        return False


def check_not_aws(p: ProviderSpec) -> None:
    """``region`` and ``profile`` are Bedrock settings: other kinds take neither (but Vertex AI, which
    has a region of its own)."""
    if p.region is not None and p.kind != "vertex":
        raise AwsEntryError(
            "region",
            f"region is an AWS Bedrock or Google Vertex AI setting; a provider of kind '{p.kind}' takes none",
        )
    if p.profile is not None:
        raise AwsEntryError(
            "profile", f"profile is an AWS Bedrock setting; a provider of kind '{p.kind}' takes none"
        )


def aws_access(p: ProviderSpec, environ: Mapping[str, str]) -> tuple[AwsAccess, list[str]]:
    """The access of a Bedrock provider and what it lacks (``install router[aws]``, credentials, the
    region's variable); its region is "" while unknown, its source "" while none is found."""
    if p.api_key_env is not None:
        raise AwsEntryError(
            "api_key_env",
            "a bedrock provider takes its credentials from the AWS chain (AWS_ACCESS_KEY_ID, AWS_PROFILE, "
            f"...) or a Bedrock API key in {BEARER_ENV}, not from api_key_env",
        )
    missing = [] if aws_installed() else [EXTRA]
    region = p.region or next((environ[name] for name in REGION_ENVS if environ.get(name)), None)
    if region is not None and not _REGION.match(region):
        where = "" if p.region else " (from the environment)"
        raise AwsEntryError("region", f"{region!r}{where} is not an AWS region, such as us-east-1")
    found = _credentials(p, environ)
    if found is None:
        missing.append(CREDENTIALS_NEEDED)
    if region is None:
        missing.append(REGION_ENVS[0])
    kind, source, profile = found or ("chain", "", None)
    return AwsAccess(region=region or "", kind=kind, source=source, profile=profile), missing


def endpoint(access: AwsAccess) -> str:
    """The Bedrock runtime endpoint of the access's region ("" while the region is unknown)."""
    return ENDPOINT.format(region=access.region) if access.region else ""


def _credentials(
    p: ProviderSpec, environ: Mapping[str, str]
) -> tuple[CredentialKind, str, str | None] | None:
    """(kind, source, profile) of the first credential source visible, in botocore's order."""
    if environ.get(BEARER_ENV):
        return "bearer", f"Bedrock API key ({BEARER_ENV})", None
    if p.profile:
        return "chain", f"AWS profile '{p.profile}' (catalog)", p.profile
    if environ.get("AWS_ACCESS_KEY_ID") and environ.get("AWS_SECRET_ACCESS_KEY"):
        token = ", AWS_SESSION_TOKEN" if environ.get("AWS_SESSION_TOKEN") else ""
        return "environment", f"AWS credentials from environment (AWS_ACCESS_KEY_ID{token})", None
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
        if environ.get(name):
            return "chain", f"AWS profile '{environ[name]}' ({name})", environ[name]
    if environ.get("AWS_WEB_IDENTITY_TOKEN_FILE") and environ.get("AWS_ROLE_ARN"):
        return "chain", "web identity (AWS_WEB_IDENTITY_TOKEN_FILE, AWS_ROLE_ARN)", None
    for name in ("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI"):
        if environ.get(name):
            return "chain", f"container credentials ({name})", None
    shared = _shared_file(environ)
    if shared is not None:
        return "chain", f"AWS default profile ({shared})", None
    if environ.get("AWS_EC2_METADATA_DISABLED", "").lower() == "false":
        return "chain", "EC2 instance role (AWS_EC2_METADATA_DISABLED=false)", None
    return None


def _shared_file(environ: Mapping[str, str]) -> str | None:
    """The shared credentials or config file botocore would read, when one exists."""
    home = environ.get("HOME", "")
    for variable, default in (
        ("AWS_SHARED_CREDENTIALS_FILE", "~/.aws/credentials"),
        ("AWS_CONFIG_FILE", "~/.aws/config"),
    ):
        path = environ.get(variable) or default
        if os.path.isfile(path.replace("~", home, 1) if home else os.path.expanduser(path)):
            return path
    return None
