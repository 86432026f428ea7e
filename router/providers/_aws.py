"""How a Bedrock call proves who sends it: SigV4 signed with botocore, or a Bedrock API key as a bearer.

Signing is pure CPU (two SHA-256 and five HMACs) and runs on the event loop; the timestamp comes from
the caller (the router's clock), not from the system. Credentials come from botocore's chain, which
may read files or call STS, SSO, a container endpoint or the instance metadata service: they are
resolved in a thread as soon as the adapter is built and kept. Temporary credentials are refreshed in
a thread in the background from 15 minutes before they expire, and waited for only in their last 10
(botocore's advisory and mandatory windows). A failed resolution is retried at most every 30 seconds;
meanwhile calls fail at once with ``ProviderNotConfigured`` (503, another deployment may serve).
Needs the ``router[aws]`` extra: only the Bedrock adapter imports this module.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import time
from collections.abc import Callable
from typing import Any, Protocol

import botocore.session
from botocore.auth import SIGV4_TIMESTAMP, SigV4Auth
from botocore.awsrequest import AWSRequest

from router.catalog import Provider
from router.catalog.aws import AwsAccess
from router.errors import ProviderNotConfigured

SERVICE = "bedrock"  # the signing name of bedrock-runtime (its endpoint's name is not the signing name)
ADVISORY_S = 15 * 60
MANDATORY_S = 10 * 60
RETRY_S = 30.0

# Resolves credentials (blocking): a botocore ``Credentials`` or ``None`` when the chain has none.
Resolve = Callable[[], Any]


class Signer(Protocol):
    """Adds the credential headers of one call to ``headers`` (a new dict)."""

    async def sign(self, url: str, headers: dict[str, str], body: bytes, now: float) -> dict[str, str]: ...

    async def aclose(self) -> None: ...


class BearerSigner:
    """A Bedrock API key (``AWS_BEARER_TOKEN_BEDROCK``) sent as ``Authorization: Bearer``."""

    __slots__ = ("_value",)

    def __init__(self, token: str) -> None:
        self._value = f"Bearer {token}"

    async def sign(self, url: str, headers: dict[str, str], body: bytes, now: float) -> dict[str, str]:
        return {**headers, "authorization": self._value}

    async def aclose(self) -> None:
        return None


class _ClockedSigV4(SigV4Auth):  # type: ignore[misc]  # botocore is untyped
    """botocore's SigV4, with the request time given rather than read from the system clock."""

    def __init__(self, credentials: Any, region: str, timestamp: str, service: str = SERVICE) -> None:
        super().__init__(credentials, service, region)
        self._timestamp = timestamp

    def add_auth(self, request: AWSRequest) -> None:
        # SigV4Auth.add_auth's steps, with our timestamp.
        request.context["timestamp"] = self._timestamp
        self._modify_request_before_signing(request)
        canonical = self.canonical_request(request)
        signature = self.signature(self.string_to_sign(request, canonical), request)
        self._inject_signature_to_request(request, signature)


def sigv4_headers(
    credentials: Any, region: str, url: str, headers: dict[str, str], body: bytes, now: float
) -> dict[str, str]:
    """``headers`` plus ``X-Amz-Date``, ``X-Amz-Security-Token`` (temporary credentials) and
    ``Authorization``, signing every header given, the host of ``url`` and the body's hash. The
    caller sends exactly these headers and bytes (the HTTP client adds only unsigned ones)."""
    stamp = datetime.datetime.fromtimestamp(now, datetime.UTC).strftime(SIGV4_TIMESTAMP)
    request = AWSRequest(method="POST", url=url, headers=headers, data=body)
    _ClockedSigV4(credentials, region, stamp).add_auth(request)
    # ``host`` is signed from the URL; the HTTP client writes that same header itself.
    return {name: value for name, value in request.headers.items() if name.lower() != "host"}


