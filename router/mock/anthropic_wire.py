"""Anthropic Messages request views: the part of a request the fake reads, as msgspec structs.

Unknown fields are ignored except where Anthropic itself rejects them (``forbid_unknown_fields``).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

# --- wire types: request views (unknown fields are ignored except where Anthropic rejects them) ---


class CacheControl(msgspec.Struct, forbid_unknown_fields=True):
    """A prompt-cache breakpoint; a bare one lasts five minutes."""

    type: Literal["ephemeral"]
    ttl: Literal["5m", "1h"] = "5m"


class Tagged(msgspec.Struct, tag_field="type"):
    pass


class Text(Tagged, tag="text"):
    text: str
    cache_control: CacheControl | None = None


class Base64Source(Tagged, tag="base64"):
    media_type: Literal["image/jpeg", "image/png", "image/gif", "image/webp"]
    data: str


class UrlSource(Tagged, tag="url"):
    url: str


class Image(Tagged, tag="image"):
    source: Base64Source | UrlSource
    cache_control: CacheControl | None = None


class Document(Tagged, tag="document"):
    source: dict[str, Any]
    cache_control: CacheControl | None = None


class ToolUse(Tagged, tag="tool_use"):
    id: str
    name: str
    input: dict[str, Any]
    cache_control: CacheControl | None = None


class ToolResult(Tagged, tag="tool_result"):
    tool_use_id: str
    content: str | list[Text | Image | Document] | None = None
    is_error: bool | None = None
    cache_control: CacheControl | None = None


# Anthropic refuses a breakpoint on thinking blocks ("Extra inputs are not permitted").
class Thinking(Tagged, tag="thinking", forbid_unknown_fields=True):
    thinking: str
    signature: str


class RedactedThinking(Tagged, tag="redacted_thinking", forbid_unknown_fields=True):
    data: str


Block = Text | Image | Document | ToolUse | ToolResult | Thinking | RedactedThinking


class Message(msgspec.Struct, forbid_unknown_fields=True):
    role: Literal["user", "assistant"]
    content: str | list[Block]


class Tool(msgspec.Struct):
    name: Annotated[str, msgspec.Meta(pattern=r"^[a-zA-Z0-9_-]{1,128}$")]
    input_schema: dict[str, Any]
    description: str | None = None
    cache_control: CacheControl | None = None


class ToolChoice(msgspec.Struct):
    type: Literal["auto", "any", "tool", "none"]
    name: str | None = None
    disable_parallel_tool_use: bool | None = None


class ThinkingConfig(msgspec.Struct):
    type: Literal["enabled", "disabled", "adaptive"]
    budget_tokens: int | None = None


class Metadata(msgspec.Struct, forbid_unknown_fields=True):
    user_id: str | None = None


Unit = Annotated[float, msgspec.Meta(ge=0, le=1)]


class MessagesRequest(msgspec.Struct, forbid_unknown_fields=True):
    """A Messages (or count_tokens) request; fields Anthropic does not know are rejected like it does."""

    model: str
    messages: list[Message]
    max_tokens: int | msgspec.UnsetType = msgspec.UNSET
    system: str | list[Text] | None = None
    stop_sequences: list[str] | None = None
    stream: bool | None = None
    temperature: Unit | None = None
    top_p: Unit | None = None
    top_k: Annotated[int, msgspec.Meta(ge=0)] | None = None
    metadata: Metadata | None = None
    tools: list[Tool] | None = None
    tool_choice: ToolChoice | None = None
    thinking: ThinkingConfig | None = None
    service_tier: Literal["auto", "standard_only"] | None = None
    output_config: dict[str, Any] | None = None
    # Automatic caching: a breakpoint on the last block that can take one (it uses one of the four).
    cache_control: CacheControl | None = None
    container: Any = None
    context_management: Any = None
    mcp_servers: Any = None
    inference_geo: Any = None
