"""Prompt caches of the fake providers: the prompt prefixes a fake has seen, so that a repeat reads them.

A prefix is known by a hash of everything up to its end, seeded with the model's name (caches are per
model). An entry lives for its TTL from its last write or read (a read refreshes it, as Anthropic's
do), and the store keeps at most ``limit`` entries, forgetting the least recently used. ``implicit``
models OpenAI's and Gemini's automatic caching; ``anthropic_cache`` reads and writes breakpoints.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Final

CHARS_PER_TOKEN: Final = 4  # the fakes' tokenizer (``textgen.prompt_tokens``)
IMPLICIT_TTL_S: Final = 300.0
"""OpenAI evicts after 5-10 idle minutes; Gemini's implicit TTL is reported as 3-5 minutes."""


class PromptCache:
    """Prefix hashes with their expiry, bounded; cheap when unused."""

    __slots__ = ("_clock", "_entries", "_limit")

    def __init__(self, limit: int = 20_000, clock: Callable[[], float] = time.monotonic) -> None:
        self._entries: OrderedDict[bytes, tuple[float, float]] = OrderedDict()  # key -> (expires, ttl)
        self._limit = limit
        self._clock = clock

    def read(self, key: bytes) -> bool:
        """Whether ``key`` is cached and alive; a hit lives on for its TTL from now."""
        entry = self._entries.get(key)
        if entry is None:
            return False
        now = self._clock()
        if entry[0] <= now:
            del self._entries[key]
            return False
        self._entries[key] = (now + entry[1], entry[1])
        self._entries.move_to_end(key)
        return True

    def write(self, key: bytes, ttl_s: float) -> None:
        """Cache ``key`` for ``ttl_s`` seconds (an entry already there keeps the longer TTL)."""
        kept = self._entries.get(key)
        ttl = max(ttl_s, kept[1]) if kept is not None else ttl_s
        self._entries[key] = (self._clock() + ttl, ttl)
        self._entries.move_to_end(key)
        if len(self._entries) > self._limit:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()


def seeded(model: str) -> hashlib.blake2b:
    """The running hash a prompt's prefixes extend: one cache per model."""
    return hashlib.blake2b(model.encode(), digest_size=16)


def implicit(cache: PromptCache, model: str, text: str, minimum_tokens: int, step_tokens: int = 128) -> int:
    """Automatic prefix caching as OpenAI documents it (Gemini's is alike): prompts of at least
    ``minimum_tokens`` are cached in ``step_tokens`` increments beyond it; the answer is how many
    leading tokens of ``text`` an earlier prompt left cached, and every increment of this one is kept."""
    first = minimum_tokens * CHARS_PER_TOKEN
    if len(text) < first:
        return 0
    running = seeded(model)
    done = 0
    read = 0
    missed = False
    for end in range(first, len(text) + 1, step_tokens * CHARS_PER_TOKEN):
        running.update(text[done:end].encode())
        done = end
        key = running.digest()
        if not missed and cache.read(key):
            read = end
        else:
            missed = True  # a longer prefix cannot be cached once a shorter one is not
        cache.write(key, IMPLICIT_TTL_S)
    return read // CHARS_PER_TOKEN
