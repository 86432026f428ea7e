"""The request record: one answered request as its sinks see it (the log line, metrics, traffic).

Ids, names, numbers and outcomes only, never prompts, answers, vectors or keys. The fields without a
default are on every line; the others only when they apply (a model only once one served, tokens
only when an upstream reported them).
"""

from __future__ import annotations

import msgspec


class RequestRecord(msgspec.Struct, kw_only=True, omit_defaults=True):
    request_id: str
    # chat, responses, completions or embeddings; edge (refused before any route) or other routes
    route: str
    key: str | None  # the key's name
    model_asked: str | None
    stream: bool
    status: int
    duration_ms: float
    attempts: tuple[str, ...]  # "model:outcome" for each model tried
    # The deployment of each attempt ("" for a model with one way in), when a model had several.
    attempt_deployments: tuple[str, ...] = ()
    model: str | None = None  # the model that served
    provider: str | None = None
    deployment: str | None = None  # ``provider/model``, when the model has several deployments
    strategy: str | None = None
    fallback_reason: str | None = None
    skipped: tuple[str, ...] = ()  # candidates passed over without a call (breaker open)
    # The router's time before the answer began, outside upstream calls (x-router-overhead-ms).
    overhead_ms: float | None = None
    ttft_ms: float | None = None  # streams: from arrival to the first output sent
    upstream_ms: float | None = None
    # The serving model's own time: its successful attempt, from the call to the end of the answer.
    model_ms: float | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None
    tokens_cached: int | None = None  # prompt tokens read from a prompt cache
    tokens_cache_write: int | None = None  # prompt tokens written to one (priced apart)
    tokens_reasoning: int | None = None
    cost_usd: float | None = None
    error: str | None = None  # the error code of a request that failed
    path: str | None = None  # for requests that reached no model route
    native: bool | None = None  # completions: served by a model's own completions API
    inputs: int | None = None  # embeddings: vectors returned
    # What the response cache did, when it is on: hit (replayed: no upstream call, cost 0), miss or
    # bypass. A hit's model and provider are those that served the answer it replays.
    cache: str | None = None


# Tokens of one answer: (input, output, cached input, reasoning output).
Tokens = tuple[int, int, int, int]