class SigV4Signer:
    """SigV4 with the provider's credentials, kept fresh off the event loop (see the module's docstring)."""

    def __init__(self, provider: str, access: AwsAccess, resolve: Resolve | None = None) -> None:
        self._provider = provider
        self._access = access
        self._resolve = resolve or chain_resolver(access)
        self._credentials: Any = None  # botocore Credentials (refreshable or not)
        self._frozen: Any = None  # the ReadOnlyCredentials signing uses now
        self._task: asyncio.Task[None] | None = None
        self._failure: tuple[float, str] | None = None  # (monotonic time, why) of the last failed load
        with contextlib.suppress(RuntimeError):  # no running loop: the first call loads them
            self._task = asyncio.get_running_loop().create_task(self._load())

    async def sign(self, url: str, headers: dict[str, str], body: bytes, now: float) -> dict[str, str]:
        return sigv4_headers(await self._current(), self._access.region, url, headers, body, now)

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _current(self) -> Any:
        frozen, credentials = self._frozen, self._credentials
        if frozen is not None:
            refreshable = hasattr(credentials, "refresh_needed")
            if not refreshable or not credentials.refresh_needed(ADVISORY_S):
                return frozen
            if not credentials.refresh_needed(MANDATORY_S):
                self._start_load()  # in the background; these are good for ten minutes more
                return frozen
        task = self._start_load()
        if task is not None:
            await asyncio.shield(task)  # a cancelled request must not cancel the shared load
        if self._frozen is None or (
            hasattr(self._credentials, "refresh_needed") and self._credentials.refresh_needed(0)
        ):
            reason = self._failure[1] if self._failure else "no credentials were found"
            raise ProviderNotConfigured(
                f"provider '{self._provider}' has no usable AWS credentials ({self._access.source}): {reason}"
            )
        return self._frozen

    def _start_load(self) -> asyncio.Task[None] | None:
        """The load in progress, or a new one (``None`` while a recent failure is not to be retried)."""
        task = self._task
        if task is not None and not task.done():
            return task
        failure = self._failure
        if failure is not None and time.monotonic() - failure[0] < RETRY_S:
            return None
        self._task = asyncio.get_running_loop().create_task(self._load())
        return self._task

    async def _load(self) -> None:
        """Resolve (first time) or refresh the credentials in a thread; never raises."""
        try:
            credentials, frozen = await asyncio.to_thread(_freeze, self._credentials, self._resolve)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._failure = (time.monotonic(), f"{type(exc).__name__}: {exc}"[:500])
            return
        if frozen is None:
            self._failure = (time.monotonic(), "the AWS credential chain found none")
            return
        self._credentials, self._frozen, self._failure = credentials, frozen, None


def _freeze(credentials: Any, resolve: Resolve) -> tuple[Any, Any]:
    """(credentials, a frozen copy): resolved when there are none yet; refreshed by botocore when due."""
    found = credentials if credentials is not None else resolve()
    if found is None:
        return None, None
    return found, found.get_frozen_credentials()


def chain_resolver(access: AwsAccess) -> Resolve:
    """botocore's default chain (environment, profiles, web identity, SSO, container, instance role),
    with the catalog's profile when it names one."""

    def resolve() -> Any:
        return botocore.session.Session(profile=access.profile).get_credentials()

    return resolve


def chain_method(access: AwsAccess) -> tuple[bool, str]:
    """Whether the chain gives credentials now, and which of its sources does (``shared-credentials-file``,
    ``sso``, ``iam-role``) or why not; never a credential itself. Blocking: for ``router check`` only."""
    try:
        found = chain_resolver(access)()
    except Exception as exc:
        return False, f"the AWS chain failed: {type(exc).__name__}: {exc}"[:300]
    if found is None:
        return False, "but the AWS chain found none"
    return True, f"resolved by botocore ({found.method})"


def build_signer(provider: Provider) -> Signer:
    """The signer a configured Bedrock provider's calls use."""
    access = provider.aws
    if access is None or not access.region:
        raise ValueError(f"provider '{provider.name}' has no AWS region")
    if access.kind == "bearer" and provider.api_key:
        return BearerSigner(provider.api_key)
    return SigV4Signer(provider.name, access)
