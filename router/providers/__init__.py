"""Provider adapters behind one small interface; each speaks one provider's native wire format."""

from __future__ import annotations

from router.catalog import Provider
from router.clock import Clock, SystemClock
from router.providers._http import IncomingHeaders, OutgoingHeaders, UpstreamClient
from router.providers.base import Call, ChatAdapter, Embedder, EmbeddingCall, ResponsesNative, UpstreamCall

SUPPORTED_KINDS = frozenset({"openai", "anthropic", "gemini", "azure", "bedrock", "vertex"})
# Kinds whose adapter needs an optional extra (``router[aws]``): no adapter is built while it is missing.
EXTRA_KINDS = frozenset({"bedrock"})


def supports(provider: Provider) -> bool:
    if provider.kind in EXTRA_KINDS and not provider.configured:
        return False  # its adapter may need a library that is not installed; unconfigured, it is not called
    return provider.kind in SUPPORTED_KINDS


def build_adapter(
    provider: Provider,
    outgoing: OutgoingHeaders | None = None,
    incoming: IncomingHeaders | None = None,
    clock: Clock | None = None,
) -> ChatAdapter:
    """The adapter for a provider's wire kind, with its own pooled client (``outgoing`` adds
    headers to each of its requests, ``incoming`` is told each answer's headers; ``clock`` times
    the access tokens of a provider that refreshes them)."""
    from router.providers.anthropic import AnthropicAdapter
    from router.providers.azure import AzureDialect
    from router.providers.gemini import GeminiAdapter
    from router.providers.openai import OpenAIAdapter
    from router.providers.vertex import VertexAdapter, VertexCalls, VertexClaude, VertexGemini, vertex_tokens

    if provider.kind == "openai":
        return OpenAIAdapter(provider, UpstreamClient(provider, outgoing, incoming))
    if provider.kind == "azure":
        # OpenAI's wire format at Azure's URLs and with its credentials: the same adapter, another dialect.
        return OpenAIAdapter(provider, UpstreamClient(provider, outgoing, incoming), AzureDialect(provider))
    if provider.kind == "anthropic":
        return AnthropicAdapter(provider, UpstreamClient(provider, outgoing, incoming))
    if provider.kind == "gemini":
        return GeminiAdapter(provider, UpstreamClient(provider, outgoing, incoming))
    if provider.kind == "bedrock":
        from router.providers.bedrock import BedrockAdapter  # imports botocore (router[aws])

        return BedrockAdapter(provider, UpstreamClient(provider, outgoing, incoming))
    if provider.kind == "vertex":
        # Gemini's and Anthropic's adapters at Vertex AI's URLs, with its OAuth token: one client, one
        # token source, and each model to the adapter of its publisher.
        client = UpstreamClient(provider, outgoing, incoming)
        tokens = vertex_tokens(provider, clock or SystemClock())
        calls = VertexCalls(provider, tokens)
        gemini = GeminiAdapter(provider, client, VertexGemini(calls))
        claude = AnthropicAdapter(provider, client, VertexClaude(calls))
        return VertexAdapter(gemini, claude, tokens)
    raise ValueError(f"provider kind {provider.kind!r} has no adapter")


__all__ = [
    "Call",
    "ChatAdapter",
    "Embedder",
    "EmbeddingCall",
    "IncomingHeaders",
    "OutgoingHeaders",
    "ResponsesNative",
    "UpstreamCall",
    "build_adapter",
    "supports",
]
