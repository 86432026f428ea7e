"""The faults a chaos run injects: which upstream models are flaky, the kinds they rotate through, and the
task that keeps rotating them (each a timed brownout on the simulated providers)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, Final, NamedTuple

from tests.chaos.cluster import MockControl

Spec = dict[str, Any]

STREAM_KINDS: Final[tuple[Spec, ...]] = (
    {"kind": "stall", "delay": 4},
    {"kind": "stall_mid", "after_chunks": 3, "delay": 4},
    {"kind": "cut", "after_chunks": 1},
    {"kind": "cut", "after_chunks": 5},
    {"kind": "cut", "after_finish": True},
    {"kind": "malformed_sse", "after_chunks": 2},
    {"kind": "stream_error", "after_chunks": 2},
    {"kind": "trickle", "interval": 0.02},
)
"""Faults only a stream meets (a non-stream request passes them by)."""
REQUEST_KINDS: Final[tuple[Spec, ...]] = (
    {"kind": "status", "status": 500, "message": "chaos: internal error"},
    {"kind": "status", "status": 502, "message": "chaos: bad gateway"},
    {"kind": "status", "status": 503},
    {"kind": "status", "status": 429, "retry_after": 1},
    {"kind": "timeout", "delay": 4},
    {"kind": "reset"},
    {"kind": "drop"},
    {"kind": "malformed"},
    {"kind": "truncated"},
    {"kind": "truncated", "claims_more": True},
    {"kind": "trickle", "interval": 0.02, "pieces": 8},
)
"""Faults of the whole exchange (``truncated`` only for non-stream requests)."""
OVERLOADED: Final[Spec] = {"kind": "status", "status": 529}


class Flaky(NamedTuple):
    """An upstream model that faults: its provider, its name there, and what it rotates through."""

    provider: str
    upstream: str
    stream_kinds: tuple[Spec, ...]
    request_kinds: tuple[Spec, ...]


FLAKY: Final = (
    Flaky("openai", "flaky-oa", STREAM_KINDS, REQUEST_KINDS),
    Flaky("anthropic", "flaky-an", STREAM_KINDS, (*REQUEST_KINDS, OVERLOADED)),
    Flaky("gemini", "flaky-ge", STREAM_KINDS, REQUEST_KINDS),
    Flaky("openai", "davinci-002", STREAM_KINDS, REQUEST_KINDS),
    Flaky("openai", "text-embedding-3-small", (), REQUEST_KINDS),
)


def label(fault: Spec | None) -> str:
    """A short name for a fault: its kind and the fields that set it apart."""
    if not fault:
        return "none"
    kind = str(fault["kind"])
    if kind == "status":
        return f"status {fault.get('status', 500)}"
    if kind == "cut":
        return (
            "cut after finish" if fault.get("after_finish") else f"cut after {fault.get('after_chunks', 2)}"
        )
    if kind == "truncated" and fault.get("claims_more"):
        return "truncated (claims more)"
    return kind


def slot_faults(slot: int) -> list[tuple[Flaky, Spec, float]]:
    """The faults of one slot: per flaky model, a stream kind and a request kind (each model at its own
    offset in the rotation), failing every request on even slots and half of them on odd ones."""
    ratio = 1.0 if slot % 2 == 0 else 0.5
    chosen = []
    for index, flaky in enumerate(FLAKY):
        if flaky.stream_kinds:
            chosen.append((flaky, flaky.stream_kinds[(slot + index) % len(flaky.stream_kinds)], ratio))
        chosen.append((flaky, flaky.request_kinds[(slot + 3 * index) % len(flaky.request_kinds)], ratio))
    return chosen


async def rotate_faults(mock: MockControl, slot_s: float, stop: asyncio.Event) -> int:
    """Until ``stop``: every ``slot_s`` seconds a new brownout per flaky model, lasting the slot.
    Returns the number of slots played."""
    slot = 0
    while not stop.is_set():
        for flaky, fault, ratio in slot_faults(slot):
            # Stream kinds go first: a stream meets them, a non-stream request passes on to the next.
            await mock.fault(flaky.provider, flaky.upstream, fault, for_s=slot_s, ratio=ratio)
        slot += 1
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=slot_s)
    return slot
