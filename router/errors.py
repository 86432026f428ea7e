"""One error hierarchy: each class knows its HTTP status, OpenAI error type, and routing consequences."""

from __future__ import annotations

import msgspec

# What decoding a JSON body can raise: malformed JSON or a wrong shape (msgspec's DecodeError and its
# ValidationError), and bytes inside a string that are not UTF-8 (which msgspec lets through as is).
DECODE_ERRORS: tuple[type[Exception], ...] = (msgspec.DecodeError, UnicodeDecodeError)


class RouterError(Exception):
    """Base of every error the router reports to a client.

    ``may_fall_back``: another candidate model could still succeed.
    ``counts_against_breaker``: the failure says something about the upstream's health.
    """

    status: int = 500
    error_type: str = "server_error"
    code: str | None = None
    may_fall_back: bool = False
    counts_against_breaker: bool = False
    # False when the same request cannot succeed by retrying soon (tells SDKs not to retry).
    client_should_retry: bool = True
    # The answer ends the connection (``connection: close``): what follows on it cannot be trusted.
    closes_connection: bool = False
    # A provider's own detail of the error (the JSON of Azure's ``innererror``), passed on as it is.
    inner_error: bytes | None = None

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        retry_after: float | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code
        self.retry_after = retry_after
        self.headers = headers or {}
        # Set by the routing engine: each model tried and how it ended ("model:outcome").
        self.attempts: tuple[str, ...] = ()


# --- client errors: the request itself is at fault; never retried elsewhere ---------------------


class InvalidRequest(RouterError):
    status = 400
    error_type = "invalid_request_error"


class ContentFiltered(InvalidRequest):
    """The provider's content filter refused the prompt (Azure's 400 ``content_filter``).

    The request is at fault, not the model: it is not tried on another model as an outage would be,
    does not count against the breaker, and retrying it unchanged gets the same refusal.
    """

    code = "content_filter"
    client_should_retry = False

    def __init__(self, message: str, *, param: str | None = None, inner_error: bytes | None = None) -> None:
        super().__init__(message, param=param)
        self.inner_error = inner_error


class AuthenticationFailed(RouterError):
    status = 401
    error_type = "invalid_request_error"
    code = "invalid_api_key"


class PermissionDenied(RouterError):
    status = 403
    error_type = "invalid_request_error"
    code = "permission_denied"


class NotFound(RouterError):
    status = 404
    error_type = "invalid_request_error"
    code = "not_found"


class ModelNotFound(NotFound):
    code = "model_not_found"


class MethodNotAllowed(RouterError):
    status = 405
    error_type = "invalid_request_error"
    code = "method_not_allowed"


class RequestTimeout(RouterError):
    """The client did not send its whole body in time."""

    status = 408
    error_type = "invalid_request_error"
    code = "request_timeout"
    # The connection is closed after this answer: the rest of a late body must not be read as a request.
    closes_connection = True


class IncompleteBody(RouterError):
    """The connection ended (or the framing broke) before the body declared by the client arrived."""

    status = 400
    error_type = "invalid_request_error"
    code = "incomplete_body"
    closes_connection = True


class HeadersTooLarge(RouterError):
    status = 431
    error_type = "invalid_request_error"
    code = "request_header_fields_too_large"
    client_should_retry = False


class PayloadTooLarge(RouterError):
    status = 413
    error_type = "invalid_request_error"
    code = "request_too_large"
    client_should_retry = False
    closes_connection = True  # the rest of the body is never read


class RateLimited(RouterError):
    """Our own limit rejected the request; it says nothing about upstream health."""

    status = 429
    error_type = "requests"
    code = "rate_limit_exceeded"


class BudgetExceeded(RouterError):
    """A spend budget (the key's, the router's or a model's) has no room for the request; waiting
    a few seconds does not help, so SDKs are told not to retry (``x-should-retry: false``)."""

    status = 429
    error_type = "insufficient_quota"
    code = "budget_exceeded"
    client_should_retry = False


