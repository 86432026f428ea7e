"""A Responses answer's ``usage``, read through a typed view: an upstream's odd value reads as none."""

from __future__ import annotations

import msgspec

from router.types import Usage


class _InputDetails(msgspec.Struct):
    cached_tokens: int = 0
    cache_write_tokens: int = 0


class _OutputDetails(msgspec.Struct):
    reasoning_tokens: int = 0


class ResponsesUsage(msgspec.Struct):
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    input_tokens_details: _InputDetails | None = None
    output_tokens_details: _OutputDetails | None = None

    @property
    def cached(self) -> int:
        return self.input_tokens_details.cached_tokens if self.input_tokens_details else 0

    @property
    def reasoning(self) -> int:
        return self.output_tokens_details.reasoning_tokens if self.output_tokens_details else 0

    def as_chat(self) -> Usage:
        """The same counts in Chat Completions' terms (for pricing)."""
        written = self.input_tokens_details.cache_write_tokens if self.input_tokens_details else 0
        return Usage(
            prompt_tokens=self.input_tokens,
            completion_tokens=self.output_tokens,
            total_tokens=self.total_tokens,
            prompt_tokens_details={"cached_tokens": self.cached, "cache_write_tokens": written},
        )


def responses_usage(value: object) -> ResponsesUsage | None:
    """``value`` as a usage, or ``None`` when it is absent or not shaped like one."""
    if not isinstance(value, dict):
        return None
    try:
        return msgspec.convert(value, ResponsesUsage)
    except msgspec.ValidationError:
        return None
