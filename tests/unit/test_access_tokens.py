"""Access tokens kept fresh on a fake clock: fetched ahead of expiry in the background, the blocking fetch
in a thread (the event loop goes on meanwhile), one fetch shared by every waiter, failures reported at
once with what to fix, a refused token dropped."""

from __future__ import annotations

import asyncio
import threading

import pytest

from router.clock import FakeClock
from router.errors import RouterError, UpstreamStatusError
from router.providers._tokens import AHEAD_S, Grant, RefreshingToken, StaticToken, TokenError


class Fetches:
    """A blocking fetch the test drives: each call mints ``token-N`` living ``lifetime`` seconds, or
    fails with ``error``; with ``gate`` set up, a call waits for it (in its worker thread)."""

    def __init__(self, clock: FakeClock, lifetime: float = 3600.0) -> None:
        self.clock = clock
        self.lifetime = lifetime
        self.calls = 0
        self.error: str | None = None
        self.gate: threading.Event | None = None
        self.threads: set[int] = set()

    def __call__(self) -> Grant:
        self.calls += 1
        self.threads.add(threading.get_ident())
        if self.gate is not None:
            assert self.gate.wait(5), "the test never opened the gate"
        if self.error is not None:
            raise TokenError(self.error)
        return Grant(f"token-{self.calls}", self.clock.wall() + self.lifetime)


class Sleeper:
    """The background task's sleep: records each delay asked and returns only when woken."""

    def __init__(self) -> None:
        self.asked: list[float] = []
        self._waiting: asyncio.Future[None] | None = None

    async def __call__(self, seconds: float) -> None:
        self.asked.append(seconds)
        self._waiting = asyncio.get_running_loop().create_future()
        await self._waiting

    def wake(self) -> None:
        assert self._waiting is not None and not self._waiting.done()
        self._waiting.set_result(None)


def failure(reason: str) -> RouterError:
    return UpstreamStatusError(502, f"no token: {reason}", code="upstream_auth_failed")


async def settle(condition: object = None, rounds: int = 200) -> None:
    """Let the loop (and a worker thread) run until ``condition()`` holds."""
    for _ in range(rounds):
        if condition is None or condition():  # type: ignore[operator]
            return
        await asyncio.sleep(0.005)
    if condition is not None:
        raise AssertionError("the condition never held")


def source(fetch: Fetches, clock: FakeClock, sleeper: Sleeper) -> RefreshingToken:
    return RefreshingToken(fetch, clock, failure, name="vertex", sleep=sleeper)


async def test_the_first_token_is_fetched_once_for_every_waiter_in_a_worker_thread() -> None:
    clock = FakeClock()
    fetch, sleeper = Fetches(clock), Sleeper()
    fetch.gate = threading.Event()
    tokens = source(fetch, clock, sleeper)
    waiters = [asyncio.ensure_future(tokens.grant()) for _ in range(5)]
    await settle(lambda: fetch.calls == 1)
    # The loop is free while the fetch blocks in its thread: this sleep returns.
    await asyncio.sleep(0.01)
    assert not any(w.done() for w in waiters)
    fetch.gate.set()
    grants = await asyncio.gather(*waiters)
    assert {g.token for g in grants} == {"token-1"} and fetch.calls == 1
    assert threading.get_ident() not in fetch.threads
    await tokens.aclose()


async def test_a_token_is_refreshed_ahead_of_its_expiry_without_holding_up_requests() -> None:
    clock = FakeClock()
    fetch, sleeper = Fetches(clock), Sleeper()
    tokens = source(fetch, clock, sleeper)
    assert (await tokens.grant()).token == "token-1"
    # The background task sleeps until AHEAD_S before the hour is up.
    await settle(lambda: len(sleeper.asked) == 1)
    assert sleeper.asked == [3600.0 - AHEAD_S]
    clock.advance(3600.0 - AHEAD_S)
    fetch.gate = threading.Event()
    sleeper.wake()
    await settle(lambda: fetch.calls == 2)
    # The refresh is blocked in its thread; requests are served the current token at once.
    for _ in range(3):
        grant = await asyncio.wait_for(tokens.grant(), timeout=0.5)
        assert grant.token == "token-1"
    fetch.gate.set()
    await settle(lambda: len(sleeper.asked) == 2)
    assert (await tokens.grant()).token == "token-2"
    assert sleeper.asked[1] == 3600.0 - AHEAD_S  # the next refresh, an hour on
    await tokens.aclose()


async def test_a_short_lived_token_is_refreshed_halfway_and_never_handed_out_in_its_last_quarter() -> None:
    clock = FakeClock()
    fetch, sleeper = Fetches(clock, lifetime=8.0), Sleeper()
    tokens = source(fetch, clock, sleeper)
    await tokens.grant()
    await settle(lambda: sleeper.asked == [4.0])
    clock.advance(6.5)  # within the last quarter, and the background refresh is asleep
    assert (await tokens.grant()).token == "token-2"  # this request had to wait for a new one
    assert tokens.due_in() == 4.0
    await tokens.aclose()


async def test_a_failed_fetch_fails_requests_at_once_with_its_reason_until_the_retry() -> None:
    clock = FakeClock()
    fetch, sleeper = Fetches(clock), Sleeper()
    fetch.error = "invalid_grant: Invalid JWT Signature."
    tokens = source(fetch, clock, sleeper)
    with pytest.raises(RouterError) as info:
        await tokens.grant()
    assert info.value.status == 502 and "Invalid JWT Signature" in info.value.message
    await settle(lambda: len(sleeper.asked) == 1)
    assert sleeper.asked == [2.0]  # the background task backs off
    with pytest.raises(RouterError):
        await tokens.grant()
    assert fetch.calls == 1  # failed fast: no fetch of its own
    clock.advance(6)
    fetch.error = None
    assert (await tokens.grant()).token == "token-2"
    await tokens.aclose()


async def test_a_refused_token_is_dropped_and_the_next_request_gets_another() -> None:
    clock = FakeClock()
    fetch, sleeper = Fetches(clock), Sleeper()
    tokens = source(fetch, clock, sleeper)
    assert (await tokens.grant()).token == "token-1"
    tokens.refused()
    assert (await tokens.grant()).token == "token-2"
    await tokens.aclose()


async def test_closing_stops_the_background_refresh() -> None:
    clock = FakeClock()
    fetch, sleeper = Fetches(clock), Sleeper()
    tokens = source(fetch, clock, sleeper)
    await tokens.grant()
    await settle(lambda: len(sleeper.asked) == 1)
    await tokens.aclose()
    tokens.start()  # closed: no new task
    clock.advance(7200)
    await asyncio.sleep(0.02)
    assert fetch.calls == 1


async def test_a_static_token_is_sent_as_it_is() -> None:
    tokens = StaticToken("ya29.static")
    tokens.refused()
    assert await tokens.grant() == Grant("ya29.static")
    await tokens.aclose()
