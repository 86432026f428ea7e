"""Legacy Completions: prompt → chat translation, chat answer → text_completion, stream events, and the
per-candidate choice between the native API and the translated one."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import Any

import msgspec
import pytest

from router.api.completions import (
    _COMPLETE,
    _STREAM,
    decode_completion,
    each_prompt,
    plan_completion,
    untranslatable,
)
from router.catalog import Catalog, parse_catalog
from router.clock import FakeClock
from router.errors import InvalidRequest, RouterError, UpstreamStatusError
from router.providers._completions import (
    ChunkTranslator,
    LegacyStreamReader,
    build_legacy_body,
    chat_request_for,
    prompt_texts,
    text_completion,
    total_usage,
)
from router.providers.base import Call, UpstreamCall
from router.routing import Engine
from router.types import (
    AssistantMessage,
    ChatChunk,
    ChatCompletion,
    Choice,
    ChunkChoice,
    CompletionRequest,
    Delta,
    Usage,
)
from tests.openapi import validate

CATALOG = """
providers:
  p: {kind: openai, base_url: "http://127.0.0.1:1/v1"}
  a: {kind: anthropic, base_url: "http://127.0.0.1:1"}
models:
  instruct: {provider: p, upstream: gpt-3.5-turbo-instruct, context_window: 4096, max_output: 4096,
             quality: 30, price: {input: 1.5, output: 2.0}, speed: {ttft_ms: 400, tokens_per_s: 100},
             capabilities: [streaming], endpoints: [completions], fallbacks: [chatty]}
  chatty:   {provider: p, upstream: chatty-up, context_window: 128000, max_output: 16000, quality: 70,
             price: {input: 0.5, output: 2.0}, speed: {ttft_ms: 200, tokens_per_s: 250},
             capabilities: [streaming, tools]}
  claude:   {provider: a, context_window: 128000, max_output: 16000, quality: 75,
             price: {input: 1, output: 5}, speed: {ttft_ms: 300, tokens_per_s: 100},
             capabilities: [streaming]}
  embed:    {provider: p, context_window: 8000, max_output: 1, quality: 10,
             price: {input: 0.01, output: 0}, speed: {ttft_ms: 10, tokens_per_s: 1000},
             capabilities: [embeddings]}
