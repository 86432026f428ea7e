"""google-auth behind one callable: the blocking fetch of a Google OAuth access token, run in a worker
thread by ``_tokens.RefreshingToken``. The only module that imports google-auth (the ``router[gcp]``
extra), and only when it is first called.

Credentials are what Google's SDKs find: the key file ``GOOGLE_APPLICATION_CREDENTIALS`` names (a
service account's, a user's, a workload identity federation config), else application default
credentials (gcloud's file, the metadata server on Google Cloud), loaded once, on the first fetch,
with the ``cloud-platform`` scope. Each fetch refreshes them: a signed JWT assertion exchanged at the
key's ``token_uri`` for a service account. A token endpoint that hangs is given up on after
``TOKEN_TIMEOUT_S`` (google-auth's own default is two minutes).
"""

from __future__ import annotations

import calendar
import warnings
from typing import Any

from router.providers._tokens import Grant, TokenError

SCOPE = "https://www.googleapis.com/auth/cloud-platform"
TOKEN_TIMEOUT_S = 30.0


class GoogleCredentials:
    """Fetches a fresh access token with google-auth (blocking: call it in a worker thread)."""

    def __init__(self, credentials_file: str = "") -> None:
        self._file = credentials_file
        self._credentials: Any = None
        self._request: Any = None

    def __call__(self) -> Grant:
        try:
            from google.auth import exceptions
        except ImportError as exc:
            raise TokenError(f"google-auth cannot be imported ({exc}): install router[gcp]") from None
        try:
            credentials = self._credentials or self._load()
            credentials.refresh(self._request)
        except exceptions.GoogleAuthError as exc:
            raise TokenError(_reason(exc)) from None
        except (OSError, ValueError) as exc:  # an unreadable or malformed key file
            raise TokenError(f"{type(exc).__name__}: {exc}") from None
        expiry = credentials.expiry  # a naive datetime in UTC, or None
        return Grant(
            token=str(credentials.token),
            expires_at=float(calendar.timegm(expiry.timetuple())) if expiry is not None else None,
            quota_project=getattr(credentials, "quota_project_id", None) or None,
        )

    def _load(self) -> Any:
        import google.auth
        from google.auth.transport.requests import Request

        if self._file:
            load: Any = google.auth.load_credentials_from_file  # untyped in google-auth
            # The file is the operator's own configuration, which google.auth.default() loads with
            # this very function, its warning about files from untrusted sources silenced likewise.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                credentials, _ = load(self._file, scopes=[SCOPE])
        else:
            credentials, _ = google.auth.default(scopes=[SCOPE])
        self._request = _Bounded(Request())
        self._credentials = credentials
        return credentials


class _Bounded:
    """google-auth's HTTP transport with a time limit on calls that set none (the token endpoint's)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __call__(
        self, url: str, method: str = "GET", body: Any = None, headers: Any = None, **kwargs: Any
    ) -> Any:
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = TOKEN_TIMEOUT_S
        return self._inner(url, method=method, body=body, headers=headers, **kwargs)


def _reason(exc: Exception) -> str:
    """google-auth's message: its first argument (the others may hold the endpoint's raw answer),
    and the error it wraps, which says what was wrong with a key file."""
    first = exc.args[0] if exc.args else ""
    text = first if isinstance(first, str) and first else type(exc).__name__
    cause = exc.__cause__
    if cause is not None and cause.args and isinstance(cause.args[0], str):
        text = f"{text}: {cause.args[0]}"
    return text[:500]
