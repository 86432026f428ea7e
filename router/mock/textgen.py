"""Deterministic reply planning shared by every fake provider: echo text, lorem words, tool calls, tokens.

Provider modules turn their native request into a provider-neutral ``Prompt``; ``plan_reply`` decides
what the fake model "says" and how it finishes; the provider module renders that in its own format.
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Mapping, Sequence
from typing import Any, Final, Literal

import msgspec

ECHO_CHARS: Final = 200
MAX_WORDS: Final = 100_000
LOREM: Final = (
    "lorem",
    "ipsum",
    "dolor",
    "sit",
    "amet",
    "consectetur",
    "adipiscing",
    "elit",
    "sed",
    "do",
    "eiusmod",
    "tempor",
    "incididunt",
    "ut",
    "labore",
    "et",
    "dolore",
    "magna",
    "aliqua",
)
_WORDS_ASK: Final = re.compile(r"words=(\d+)")
_PIECE: Final = re.compile(r"\s*\S+\s*|\s+")

LastRole = Literal["user", "tool", "other"]
# Neutral finish reasons; each provider maps them (OpenAI: end/stop_sequence -> "stop").
Finish = Literal["end", "length", "stop_sequence", "tool_calls"]


class ToolSpec(msgspec.Struct, frozen=True):
    """A callable tool offered by the request: its name and JSON-schema parameters."""

    name: str
    parameters: Mapping[str, Any] | None = None


class Prompt(msgspec.Struct, frozen=True, kw_only=True):
    """What the fake model needs to know about a request, whatever the provider format."""

    user_text: str
    """Text of the last user message (empty when there is none)."""
    prompt_chars: int
    """Characters of text over all messages; prompt tokens are derived from it."""
    last_role: LastRole = "user"
    tool_results: tuple[str, ...] = ()
    """Contents of the tool results that end the conversation (when ``last_role == "tool"``)."""
    tools: tuple[ToolSpec, ...] = ()
    tools_allowed: bool = True
    forced_tool: str | None = None
    max_tokens: int | None = None
    stops: tuple[str, ...] = ()


class ToolCall(msgspec.Struct, frozen=True):
    """One tool call the fake model makes; ``arguments`` is compact JSON text."""

    id: str
    name: str
    arguments: str


class Reply(msgspec.Struct, frozen=True):
    """The planned answer: text pieces (one stream chunk each) or tool calls, plus accounting."""

    pieces: list[str]
    tool_calls: list[ToolCall]
    finish: Finish
    stop_sequence: str | None
    prompt_tokens: int
    completion_tokens: int

    @property
    def text(self) -> str:
        return "".join(self.pieces)


class IdSource:
    """Cheap unique hex ids: a random per-process salt plus a counter (no syscall per request)."""

    __slots__ = ("_counter", "_salt")

    def __init__(self) -> None:
        self._salt = os.urandom(4).hex()
        self._counter = itertools.count(1)

    def next_hex(self) -> str:
        """24 hex characters, unique for the lifetime of this source."""
        return f"{self._salt}{next(self._counter):016x}"


def prompt_tokens(prompt_chars: int) -> int:
    """The fake tokenizer: four characters per token, at least one."""
    return max(1, prompt_chars // 4)


def split_pieces(text: str) -> list[str]:
    """Split text into stream pieces: each a word with its trailing whitespace; joined they give ``text``."""
    return _PIECE.findall(text)


def call_id(seed_hex: str, index: int) -> str:
    """Tool call id ``call_`` + 24 hex characters, deterministic per request seed and call index."""
    return f"call_{seed_hex[:20]}{index:04x}"


def plan_reply(prompt: Prompt, seed_hex: str) -> Reply:
    """Decide the whole answer for ``prompt``; ``seed_hex`` (24 hex chars) makes tool call ids."""
    if prompt.last_role == "user" and prompt.tools and prompt.tools_allowed:
        calls = _plan_tool_calls(prompt, seed_hex)
        if calls:
            spent = sum(len(c.name) + len(c.arguments) for c in calls)
            return Reply(
                pieces=[],
                tool_calls=calls,
                finish="tool_calls",
                stop_sequence=None,
                prompt_tokens=prompt_tokens(prompt.prompt_chars),
                completion_tokens=max(1, spent // 4),
            )
    if prompt.last_role == "tool":
        pieces = split_pieces("Tool results: " + "; ".join(prompt.tool_results))
    else:
        pieces = _text_pieces(prompt.user_text, prompt.max_tokens if not prompt.stops else None)
    return _finish_text(pieces, prompt)


def fake_arguments(parameters: Mapping[str, Any] | None) -> dict[str, Any]:
    """A deterministic argument object with one plausible value per declared property."""
    properties = parameters.get("properties") if isinstance(parameters, Mapping) else None
    if not isinstance(properties, Mapping):
        return {}
    return {str(name): _fake_value(str(name), schema) for name, schema in properties.items()}


def _fake_value(name: str, schema: object) -> Any:
    if not isinstance(schema, Mapping):
        return "example"
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return enum[0]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    if kind in ("number", "integer"):
        return 1
    if kind == "boolean":
        return True
    if kind == "array":
        return []
    if kind == "object":
        return {}
    if kind == "null":
        return None
    return "Oslo" if name.lower() in ("city", "location") else "example"


def _plan_tool_calls(prompt: Prompt, seed_hex: str) -> list[ToolCall]:
    chosen: Sequence[ToolSpec]
    if prompt.forced_tool is not None:
        chosen = [t for t in prompt.tools if t.name == prompt.forced_tool][:1]
        if not chosen:
            chosen = [ToolSpec(prompt.forced_tool)]
    else:
        chosen = [t for t in prompt.tools if t.name and t.name in prompt.user_text] or prompt.tools[:1]
    return [
        ToolCall(
            id=call_id(seed_hex, index),
            name=tool.name,
            arguments=msgspec.json.encode(fake_arguments(tool.parameters)).decode(),
        )
        for index, tool in enumerate(chosen)
    ]


def _text_pieces(user_text: str, cap: int | None) -> list[str]:
    ask = _WORDS_ASK.search(user_text)
    if ask is None:
        return split_pieces("Echo: " + user_text[:ECHO_CHARS])
    count = min(int(ask.group(1)), MAX_WORDS)
    if cap is not None:
        count = min(count, max(cap, 0) + 1)  # one past the cap is enough to know it was cut
    if count == 0:
        return []
    size = len(LOREM)
    pieces = [LOREM[i % size] + " " for i in range(count)]
    pieces[-1] = pieces[-1][:-1]
    return pieces


def _finish_text(pieces: list[str], prompt: Prompt) -> Reply:
    finish: Finish = "end"
    matched: str | None = None
    if prompt.stops:
        text = "".join(pieces)
        cut = -1
        for stop in prompt.stops:
            at = text.find(stop) if stop else -1
            if at >= 0 and (cut < 0 or at < cut):
                cut, matched = at, stop
        if matched is not None:
            pieces = split_pieces(text[:cut])
            finish = "stop_sequence"
    cap = prompt.max_tokens
    if cap is not None and len(pieces) > cap:
        pieces = pieces[: max(cap, 0)]
        finish, matched = "length", None
    return Reply(
        pieces=pieces,
        tool_calls=[],
        finish=finish,
        stop_sequence=matched,
        prompt_tokens=prompt_tokens(prompt.prompt_chars),
        completion_tokens=len(pieces),
    )