"""


def request(**fields: Any) -> CompletionRequest:
    return decode_completion(msgspec.json.encode({"model": "chatty", "prompt": "Say hi", **fields}))


def answer(*texts: str, finish: str | None = "stop", usage: Usage | None = None) -> ChatCompletion:
    choices = [
        Choice(index=j, message=AssistantMessage(content=t), finish_reason=finish)
        for j, t in enumerate(texts)
    ]
    return ChatCompletion(
        id="chatcmpl-abc",
        created=1_760_000_000,
        model="chatty-up",
        choices=choices,
        usage=usage or Usage(3, 2, 5),
    )


def chunk(text: str | None = None, finish: str | None = None, index: int = 0, **extra: Any) -> ChatChunk:
    delta = Delta(content=text) if text is not None else Delta(role="assistant")
    return ChatChunk(
        id="chatcmpl-s1",
        created=1_760_000_000,
        model="chatty-up",
        choices=[ChunkChoice(index=index, delta=delta, finish_reason=finish)],
        **extra,
    )


# --- decoding and translation of the request -----------------------------------------------------


def test_prompt_becomes_one_user_message_with_sampling_fields_and_legacy_default_limit() -> None:
    req = request(temperature=0.2, stop=["\n"], presence_penalty=0.5, logit_bias={"50256": -100}, n=2, seed=7)
    chat = chat_request_for(req, "Say hi", stream=False)
    assert [(m.role, m.content) for m in chat.messages] == [("user", "Say hi")]
    assert chat.max_tokens == 16  # the legacy API's default, not the model's maximum
    assert (chat.temperature, chat.stop, chat.n, chat.seed) == (0.2, ["\n"], 2, 7)
    # OpenAI-kind adapters forward ``raw``: a chat body, holding the fields ChatRequest has no slot for.
    assert chat.raw["messages"] == [{"role": "user", "content": "Say hi"}]
    assert chat.raw["presence_penalty"] == 0.5 and chat.raw["logit_bias"] == {"50256": -100}
    assert "prompt" not in chat.raw and "stream" not in chat.raw


def test_translated_stream_always_asks_for_usage() -> None:
    chat = chat_request_for(request(stream=True, max_tokens=40), "x", stream=True)
    assert chat.stream and chat.include_usage and chat.raw["stream_options"] == {"include_usage": True}
    assert chat.max_tokens == 40 and chat.raw["max_tokens"] == 40


def test_prompt_kinds() -> None:
    assert prompt_texts(request(prompt="a")) == ["a"]
    assert prompt_texts(request(prompt=["a", "b"])) == ["a", "b"]
    assert prompt_texts(request(prompt=[1, 2, 3])) is None
    assert prompt_texts(request(prompt=[[1, 2], [3]])) is None
    assert prompt_texts(request(prompt=None)) is None


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"prompt": ["a", 1]}, "prompt"),
        ({"prompt": []}, "prompt"),
        ({"prompt": [[1], []]}, "prompt[1]"),
        ({"prompt": [1, -2]}, "prompt[1]"),
        ({"temperature": 3}, "temperature"),
        ({"logprobs": 6}, "logprobs"),
        ({"max_tokens": "ten"}, "max_tokens"),
        ({"stream_options": {"include_usage": True}}, "stream_options"),
        ({"prompt": "x", "model": None}, "model"),
    ],
)
def test_decode_errors_name_the_parameter(body: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        decode_completion(msgspec.json.encode({"model": "chatty", "prompt": "x", **body}))
    assert caught.value.param == param


def test_prompt_is_required() -> None:
    with pytest.raises(InvalidRequest) as caught:
        decode_completion(b'{"model": "chatty"}')
    assert caught.value.param == "prompt"


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"suffix": "end."}, "suffix"),
        ({"logprobs": 0}, "logprobs"),
        ({"best_of": 3}, "best_of"),
        ({"prompt": [1, 2]}, "prompt"),
        ({"prompt": ["a", "b"], "stream": True}, "prompt"),
        ({"max_tokens": 0}, "max_tokens"),
    ],
)
def test_fields_only_the_native_api_honours(fields: dict[str, Any], param: str) -> None:
    blocked = untranslatable(request(**fields))
    assert blocked is not None and blocked[0] == param


def test_plain_requests_translate() -> None:
    assert untranslatable(request(prompt=["a", "b"], n=3, echo=True, best_of=1, suffix="")) is None
    assert untranslatable(request(stream=True, prompt=["one"])) is None


# --- chat answer → text_completion ---------------------------------------------------------------


def test_answers_are_indexed_prompt_major_with_echo_and_summed_usage() -> None:
    req = request(prompt=["P0 ", "P1 "], n=2, echo=True)
    answers = [answer("a", "b", usage=Usage(3, 2, 5)), answer("c", "d", usage=Usage(4, 6, 10))]
    completion = text_completion(answers, ["P0 ", "P1 "], req)
    assert [(c.index, c.text) for c in completion.choices] == [
        (0, "P0 a"),
        (1, "P0 b"),
        (2, "P1 c"),
        (3, "P1 d"),
    ]
    assert completion.id == "cmpl-abc" and completion.object == "text_completion"
    assert completion.usage == Usage(7, 8, 15)
    validate(msgspec.to_builtins(completion), "CreateCompletionResponse")


def test_choice_order_follows_the_index_even_when_a_provider_sends_them_out_of_order() -> None:
    shuffled = answer("x", "y")
    shuffled.choices.reverse()
    completion = text_completion([shuffled], ["p"], request(n=2))
    assert [(c.index, c.text) for c in completion.choices] == [(0, "x"), (1, "y")]


@pytest.mark.parametrize(
    ("chat", "legacy"),
    [("stop", "stop"), ("length", "length"), ("content_filter", "content_filter"), ("tool_calls", "stop"),
     ("function_call", "stop"), (None, "stop")],
)  # fmt: skip
def test_finish_reasons_fit_the_legacy_vocabulary(chat: str | None, legacy: str) -> None:
    completion = text_completion([answer("t", finish=chat)], ["p"], request())
    assert completion.choices[0].finish_reason == legacy
    validate(msgspec.to_builtins(completion), "CreateCompletionResponse")


def test_refusal_is_the_text_when_there_is_no_content() -> None:
    refused = answer("x")
    refused.choices[0].message = AssistantMessage(content=None, refusal="I can't help with that.")
    assert text_completion([refused], ["p"], request()).choices[0].text == "I can't help with that."


def test_usage_of_one_call_is_kept_whole_and_cached_tokens_are_summed() -> None:
    one = Usage(10, 2, 12, prompt_tokens_details={"cached_tokens": 4})
    assert total_usage([one]) is one
    both = total_usage([one, Usage(5, 1, 6, prompt_tokens_details={"cached_tokens": 1}), None])
    assert both == Usage(15, 3, 18, prompt_tokens_details={"cached_tokens": 5})
    assert total_usage([None, msgspec.UNSET]) is msgspec.UNSET


# --- chat stream → text_completion events --------------------------------------------------------


def test_chunks_become_text_events_and_the_role_chunk_is_dropped() -> None:
    translator = ChunkTranslator("ignored", echo=False)
    assert translator.translate(chunk()) is None
    first = translator.translate(chunk("Hel"))
    assert first is not None and [(c.text, c.index, c.finish_reason) for c in first.choices] == [
        ("Hel", 0, None)
    ]
    assert first.id == "cmpl-s1" and first.object == "text_completion" and first.carries_output()
    end = translator.translate(chunk("", finish="length"))
    assert end is not None and [(c.text, c.finish_reason) for c in end.choices] == [("", "length")]
    assert not end.carries_output()
    validate(msgspec.to_builtins(end), "CreateCompletionResponse")


def test_echo_goes_before_each_choices_first_text_only() -> None:
    translator = ChunkTranslator("Q: ", echo=True)
    assert translator.translate(chunk()) is None  # a role chunk must not become the commit point
    events = [
        translator.translate(c) for c in (chunk("a", index=0), chunk("b", index=1), chunk("c", index=0))
    ]
    assert [(e.choices[0].index, e.choices[0].text) for e in events if e] == [
        (0, "Q: a"),
        (1, "Q: b"),
        (0, "c"),
    ]


def test_echo_of_a_choice_that_wrote_nothing_rides_on_its_finish() -> None:
    translator = ChunkTranslator("Q: ", echo=True)
    end = translator.translate(chunk("", finish="stop"))
    assert end is not None and end.choices[0].text == "Q: "


def test_usage_chunk_becomes_a_usage_event_without_choices() -> None:
    usage_chunk = ChatChunk(id="chatcmpl-s1", created=1, model="m", choices=[], usage=Usage(3, 4, 7))
    event = ChunkTranslator("p", echo=False).translate(usage_chunk)
    assert event is not None and event.choices == [] and event.usage == Usage(3, 4, 7)
    validate(msgspec.to_builtins(event), "CreateCompletionResponse")


# --- native wire ---------------------------------------------------------------------------------


def legacy_call(catalog: Catalog, req: CompletionRequest, model: str = "instruct") -> Call[CompletionRequest]:
    found = catalog.models[model]
    return Call(request=req, model=found, provider=catalog.provider_of(found), request_id="req_1")


def test_native_body_is_the_clients_with_upstream_model_and_forced_stream_usage() -> None:
    catalog = parse_catalog(CATALOG, {})
    req = request(model="instruct", suffix="!", logprobs=2, models=["chatty"], extra_field=1, stream=True)
    body = msgspec.json.decode(build_legacy_body(legacy_call(catalog, req), stream=True))
    assert body["model"] == "gpt-3.5-turbo-instruct"
    assert "models" not in body
    assert (body["suffix"], body["logprobs"], body["extra_field"]) == ("!", 2, 1)
    assert body["stream_options"] == {"include_usage": True}


def test_native_stream_reader_splits_events_and_stops_at_done() -> None:
    reader = LegacyStreamReader("p")
    event = b'data: {"id":"cmpl-1","object":"text_completion","created":1,"model":"m",'
    event += b'"choices":[{"text":"hi","index":0,"logprobs":null,"finish_reason":null}]}\n\n'
    assert reader.feed(event[:30]) == []
    [first] = reader.feed(event[30:])
    assert first.choices[0].text == "hi"
    assert reader.feed(b"data: [DONE]\n\n") == [] and reader.done
    reader.check_complete()


def test_native_stream_reader_reports_an_in_band_error_and_a_cut() -> None:
    reader = LegacyStreamReader("p")
    reader.feed(b'data: {"error": {"message": "overloaded"}}\n\n')
    assert reader.error is not None and "overloaded" in reader.error.message
    cut = LegacyStreamReader("p")
    with pytest.raises(RouterError):
        cut.check_complete()


# --- per-candidate choice: native or translated --------------------------------------------------


class FakeAdapter:
    """Chat calls answer ``answer(prompt)``; legacy calls answer a text completion; both are recorded."""

    def __init__(self, fail_legacy: bool = False) -> None:
        self.chat: list[UpstreamCall] = []
        self.legacy: list[bytes] = []
        self.in_flight = 0
        self.peak = 0
        self.fail_legacy = fail_legacy

    async def complete(self, call: UpstreamCall) -> ChatCompletion:
        self.chat.append(call)
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        await asyncio.sleep(0.001)
        self.in_flight -= 1
        content = call.request.messages[0].content
        return answer(f"re:{content}")

    async def stream(self, call: UpstreamCall) -> AsyncGenerator[ChatChunk, None]:
        self.chat.append(call)
        for c in (chunk(), chunk("one "), chunk("two", finish="stop")):
            yield c
        yield ChatChunk(id="chatcmpl-s1", created=1, model="chatty-up", choices=[], usage=Usage(2, 2, 4))

    async def post_legacy(self, body: bytes, request_id: str) -> bytes:
        self.legacy.append(body)
        if self.fail_legacy:
            raise UpstreamStatusError(503, "down", provider="p")
        return msgspec.json.encode(
            {"id": "cmpl-n", "object": "text_completion", "created": 1, "model": "gpt-3.5-turbo-instruct",
             "choices": [{"text": "native", "index": 0, "logprobs": None, "finish_reason": "length"}],
             "usage": {"prompt_tokens": 2, "completion_tokens": 16, "total_tokens": 18}}
        )  # fmt: skip

    async def stream_legacy(self, body: bytes, request_id: str) -> AsyncGenerator[bytes, None]:
        self.legacy.append(body)
        yield b'data: {"id":"cmpl-n","object":"text_completion","created":1,"model":"m","choices":'
        yield b'[{"text":"nat","index":0,"logprobs":null,"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n'

    async def aclose(self) -> None:
        return None


def engine_with(adapter: FakeAdapter) -> Engine:
    catalog = parse_catalog(CATALOG, {})
    return Engine(catalog, {"p": adapter, "a": adapter}, FakeClock())


async def test_native_model_gets_the_clients_body_and_its_answer_is_relayed() -> None:
    adapter = FakeAdapter()
    engine = engine_with(adapter)
    req = request(model="instruct", suffix="!", logprobs=1)
    plan = plan_completion(engine, req)
    assert [t.model.id for t in plan.candidates] == ["instruct"]  # the chat fallback cannot honour suffix
    completion, outcome = await engine.run(req, plan, "req_1", _COMPLETE)
    assert completion.choices[0].text == "native" and outcome.model.id == "instruct"
    assert adapter.chat == [] and msgspec.json.decode(adapter.legacy[0])["suffix"] == "!"


async def test_native_failure_falls_back_to_a_translated_chat_model() -> None:
    adapter = FakeAdapter(fail_legacy=True)
    engine = engine_with(adapter)
    req = request(model="instruct", prompt="hello")
    completion, outcome = await engine.run(req, plan_completion(engine, req), "req_1", _COMPLETE)
    assert outcome.model.id == "chatty"
    assert completion.choices[0].text == "re:hello"
    validate(msgspec.to_builtins(completion), "CreateCompletionResponse")


async def test_each_prompt_is_one_chat_call_and_choices_keep_prompt_order() -> None:
    adapter = FakeAdapter()
    engine = engine_with(adapter)
    prompts = [f"p{i}" for i in range(20)]
    req = request(prompt=prompts)
    completion, _ = await engine.run(req, plan_completion(engine, req), "req_1", _COMPLETE)
    assert [c.text for c in completion.choices] == [f"re:p{i}" for i in range(20)]
    assert [c.index for c in completion.choices] == list(range(20))
    assert len(adapter.chat) == 20
    assert 1 < adapter.peak <= 8  # concurrent, but bounded
    assert completion.usage == Usage(60, 40, 100)


async def test_translated_stream_events_end_with_usage() -> None:
    adapter = FakeAdapter()
    engine = engine_with(adapter)
    req = request(stream=True, echo=True, prompt="Q ")
    plan = plan_completion(engine, req)
    opened = await engine.run_stream(req, plan, "req_1", _STREAM)
    events = [e async for e in opened.chunks()]
    assert "".join(c.text for e in events for c in e.choices) == "Q one two"
    assert events[-1].choices == [] and events[-1].usage == Usage(2, 2, 4)


async def test_native_stream_relays_events() -> None:
    adapter = FakeAdapter()
    engine = engine_with(adapter)
    req = request(model="instruct", stream=True)
    opened = await engine.run_stream(req, plan_completion(engine, req), "req_1", _STREAM)
    events = [e async for e in opened.chunks()]
    assert [c.text for e in events for c in e.choices] == ["nat"]
    assert msgspec.json.decode(adapter.legacy[0])["stream_options"] == {"include_usage": True}


@pytest.mark.parametrize("model", ["chatty", "claude", "fast"])
def test_a_chat_first_plan_refuses_native_only_fields_naming_them(model: str) -> None:
    engine = engine_with(FakeAdapter())
    with pytest.raises(InvalidRequest) as caught:
        plan_completion(engine, request(model=model, suffix="end"))
    assert caught.value.param == "suffix" and "chat API" in caught.value.message


def test_token_prompts_to_a_chat_model_say_the_router_cannot_detokenise() -> None:
    engine = engine_with(FakeAdapter())
    with pytest.raises(InvalidRequest) as caught:
        plan_completion(engine, request(prompt=[[1, 2]]))
    assert caught.value.param == "prompt" and "detokenise" in caught.value.message


def test_embeddings_model_is_not_supported() -> None:
    engine = engine_with(FakeAdapter())
    with pytest.raises(InvalidRequest) as caught:
        plan_completion(engine, request(model="embed"))
    assert caught.value.code == "model_not_supported"


def test_strategy_keyword_ranks_chat_models_only() -> None:
    plan = plan_completion(engine_with(FakeAdapter()), request(model="cost"))
    assert plan.strategy == "cost" and "instruct" not in [t.model.id for t in plan.candidates]


async def test_first_failure_cancels_the_other_prompts() -> None:
    started: list[int] = []
    cancelled: list[int] = []

    async def one(i: int) -> int:
        started.append(i)
        if i == 0:
            raise UpstreamStatusError(500, "boom", provider="p")
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.append(i)
            raise
        return i

    with pytest.raises(UpstreamStatusError):
        await each_prompt(one, 4, limit=2)
    assert 3 not in started  # the bound held: prompt 3 never got a slot
    assert sorted(cancelled) == sorted(started[1:])  # and every prompt that started was cancelled
