"""A Responses API request: its view (``ResponsesRequest``), the checks of its options, and what the fake
model makes of it: ``parse`` checks it as OpenAI would and maps it to a ``Prompt``, ``plan`` answers it.

The ``input`` items and tools are checked in ``openai_responses_input``.
"""

from __future__ import annotations

from typing import Any, Final, NamedTuple

import msgspec

from router.mock.openai_responses_checks import (
    Rejected,
    convert,
    invalid_value,
    missing_param,
    strict_problem,
)
from router.mock.openai_responses_input import Turn, read_tool_choice, read_tools, read_turns
from router.mock.openai_wire import REASONING_MODEL, invalid_request, invalid_tier, openai_error, served_tier
from router.mock.textgen import Finish, LastRole, Prompt, Reply, fake_arguments, plan_reply

MIN_OUTPUT_TOKENS: Final = 16
JSON_PIECE_CHARS: Final = 8
"""A JSON answer (``text.format`` json_object/json_schema) streams in pieces of this many characters."""
ENCRYPTED_REASONING: Final = "reasoning.encrypted_content"
"""The ``include`` value that asks for the reasoning item's ``encrypted_content``."""

_FORMATS: Final = ("text", "json_object", "json_schema")
_VERBOSITIES: Final = ("low", "medium", "high")
_EFFORTS: Final = ("none", "minimal", "low", "medium", "high", "xhigh", "max")
_SUMMARIES: Final = ("auto", "concise", "detailed")
_TRUNCATIONS: Final = ("auto", "disabled")


# --- request view (only what the fake reads; unknown fields are ignored) -------------------------


class _Reasoning(msgspec.Struct):
    effort: str | None = None
    summary: str | None = None


class _Text(msgspec.Struct):
    format: dict[str, Any] | None = None
    verbosity: str | None = None


class ResponsesRequest(msgspec.Struct):
    """The part of a Responses request the fake looks at; input items and tools are checked one by one."""

    model: str
    input: str | list[dict[str, Any]] | None = None
    instructions: str | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    max_output_tokens: int | None = None
    max_tool_calls: int | None = None
    text: _Text | None = None
    reasoning: _Reasoning | None = None
    include: list[str] | None = None
    stream: bool | None = None
    store: bool | None = None
    background: bool | None = None
    previous_response_id: str | None = None
    conversation: str | dict[str, Any] | None = None
    service_tier: str | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_logprobs: int | None = None
    truncation: str | None = None
    metadata: dict[str, str] | None = None
    user: str | None = None
    safety_identifier: str | None = None
    prompt_cache_key: str | None = None


class _Format(msgspec.Struct):
    type: str
    name: str | None = None
    schema: dict[str, Any] | None = None
    strict: bool | None = None
    description: str | None = None


# --- option checks -------------------------------------------------------------------------------


def _text_format(req: ResponsesRequest) -> tuple[_Format, dict[str, Any]]:
    """The requested output format and the ``text`` object the response echoes."""
    text = req.text or _Text()
    verbosity = text.verbosity or "medium"
    if verbosity not in _VERBOSITIES:
        raise invalid_value(verbosity, "text.verbosity", _VERBOSITIES)
    if text.format is None:
        return _Format("text"), {"format": {"type": "text"}, "verbosity": verbosity}
    fmt = convert(text.format, _Format, "text.format")
    if fmt.type not in _FORMATS:
        raise invalid_value(fmt.type, "text.format.type", _FORMATS)
    if fmt.type != "json_schema":
        return fmt, {"format": {"type": fmt.type}, "verbosity": verbosity}
    if fmt.name is None:
        raise missing_param("text.format.name")
    if fmt.schema is None:
        raise missing_param("text.format.schema")
    if fmt.strict:
        problem = strict_problem(fmt.schema)
        if problem:
            raise Rejected(
                invalid_request(
                    f"Invalid schema for response_format '{fmt.name}': {problem}",
                    param="text.format.schema",
                    code="invalid_json_schema",
                )
            )
    echoed: dict[str, Any] = {"type": "json_schema"}
    if fmt.description is not None:
        echoed["description"] = fmt.description
    echoed.update(name=fmt.name, schema=fmt.schema, strict=bool(fmt.strict))
    return fmt, {"format": echoed, "verbosity": verbosity}


def _reasoning_echo(req: ResponsesRequest, reasons: bool) -> dict[str, Any]:
    asked = req.reasoning or _Reasoning()
    if asked.effort is not None:
        if not reasons:
            raise Rejected(
                invalid_request(
                    "Unsupported parameter: 'reasoning.effort' is not supported with this model.",
                    param="reasoning.effort",
                    code="unsupported_parameter",
                )
            )
        if asked.effort not in _EFFORTS:
            raise invalid_value(asked.effort, "reasoning.effort", _EFFORTS)
    if asked.summary is not None and asked.summary not in _SUMMARIES:
        raise invalid_value(asked.summary, "reasoning.summary", _SUMMARIES)
    effort = asked.effort if asked.effort is not None else "medium" if reasons else None
    return {"effort": effort, "summary": asked.summary}


