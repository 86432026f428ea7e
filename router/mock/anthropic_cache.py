"""Anthropic's prompt caching, simulated: the breakpoints of a Messages request, the 400s Anthropic
answers for too many or misordered ones, and the cache reads and writes its usage reports.

As documented (``shared/reference/prompt-caching.md`` §1.2): blocks are processed tools, system,
messages; a breakpoint writes the prefix up to its block, once that prefix reaches the model's minimum
length, and reads the longest earlier-written prefix ending at most 20 blocks before it. Reads go up to
the highest hit; 1-hour writes from there to the last 1-hour breakpoint, 5-minute writes from there to
the last breakpoint. A top-level ``cache_control`` marks the last block (and takes one of the four).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final, NamedTuple

import msgspec

from router.mock.anthropic_wire import (
    Block,
    CacheControl,
    Document,
    Image,
    MessagesRequest,
    Text,
    ToolResult,
    ToolUse,
)
from router.mock.prefixcache import CHARS_PER_TOKEN, PromptCache, seeded

MAX_BREAKPOINTS: Final = 4
LOOKBACK: Final = 20
TTL_S: Final = {"5m": 300.0, "1h": 3600.0}
# Minimum cacheable prefix by model family (Anthropic's table; docs of different dates disagree).
MINIMUM_TOKENS: Final = (
    (("opus-4-5", "opus-4-6", "opus-4-7", "opus-4-8", "haiku-4-5", "mythos"), 4096),
    (("haiku-3", "3-5-haiku", "3-haiku"), 2048),
)
DEFAULT_MINIMUM: Final = 1024  # Sonnet 4.x, Opus 4 and 4.1, Sonnet 3.7


class CacheUsage(NamedTuple):
    read: int = 0
    write_5m: int = 0
    write_1h: int = 0

    @property
    def written(self) -> int:
        return self.write_5m + self.write_1h


NO_CACHE: Final = CacheUsage()


class _Block(NamedTuple):
    path: str
    material: bytes  # what the prefix hash covers: the block as sent, without its breakpoint
    chars: int  # what it adds to the fake tokenizer's count
    control: CacheControl | None


def minimum_tokens(model: str) -> int:
    return next(
        (tokens for names, tokens in MINIMUM_TOKENS if any(n in model for n in names)), DEFAULT_MINIMUM
    )


def _result_chars(block: ToolResult) -> int:
    content = block.content
    if content is None or isinstance(content, str):
        return len(content or "")
    return sum(len(part.text) for part in content if isinstance(part, Text))


def _message_block(block: Block, path: str, role: str) -> _Block:
    control = (
        block.cache_control if isinstance(block, Text | Image | Document | ToolUse | ToolResult) else None
    )
    bare = msgspec.structs.replace(block, cache_control=None) if control is not None else block
    chars = (
        len(block.text)
        if isinstance(block, Text)
        else _result_chars(block)
        if isinstance(block, ToolResult)
        else 0
    )
    return _Block(path, role.encode() + msgspec.json.encode(bare), chars, control)


def _blocks(req: MessagesRequest) -> Iterator[_Block]:
    """Every block of the request in processing order (the counted text as ``prompt_of`` counts it)."""
    for i, tool in enumerate(req.tools or ()):
        unmarked = msgspec.structs.replace(tool, cache_control=None)
        yield _Block(f"tools.{i}", msgspec.json.encode(unmarked), 0, tool.cache_control)
    system = req.system
    if isinstance(system, str):
        yield _Block("system", system.encode(), len(system), None)
    for i, text in enumerate(system or () if isinstance(system, list) else ()):
        bare = msgspec.structs.replace(text, cache_control=None)
        yield _Block(f"system.{i}", msgspec.json.encode(bare), len(text.text), text.cache_control)
    for i, message in enumerate(req.messages):
        content = [Text(message.content)] if isinstance(message.content, str) else message.content
        for j, block in enumerate(content):
            yield _message_block(block, f"messages.{i}.content.{j}", message.role)


def _marks(req: MessagesRequest, blocks: list[_Block]) -> list[tuple[int, CacheControl]]:
    marks = [(i, b.control) for i, b in enumerate(blocks) if b.control is not None]
    if req.cache_control is not None and blocks and blocks[-1].control is None:
        marks.append((len(blocks) - 1, req.cache_control))
    return marks


def breakpoint_problem(req: MessagesRequest) -> str | None:
    """The message of Anthropic's 400 for this request's breakpoints, or ``None``."""
    blocks = list(_blocks(req))
    marks = _marks(req, blocks)
    if len(marks) > MAX_BREAKPOINTS:
        return (
            f"A maximum of {MAX_BREAKPOINTS} blocks with cache_control may be provided. Found {len(marks)}."
        )
    seen_short = False
    for index, control in marks:
        if control.ttl == "5m":
            seen_short = True
        elif seen_short:
            return (
                f"{blocks[index].path}.cache_control.ttl: a ttl='1h' cache_control block must not come after "
                "a ttl='5m' cache_control block. Note that blocks are processed in the following order: "
                "`tools`, `system`, `messages`."
            )
    return None


def cache_usage(req: MessagesRequest, cache: PromptCache, total_tokens: int) -> CacheUsage:
    """Read and write ``cache`` at the request's breakpoints; the tokens read and written."""
    blocks = list(_blocks(req))
    marks = _marks(req, blocks)
    if not marks:
        return CacheUsage()
    running = seeded(req.model)
    keys: list[bytes] = []
    ends: list[int] = []  # tokens up to the end of each block
    chars = 0
    for block in blocks[: marks[-1][0] + 1]:
        running.update(block.material)
        keys.append(running.digest())
        chars += block.chars
        ends.append(min(chars // CHARS_PER_TOKEN, total_tokens))
    minimum = minimum_tokens(req.model)
    read = 0
    for index, _ in marks:
        for back in range(index, max(-1, index - LOOKBACK), -1):
            if ends[back] >= minimum and cache.read(keys[back]):
                read = max(read, ends[back])
                break
    eligible = [(index, control) for index, control in marks if ends[index] >= minimum]
    hour = max([read, *(ends[i] for i, control in eligible if control.ttl == "1h")])
    last = max([hour, *(ends[i] for i, _ in eligible)])
    for index, control in eligible:
        cache.write(keys[index], TTL_S[control.ttl])
    return CacheUsage(read=read, write_5m=last - hour, write_1h=hour - read)
