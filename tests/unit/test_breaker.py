"""Circuit breaker: scripted transitions on a fake clock, and invariants under random event sequences."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from router.clock import FakeClock
from router.routing.breaker import Breaker, BreakerBoard, BreakerPolicy, LastError, Ticket

POLICY = BreakerPolicy(
    consecutive_failures=3,
    window_s=30,
    min_volume=6,
    failure_rate=0.5,
    cooldown_s=10,
    max_cooldown_s=80,
    backoff=2,
    half_open_probes=2,
)
ERROR = LastError(status=500, type="server_error", message="boom", at=0.0)


def breaker(clock: FakeClock, log: list[tuple[str, str]] | None = None) -> Breaker:
    def note(model: str, old: str, new: str, reason: str) -> None:
        if log is not None:
            log.append((old, new))

    return Breaker("m", POLICY, clock, note)


def test_consecutive_failures_open_then_half_open_probe_closes() -> None:
    clock, log = FakeClock(), []
    b = breaker(clock, log)
    for _ in range(3):
        assert b.acquire()
        b.failure(ERROR)
    assert b.state == "open" and not b.available()
    clock.advance(9.9)
    assert not b.available()
    clock.advance(0.2)
    assert b.acquire() == "probe" and b.acquire() == "probe" and b.acquire() is None  # two at most
    b.success("probe")
    assert b.state == "closed" and b.consecutive == 0
    assert log == [("closed", "open"), ("open", "half_open"), ("half_open", "closed")]


def test_a_last_resort_call_takes_no_probe_slot_and_counts_like_a_probe() -> None:
    clock, log = FakeClock(), []
    b = breaker(clock, log)
    for _ in range(3):
        b.failure(ERROR)
    clock.advance(10.1)
    assert b.acquire() == "probe" and b.acquire() == "probe"  # both probes in flight, stalled
    assert b.acquire() is None  # an ordinary call is refused ...
    assert b.acquire(force=True) == "forced"  # ... the last resort is not
    assert b.probes == 2  # and took no probe slot
    b.success("forced")
    assert b.state == "closed"
    assert log[-1] == ("half_open", "closed")
    b.success("probe")  # the stalled probes end later: the count never goes negative
    b.success("probe")
    assert b.probes == 0 and b.state == "closed"


def test_a_failed_last_resort_keeps_an_open_breaker_open_without_growing_its_cooldown() -> None:
    clock = FakeClock()
    b = breaker(clock)
    for _ in range(3):
        b.failure(ERROR)
    until, trips = b.open_until, b.trips
    for _ in range(5):
        assert b.acquire(force=True) == "forced"
        b.failure(ERROR, ticket="forced")
    assert b.state == "open" and b.open_until == until and b.trips == trips
    clock.advance(10.1)
    assert b.acquire(force=True) == "probe"  # half-open with a free slot: an ordinary probe
    assert b.acquire(force=True) == "probe"
    assert b.acquire(force=True) == "forced"
    b.failure(ERROR, ticket="forced")  # a failure while half-open re-opens it
    assert b.state == "open"


def test_retry_after_longer_than_cooldown_holds_the_breaker_open() -> None:
    clock = FakeClock()
    b = breaker(clock)
    for _ in range(3):
        b.failure(ERROR, retry_after=25)
    clock.advance(20)
    assert b.state == "open" and not b.available()
    clock.advance(5.1)
    assert b.available()


def test_repeated_trips_grow_the_cooldown_up_to_the_cap() -> None:
    clock = FakeClock()
    b = breaker(clock)
    lengths = []
    for _ in range(5):
        while b.state != "open":
            b.acquire()
            b.failure(ERROR)
        start = clock.monotonic()
        lengths.append(b.open_until - start)
        clock.advance(b.open_until - start)
        assert b.acquire() == "probe"
        b.failure(ERROR, ticket="probe")  # fails: re-open with a longer cooldown
        clock.advance(b.open_until - clock.monotonic())
        b.success(b.acquire() or "call")
    assert lengths[0] == 10


def test_failure_rate_over_window_with_minimum_volume() -> None:
    clock = FakeClock()
    b = breaker(clock)
    for ok in [True, False, True, False, True]:  # 2 of 5: below the volume of 6
        (b.success if ok else lambda: b.failure(ERROR))()
    assert b.state == "closed"
    b.failure(ERROR)  # 3 of 6 = 50 %
    assert b.state == "open"


def test_board_creates_breakers_on_first_use() -> None:
    board = BreakerBoard(POLICY, FakeClock())
    assert board.available("x")
    assert board.get("x") is board.get("x")


events = st.lists(
    st.one_of(
        st.tuples(st.just("acquire"), st.booleans()),
        st.tuples(st.just("success"), st.none()),
        st.tuples(st.just("failure"), st.one_of(st.none(), st.floats(min_value=0, max_value=100))),
        st.tuples(st.just("release"), st.none()),
        st.tuples(st.just("wait"), st.floats(min_value=0, max_value=60)),
    ),
    max_size=120,
)


@settings(max_examples=500, deadline=None)
@given(events)
def test_invariants_under_random_sequences(sequence: list[tuple[str, object]]) -> None:
    clock = FakeClock()
    b = breaker(clock)
    last_open_until = 0.0
    tickets: list[Ticket] = []  # calls in flight
    for kind, arg in sequence:
        if kind == "acquire":
            ticket = b.acquire(force=bool(arg))
            if ticket is not None:
                tickets.append(ticket)
        elif kind == "success":
            b.success(tickets.pop() if tickets else "call")
        elif kind == "failure":
            b.failure(ERROR, retry_after=arg, ticket=tickets.pop() if tickets else "call")  # type: ignore[arg-type]
        elif kind == "release":
            b.release(tickets.pop() if tickets else "call")
        else:
            clock.advance(float(arg))  # type: ignore[arg-type]
        view = b.view()  # what an observer sees now
        assert view.state == b.state
        # open-until is never shortened
        assert b.open_until >= last_open_until
        last_open_until = b.open_until
        # never closed while the window or the streak would trip it
        if b.state == "closed":
            failures, volume = b.window_counts()
            assert b.consecutive < POLICY.consecutive_failures
            assert not (volume >= POLICY.min_volume and failures / volume >= POLICY.failure_rate)
        # half-open never has more probes in flight than allowed
        assert 0 <= b.probes <= POLICY.half_open_probes
        # an open breaker admits nothing until its time is up
        if b.state == "open":
            assert not b.available() and clock.monotonic() < b.open_until


def test_window_counts_stay_exact_as_outcomes_expire() -> None:
    clock = FakeClock()
    b = Breaker(
        "m", BreakerPolicy(consecutive_failures=1000, min_volume=1000, window_s=10), clock, lambda *_: None
    )
    for i in range(30):
        b.failure(ERROR) if i % 3 == 0 else b.success()
        clock.advance(1)
    # One-second buckets leave once their whole second is older than 10 s: steps 20 to 29 remain.
    recent = [(i % 3 == 0) for i in range(20, 30)]
    assert b.window_counts() == (sum(recent), 10)
    assert len(b.window) <= 11  # bounded by seconds, not by requests