# --- router-side conditions ----------------------------------------------------------------------


class LedgerUnavailable(RouterError):
    """The spend ledger's store (Redis) cannot be reached to answer a report."""

    status = 503
    error_type = "server_error"
    code = "ledger_unavailable"


class ProviderNotConfigured(RouterError):
    """The model's provider has no key in the environment; another model may still serve."""

    status = 503
    error_type = "provider_not_configured"
    code = "provider_not_configured"
    may_fall_back = True
    client_should_retry = False


class AdapterUnavailable(RouterError):
    """The model's provider speaks a wire format this build has no adapter for."""

    status = 501
    error_type = "not_implemented"
    code = "provider_kind_unsupported"
    may_fall_back = True
    client_should_retry = False


class NoCandidate(RouterError):
    """No model can serve this request (all excluded or unavailable)."""

    status = 503
    error_type = "no_model_available"
    code = "no_model_available"


class InternalError(RouterError):
    status = 500
    error_type = "server_error"
    code = "internal_error"


# --- the attempt loop's reasons to move on to the next candidate ----------------------------------


class BreakerOpen(NoCandidate):
    """A model's breaker opened while its request was being retried; the next model may serve."""

    may_fall_back = True


class ModelLimited(RateLimited):
    """A model's own rate limit is spent: the next candidate may serve; it says nothing of health."""

    may_fall_back = True


class ModelBudgetExceeded(BudgetExceeded):
    """A model's own budget (or the room left for its estimate) is spent: the next candidate may serve."""

    may_fall_back = True


class FlexRefused(RouterError):
    """A flex request refused for capacity; retried at once at the standard tier."""

    may_fall_back = True


# --- upstream failures ---------------------------------------------------------------------------


class UpstreamError(RouterError):
    """Base for failures that come from talking to a provider."""

    status = 502
    error_type = "upstream_error"
    may_fall_back = True
    counts_against_breaker = True


class UpstreamUnreachable(UpstreamError):
    """Connection refused, reset, DNS failure: no answer was received."""

    status = 502
    error_type = "upstream_unreachable"
    code = "upstream_unreachable"


class UpstreamTimeout(UpstreamError):
    status = 504
    error_type = "upstream_timeout"
    code = "upstream_timeout"


class UpstreamBadResponse(UpstreamError):
    """The upstream answered, but not in its documented format."""

    status = 502
    error_type = "upstream_bad_response"
    code = "upstream_bad_response"


class StreamInterrupted(UpstreamError):
    """The upstream stream broke off or reported an error after it had started."""

    status = 502
    error_type = "upstream_stream_interrupted"
    code = "stream_interrupted"


class UpstreamStatusError(UpstreamError):
    """The upstream answered with an error status; its status and message are passed back.

    Client-side statuses (400, 401, 403, 404, 409, 413, 422) mean the request would fail anywhere or
    that our key is wrong for this provider: they do not count against the breaker. 429 and 5xx do.
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        error_type: str | None = None,
        param: str | None = None,
        code: str | None = None,
        retry_after: float | None = None,
        provider: str = "",
    ) -> None:
        super().__init__(message, param=param, code=code, retry_after=retry_after)
        self.status = status
        self.provider = provider
        self.error_type = error_type or _default_type(status)
        client_side = status < 500 and status != 429 and status != 408
        self.counts_against_breaker = not client_side
        # A 401/403 from the upstream is the router's key at fault, not the client's request:
        # another provider may still serve it.
        self.may_fall_back = not client_side or status in (401, 403)


def _default_type(status: int) -> str:
    if status == 429:
        return "rate_limit_error"
    if status >= 500:
        return "server_error"
    return "invalid_request_error"


def listed(names: list[str], limit: int = 6) -> str:
    """``a, b, c`` — or ``a, b, c and 4 more`` past ``limit``: lists in messages are never cut silently."""
    if len(names) <= limit:
        return ", ".join(names)
    return f"{', '.join(names[:limit])} and {len(names) - limit} more"
