"""Short-lived bearer tokens (Vertex AI's OAuth access tokens): a static one, or one refreshed ahead of
its expiry in a background task, whose blocking fetch runs in a worker thread.

The event loop never waits on a fetch; a request waits only when no valid token exists (the first
one, or after one was refused), and then shares the one fetch in flight. A failed fetch is retried
with backoff in the background; meanwhile requests fail at once with what went wrong, for
``fail_fast_s``, rather than each starting a fetch of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import NamedTuple, Protocol

from router.clock import Clock
from router.errors import RouterError

# A token is not handed out in its last seconds (the request must reach the upstream before it
# expires): the last ten, or the last quarter of a shorter-lived token's life.
EXPIRY_MARGIN_S = 10.0
# Refresh this long before expiry (google-auth's own threshold is 3 min 45 s), or at half the token's
# lifetime when that is shorter.
AHEAD_S = 300.0
# Assumed lifetime of a token fetched without an expiry (Google's are an hour).
DEFAULT_LIFETIME_S = 3600.0
_log = logging.getLogger("router.providers")


class Grant(NamedTuple):
    """An access token, when it expires (wall-clock seconds; ``None``: not said), and the project
    its credentials bill quota to, if they name one."""

    token: str
    expires_at: float | None = None
    quota_project: str | None = None


class TokenError(Exception):
    """A fetch failed; the message says why, never with a secret in it."""


# Fetches a new grant: blocking (network I/O), so it runs in a worker thread.
Fetch = Callable[[], Grant]
# Turns a failure's reason into the error a request gets.
Failure = Callable[[str], RouterError]
Offload = Callable[[Fetch], Awaitable[Grant]]
Sleep = Callable[[float], Awaitable[None]]


class TokenSource(Protocol):
    """Where an adapter gets the bearer token of its next call."""

    async def grant(self) -> Grant:
        """A valid grant (waits only when none is held)."""
        ...

    def refused(self) -> None:
        """The upstream refused the current token: the next call must not use it."""
        ...

    async def aclose(self) -> None: ...


class StaticToken:
    """A token given from outside (an environment variable), sent as it is and never refreshed."""

    __slots__ = ("_grant",)

    def __init__(self, token: str) -> None:
        self._grant = Grant(token)

    async def grant(self) -> Grant:
        return self._grant

    def refused(self) -> None:
        """Nothing to do: the token is all there is."""

    async def aclose(self) -> None:
        return None


class RefreshingToken:
    """A token kept fresh: fetched (``fetch``, in a thread) when first needed, then again ahead of its
    expiry by a background task, which the first ``grant`` (or ``start``) starts in the running loop."""

    def __init__(
        self,
        fetch: Fetch,
        clock: Clock,
        failure: Failure,
        *,
        name: str = "",
        ahead_s: float = AHEAD_S,
        retry_s: float = 2.0,
        max_retry_s: float = 60.0,
        fail_fast_s: float = 5.0,
        offload: Offload | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._fetch = fetch
        self._clock = clock
        self._failure = failure
        self._name = name
        self._ahead_s = ahead_s
        self._retry_s = retry_s
        self._max_retry_s = max_retry_s
        self._fail_fast_s = fail_fast_s
        self._offload: Offload = offload or _in_thread
        self._sleep = sleep
        self._grant: Grant | None = None
        self._obtained = 0.0  # wall time of the current grant's fetch
        self._pending: asyncio.Future[Grant] | None = None
        self._failed: tuple[str, float] | None = None  # the last failure's reason and wall time
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self.fetches = 0  # fetches started (a test and the logs read it)

    # --- what requests call ---------------------------------------------------------------------

    async def grant(self) -> Grant:
        self.start()
        grant = self._grant
        now = self._clock.wall()
        if grant is not None and now < self._usable_until(grant):
            return grant
        failed = self._failed
        if failed is not None and self._pending is None and now - failed[1] < self._fail_fast_s:
            raise self._failure(failed[0])
        try:
            return await self._refresh()
        except TokenError as exc:
            raise self._failure(str(exc)) from None

    def refused(self) -> None:
        """Forget the current token: the next request waits for a new one (a token refused before
        its expiry, revoked say, would otherwise fail every call until then)."""
        self._grant = None

    def start(self) -> None:
        """Start the background refresh, if there is a running loop and it is not started yet."""
        if self._task is not None or self._closed:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._task = loop.create_task(self._keep_fresh(), name=f"token-refresh:{self._name}")

    async def aclose(self) -> None:
        self._closed = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # --- the schedule ---------------------------------------------------------------------------

    def due_in(self) -> float:
        """Seconds until the next refresh is due (0: now). A token is refreshed ``ahead_s`` before it
        expires, or halfway through its life when it lives less than twice that."""
        grant = self._grant
        if grant is None:
            return 0.0
        expires = self._expires(grant)
        lead = min(self._ahead_s, (expires - self._obtained) / 2)
        return max(expires - lead - self._clock.wall(), 0.0)

    def _usable_until(self, grant: Grant) -> float:
        expires = self._expires(grant)
        return expires - min(EXPIRY_MARGIN_S, (expires - self._obtained) / 4)

    def _expires(self, grant: Grant) -> float:
        if grant.expires_at is not None:
            return grant.expires_at
        return self._obtained + DEFAULT_LIFETIME_S

    async def _keep_fresh(self) -> None:
        failures = 0
        while not self._closed:
            delay = self.due_in()
            if delay > 0:
                await self._sleep(delay)
                continue  # the token may have been replaced meanwhile: look again
            try:
                await self._refresh()
                failures = 0
            except TokenError as exc:
                failures += 1
                backoff = min(self._retry_s * 2 ** (failures - 1), self._max_retry_s)
                fields = {"event": "token_refresh_failed", "provider": self._name, "retry_in_s": backoff}
                _log.warning(
                    "provider %s could not refresh its access token: %s",
                    self._name,
                    exc,
                    extra={"fields": fields},
                )
                await self._sleep(backoff)

    async def _refresh(self) -> Grant:
        """The grant of the fetch in flight, or of a new one (one fetch at a time)."""
        pending = self._pending
        if pending is None:
            pending = self._pending = asyncio.ensure_future(self._fetch_once())
            pending.add_done_callback(_retrieved)
        # Shielded: a request that gives up does not cancel the fetch the others wait for.
        return await asyncio.shield(pending)

    async def _fetch_once(self) -> Grant:
        self.fetches += 1
        try:
            grant = await self._offload(self._fetch)
        except TokenError as exc:
            self._failed = (str(exc), self._clock.wall())
            raise
        except Exception as exc:  # a fetch must not take the loop down with an unexpected error
            reason = f"{type(exc).__name__}: {exc}"
            self._failed = (reason, self._clock.wall())
            raise TokenError(reason) from None
        finally:
            self._pending = None
        self._grant, self._obtained, self._failed = grant, self._clock.wall(), None
        return grant


def _retrieved(future: asyncio.Future[Grant]) -> None:
    """Mark a fetch's failure as seen even when every waiter gave up (its reason is kept apart)."""
    if not future.cancelled():
        future.exception()


async def _in_thread(fetch: Fetch) -> Grant:
    return await asyncio.to_thread(fetch)
