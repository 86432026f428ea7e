"""The fake Google OAuth 2.0 token endpoint and the service-account keys it knows: what lets the router's
real google-auth refresh path run against the simulated Vertex AI.

``ServiceAccounts.create`` makes a key pair and returns the key file a console download would give
(``type: service_account``, ``private_key``, ``client_email``, ``token_uri`` pointing here); the mock
keeps the public half. ``POST {token_uri}`` takes RFC 7523's JWT bearer grant as Google does: the
assertion's RS256 signature checked with the account's public key, ``aud`` Google's token endpoint
(google-auth always writes ``https://oauth2.googleapis.com/token``, whatever the ``token_uri``),
``iss`` the account, a lifetime of at most an hour around now, a scope; it answers
``{access_token, expires_in, token_type}`` or Google's ``invalid_grant`` errors. Issued tokens are
checked on every model call (unknown, expired, or without the ``cloud-platform`` scope: refused).

Uses ``cryptography`` (a dependency of google-auth), imported only when a key is made or checked.
"""

from __future__ import annotations

import base64
import binascii
import os
import threading
import time
from collections.abc import Mapping
from typing import Any, Final, Literal, NamedTuple

import msgspec

JWT_GRANT: Final = "urn:ietf:params:oauth:grant-type:jwt-bearer"
GOOGLE_TOKEN_AUDIENCE: Final = "https://oauth2.googleapis.com/token"  # noqa: S105 - a URL
CLOUD_PLATFORM: Final = "https://www.googleapis.com/auth/cloud-platform"
TOKEN_PREFIX: Final = "ya29.mock-"  # noqa: S105 - how an issued token starts
MAX_ASSERTION_S: Final = 3600
CLOCK_SKEW_S: Final = 300
_SHORT_LIVED: Final = (
    "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your "
    "iat and exp values in the JWT claim."
)


class TokenAnswer(NamedTuple):
    """What the token endpoint answers: a status and its JSON body."""

    status: int
    body: dict[str, Any]


class _Claims(msgspec.Struct):
    iss: str = ""
    aud: str = ""
    scope: str = ""
    iat: int = 0
    exp: int = 0


class _Account(NamedTuple):
    public_key: Any  # cryptography's RSAPublicKey
    key_id: str
    lifetime_s: int


class _Issued(NamedTuple):
    expires: float  # time.time()
    scopes: frozenset[str]


TokenCheck = Literal["ok", "unknown", "expired", "scope"]


class ServiceAccounts:
    """Service-account keys the fake token endpoint accepts, and the access tokens it issued."""

    def __init__(self) -> None:
        self._accounts: dict[str, _Account] = {}
        self._issued: dict[str, _Issued] = {}
        self._lock = threading.Lock()

    def create(
        self, token_uri: str, project: str, email: str | None = None, lifetime_s: int = 3599
    ) -> dict[str, str]:
        """A new service account's key file; its tokens last ``lifetime_s`` seconds."""
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        key_id = os.urandom(20).hex()
        email = email or f"router-{os.urandom(3).hex()}@{project}.iam.gserviceaccount.com"
        with self._lock:
            self._accounts[email] = _Account(key.public_key(), key_id, lifetime_s)
        return {
            "type": "service_account",
            "project_id": project,
            "private_key_id": key_id,
            "private_key": pem,
            "client_email": email,
            "client_id": str(int.from_bytes(os.urandom(8), "big")),
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": token_uri,
            "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
            "universe_domain": "googleapis.com",
        }

    def exchange(self, form: Mapping[str, str]) -> TokenAnswer:
        """Answer a token request (its form fields) as Google's token endpoint does."""
        grant_type = form.get("grant_type", "")
        if grant_type != JWT_GRANT:
            return _refused("unsupported_grant_type", f"Invalid grant_type: {grant_type}")
        parts = form.get("assertion", "").split(".")
        if len(parts) != 3:
            return _refused("invalid_grant", "Invalid JWT: the assertion is not a JWT.")
        try:
            header = msgspec.json.decode(_unpad(parts[0]))
            claims = msgspec.json.decode(_unpad(parts[1]), type=_Claims)
            signature = _unpad(parts[2])
        except (msgspec.DecodeError, binascii.Error, ValueError):
            return _refused("invalid_grant", "Invalid JWT: the assertion cannot be decoded.")
        with self._lock:
            account = self._accounts.get(claims.iss)
        if account is None:
            return _refused("invalid_grant", "Invalid grant: account not found")
        signed = f"{parts[0]}.{parts[1]}".encode()
        if (
            not isinstance(header, dict)
            or header.get("alg") != "RS256"
            or header.get("kid", account.key_id) != account.key_id
            or not _verified(account, signed, signature)
        ):
            return _refused("invalid_grant", "Invalid JWT Signature.")
        if claims.aud != GOOGLE_TOKEN_AUDIENCE:
            return _refused(
                "invalid_grant",
                f"Invalid JWT: Failed audience check. The expected value was {GOOGLE_TOKEN_AUDIENCE}.",
            )
        now = time.time()
        lifetime = claims.exp - claims.iat
        if (
            not 0 < lifetime <= MAX_ASSERTION_S
            or claims.iat > now + CLOCK_SKEW_S
            or claims.exp < now - CLOCK_SKEW_S
        ):
            return _refused("invalid_grant", _SHORT_LIVED)
        if not claims.scope.split():
            return _refused("invalid_scope", "Invalid OAuth scope or ID token audience provided.")
        token = TOKEN_PREFIX + os.urandom(24).hex()
        with self._lock:
            self._issued[token] = _Issued(now + account.lifetime_s, frozenset(claims.scope.split()))
        return TokenAnswer(
            200, {"access_token": token, "expires_in": account.lifetime_s, "token_type": "Bearer"}
        )

    def check(self, token: str) -> TokenCheck:
        """What the fake Vertex AI makes of a token it issued (``unknown`` if it did not issue it)."""
        with self._lock:
            issued = self._issued.get(token)
        if issued is None:
            return "unknown"
        if time.time() >= issued.expires:
            return "expired"
        return "ok" if CLOUD_PLATFORM in issued.scopes else "scope"

    @property
    def issued(self) -> int:
        """How many access tokens the endpoint has issued."""
        with self._lock:
            return len(self._issued)


def _refused(error: str, description: str) -> TokenAnswer:
    return TokenAnswer(400, {"error": error, "error_description": description})


def _unpad(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _verified(account: _Account, signed: bytes, signature: bytes) -> bool:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    try:
        account.public_key.verify(signature, signed, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return False
    return True
