"""Prompt-cache breakpoints (``cache_control``) on their way upstream: checked and completed for
Anthropic, taken out for every other kind.

Anthropic reads a breakpoint on a tool, a system block or a message block and caches the prompt up
to it (``shared/reference/prompt-caching.md`` §1). It refuses more than four, and a one-hour entry
after a five-minute one in its processing order (tools, system, messages); the router answers both
with its own 400 before calling. ``auto_cache`` adds breakpoints to a request that has none: on the
last tool, the end of the system prompt and the last two user turns (the latest, to be read by the
next request, and the one before, written by the previous request, so that a long agent turn cannot
push it out of Anthropic's 20-block lookback), once the prompt is long enough to be cached.

OpenAI-kind upstreams do not define ``cache_control``, and strict servers refuse unknown fields, so
``without_cache_control`` removes it from a chat or Responses body (copying only what it changes).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import msgspec
from msgspec import UnsetType

from router.catalog import AutoCacheSpec
from router.errors import InvalidRequest
from router.types import CacheControl

MAX_BREAKPOINTS = 4
CHARS_PER_TOKEN = 4  # the estimate the router uses elsewhere; Anthropic counts the real tokens

_encode = msgspec.json.Encoder().encode


Control = CacheControl | UnsetType | None


def marked(block: dict[str, Any], control: Control) -> dict[str, Any]:
    """``block`` with a client's breakpoint, in Anthropic's form, when there is one."""
    if isinstance(control, CacheControl):
        block["cache_control"] = (
            {"type": "ephemeral", "ttl": control.ttl}
            if isinstance(control.ttl, str)
            else {"type": "ephemeral"}
        )
    return block


def mark_last(blocks: list[dict[str, Any]], control: Control) -> None:
    """Put ``control`` on the last of ``blocks`` unless it has one of its own: a marker on a message as
    a whole means "cache through this message"."""
    if blocks and "cache_control" not in blocks[-1]:
        marked(blocks[-1], control)


def system_field(groups: list[list[dict[str, Any]]]) -> str | list[dict[str, Any]]:
    """Anthropic's ``system`` from the text blocks of each system message: one string, joined as ever,
    or, when a breakpoint marks one, the blocks (each message's first after the joining blank line)."""
    if not any("cache_control" in block for group in groups for block in group):
        return "\n\n".join("".join(block["text"] for block in group) for group in groups)
    blocks: list[dict[str, Any]] = []
    for group in groups:
        if blocks:
            group[0]["text"] = "\n\n" + group[0]["text"]
        blocks.extend(group)
    return blocks


# --- Anthropic: the limits it enforces -----------------------------------------------------------


def _breakpoints(body: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every block of a Messages body with a breakpoint, in Anthropic's order, with its path."""
    for i, tool in enumerate(body.get("tools") or ()):
        if "cache_control" in tool:
            yield f"tools.{i}", tool["cache_control"]
    system = body.get("system")
    for i, block in enumerate(system if isinstance(system, list) else ()):
        if "cache_control" in block:
            yield f"system.{i}", block["cache_control"]
    for i, message in enumerate(body.get("messages") or ()):
        for j, block in enumerate(message["content"]):
            if "cache_control" in block:
                yield f"messages.{i}.content.{j}", block["cache_control"]


def check_breakpoints(body: dict[str, Any]) -> None:
    """Refuse what Anthropic would: more than four breakpoints, or a 1-hour one after a 5-minute one."""
    found = list(_breakpoints(body))
    if len(found) > MAX_BREAKPOINTS:
        raise InvalidRequest(
            f"A maximum of {MAX_BREAKPOINTS} blocks with cache_control may be provided to Anthropic "
            f"models; this request has {len(found)} (counted on tools, system parts and message parts).",
            code="too_many_cache_breakpoints",
        )
    short = None
    for path, control in found:
        if control.get("ttl", "5m") == "5m":
            short = short or path
        elif short is not None:
            raise InvalidRequest(
                f"A cache_control with ttl '1h' ({path}) must not come after one with ttl '5m' ({short}) "
                "for Anthropic models, which process tools, then system, then messages.",
                code="invalid_cache_ttl_order",
            )


# --- Anthropic: auto_cache -----------------------------------------------------------------------


def auto_mark(body: dict[str, Any], spec: AutoCacheSpec) -> None:
    """Add ``spec``'s breakpoints to a Messages body that has none (the client's own always win)."""
    if next(_breakpoints(body), None) is not None:
        return
    control = {"type": "ephemeral", "ttl": spec.ttl} if spec.ttl == "1h" else {"type": "ephemeral"}
    tools = body.get("tools")
    if tools:
        tools[-1]["cache_control"] = dict(control)
    system = body.get("system")
    if isinstance(system, str) and system:
        body["system"] = [{"type": "text", "text": system, "cache_control": dict(control)}]
    elif isinstance(system, list) and system:
        system[-1]["cache_control"] = dict(control)
    minimum = spec.min_tokens * CHARS_PER_TOKEN
    length = len(_encode(tools or [])) + len(_encode(body.get("system") or ""))
    reached: list[dict[str, Any]] = []  # the user turns at whose end the prompt is long enough
    for message in body["messages"]:
        length += len(_encode(message))
        if message["role"] == "user" and length >= minimum and message["content"]:
            reached.append(message)
    for message in reached[-2:]:
        message["content"][-1]["cache_control"] = dict(control)


# --- every other kind ----------------------------------------------------------------------------


def without_cache_control(body: dict[str, Any]) -> dict[str, Any]:
    """``body`` (chat or Responses) without any ``cache_control``; the same object when it has none."""
    out = body
    if "cache_control" in out:
        out = {k: v for k, v in out.items() if k != "cache_control"}
    for key in ("messages", "input", "tools"):
        items = out.get(key)
        if isinstance(items, list):
            cleaned = _list_without(items)
            if cleaned is not items:
                out = {**out, key: cleaned}
    return out


def unmarked(items: list[Any]) -> list[Any]:
    """Messages or input items without their breakpoints: the earlier turns of a conversation the
    router replays (``previous_response_id``) keep none, or a long one would pass Anthropic's four.
    Anthropic still reads them from its cache: the prefix, not the marker, is what was cached."""
    return _list_without(items)


def _list_without(items: list[Any]) -> list[Any]:
    cleaned = [_item_without(item) for item in items]
    return items if all(a is b for a, b in zip(cleaned, items, strict=True)) else cleaned


def _item_without(item: Any) -> Any:
    """A message, input item, content part, tool or tool call without its markers (nested ones too)."""
    if not isinstance(item, dict):
        return item
    out = item
    if "cache_control" in out:
        out = {k: v for k, v in out.items() if k != "cache_control"}
    for key in ("content", "tool_calls"):
        nested = out.get(key)
        if isinstance(nested, list):
            cleaned = _list_without(nested)
            if cleaned is not nested:
                out = {**out, key: cleaned}
    function = out.get("function")
    if isinstance(function, dict) and "cache_control" in function:
        out = {**out, "function": {k: v for k, v in function.items() if k != "cache_control"}}
    return out