def _check_stateless(req: ResponsesRequest) -> None:
    """Refuse what needs stored state: the fake keeps no responses or conversations."""
    if req.previous_response_id is not None:
        raise Rejected(
            invalid_request(
                f"Previous response with id '{req.previous_response_id}' not found.",
                param="previous_response_id",
                code="previous_response_not_found",
            )
        )
    if req.conversation is not None:
        conversation = req.conversation
        named = conversation if isinstance(conversation, str) else conversation.get("id")
        raise Rejected(
            openai_error(
                404,
                f"Conversation with id '{named}' not found.",
                "invalid_request_error",
                param="conversation",
            )
        )
    if req.background:
        raise Rejected(
            invalid_request(
                "Background responses are not supported by this fake (it stores no responses).",
                param="background",
                code="unsupported_parameter",
            )
        )


def _check_scalars(req: ResponsesRequest) -> None:
    if req.max_output_tokens is not None and req.max_output_tokens < MIN_OUTPUT_TOKENS:
        raise Rejected(
            invalid_request(
                "Invalid 'max_output_tokens': integer below minimum value. Expected a value >= "
                f"{MIN_OUTPUT_TOKENS}, but got {req.max_output_tokens} instead.",
                param="max_output_tokens",
                code="integer_below_min_value",
            )
        )
    if served_tier(req.service_tier) is None:
        raise Rejected(invalid_tier(req.service_tier))
    if req.truncation is not None and req.truncation not in _TRUNCATIONS:
        raise invalid_value(req.truncation, "truncation", _TRUNCATIONS)


# --- prompt and answer ---------------------------------------------------------------------------


class Parsed(NamedTuple):
    """A checked Responses request: the neutral prompt and what the response echoes."""

    prompt: Prompt
    format: _Format
    text: dict[str, Any]
    tools: list[dict[str, Any]]
    reasoning: dict[str, Any]
    reasons: bool


def parse(req: ResponsesRequest) -> Parsed:
    """Check ``req`` as OpenAI would (raising ``Rejected``) and map it to the fake model's ``Prompt``."""
    _check_stateless(req)
    _check_scalars(req)
    if req.input is None:
        raise missing_param("input")
    if isinstance(req.input, str):
        turns = [Turn("message", "user", req.input, counted=True)]
    elif not req.input:
        raise Rejected(
            invalid_request(
                "Invalid 'input': empty array. Expected an array with minimum length 1, "
                "but got an empty array instead.",
                param="input",
                code="empty_array",
            )
        )
    else:
        turns = read_turns(req.input)
    tools = read_tools(req.tools, req.model)
    choice = read_tool_choice(req.tool_choice, (t.name for t in tools.specs))
    fmt, text = _text_format(req)
    reasons = bool(REASONING_MODEL.match(req.model))
    reasoning = _reasoning_echo(req, reasons)
    texts = [req.instructions] if req.instructions else []
    texts += [t.text for t in turns if t.counted]
    if fmt.type == "json_object" and not any("json" in t.lower() for t in texts):
        raise Rejected(
            invalid_request(
                "Response input messages must contain the word 'json' in some form to use 'text.format' "
                "of type 'json_object'.",
                param="input",
            )
        )
    last = turns[-1]
    last_role: LastRole = "tool" if last.role == "tool" else "user" if last.role == "user" else "other"
    results: list[str] = []
    if last_role == "tool":
        for turn in reversed(turns):
            if turn.role != "tool":
                break
            results.append(turn.text)
        results.reverse()
    specs = tools.specs if choice.only is None else tuple(t for t in tools.specs if t.name in choice.only)
    prompt = Prompt(
        user_text=next((t.text for t in reversed(turns) if t.kind == "message" and t.role == "user"), ""),
        prompt_chars=sum(len(t) for t in texts),
        last_role=last_role,
        tool_results=tuple(results),
        tools=specs,
        tools_allowed=choice.allowed,
        forced_tool=choice.forced,
        max_tokens=req.max_output_tokens,
    )
    return Parsed(prompt, fmt, text, tools.echo, reasoning, reasons)


def plan(parsed: Parsed, seed_hex: str) -> Reply:
    """The fake model's answer: textgen's plan, as JSON text when the format asks for JSON."""
    reply = plan_reply(parsed.prompt, seed_hex)
    fmt = parsed.format
    if reply.tool_calls or fmt.type == "text":
        return reply
    if fmt.type == "json_schema":
        value: Any = fake_arguments(fmt.schema)
    else:
        uncapped = msgspec.structs.replace(parsed.prompt, max_tokens=None)
        value = {"answer": plan_reply(uncapped, seed_hex).text}
    text = msgspec.json.encode(value).decode()
    pieces = [text[at : at + JSON_PIECE_CHARS] for at in range(0, len(text), JSON_PIECE_CHARS)]
    cap = parsed.prompt.max_tokens
    finish: Finish = "end"
    if cap is not None and len(pieces) > cap:
        pieces, finish = pieces[:cap], "length"
    return Reply(pieces, [], finish, None, reply.prompt_tokens, len(pieces))
