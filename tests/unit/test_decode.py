"""Request decoding: a wrong body gets a 400 that names the field, like OpenAI's."""

from __future__ import annotations

import pytest

from router.api.decode import decode_chat
from router.errors import InvalidRequest


def test_valid_body_keeps_unknown_fields_for_passthrough() -> None:
    request = decode_chat(
        b'{"model":"m","messages":[{"role":"user","content":"hi"}],"seed":3,"x_custom":{"a":1}}'
    )
    assert request.model == "m"
    assert request.raw["x_custom"] == {"a": 1}
    assert request.seed == 3


def test_client_field_named_like_internal_raw_cannot_replace_it() -> None:
    request = decode_chat(
        b'{"model":"m","messages":[{"role":"user","content":"hi"}],"__router_raw__":{"evil":1}}'
    )
    assert request.raw == {
        "model": "m",
        "messages": [{"role": "user", "content": "hi"}],
        "__router_raw__": {"evil": 1},
    }


def test_invalid_utf8_in_a_string_is_a_400_with_its_offset() -> None:
    body = b'{"model":"m","messages":[{"role":"user","content":"caf\xe9"}]}'
    with pytest.raises(InvalidRequest) as info:
        decode_chat(body)
    assert info.value.status == 400
    assert "not valid UTF-8" in info.value.message
    offset = body.index(b"\xe9")
    assert f"byte 0xe9 at offset {offset}" in info.value.message


def test_assistant_tool_turns_and_empty_content_lists_stay_valid() -> None:
    request = decode_chat(
        b'{"model":"m","messages":[{"role":"user","content":"x"},'
        b'{"role":"assistant","content":null,"tool_calls":[{"id":"c","type":"function",'
        b'"function":{"name":"f","arguments":"{}"}}]},{"role":"tool","tool_call_id":"c","content":"ok"},'
        b'{"role":"assistant","content":[]}]}'
    )
    assert len(request.messages) == 4


@pytest.mark.parametrize(
    ("body", "param", "text"),
    [
        (b"", None, "empty"),
        (b"{not json", None, "could not parse the JSON body"),
        (b"[1,2]", None, "must be a JSON object"),
        (b'{"messages":[{"role":"user","content":"x"}]}', "model", "Missing required parameter: 'model'"),
        (b'{"model":"m"}', "messages", "Missing required parameter: 'messages'"),
        (b'{"model":"m","messages":[]}', "messages", "length >= 1"),
        (
            b'{"model":5,"messages":[{"role":"user","content":"x"}]}',
            "model",
            "expected a string, got an integer",
        ),
        (
            b'{"model":"m","messages":[{"role":"user","content":5}]}',
            "messages[0].content",
            "expected a string, an array or null",
        ),
        (
            b'{"model":"m","messages":[{"role":"wizard","content":"x"}]}',
            "messages[0].role",
            "'wizard'. Supported values are: 'system', 'developer', 'user', 'assistant', 'tool', 'function'",
        ),
        # A message without a role is a chat message missing its role, not a Responses item.
        (b'{"model":"m","messages":[{"content":"hi"}]}', "messages[0].role", "'messages[0].role'"),
        (b'{"model":"m","messages":[{"role":"user"}]}', "messages[0].content", "'messages[0].content'"),
        (
            b'{"model":"m","messages":[{"role":"user","content":"x"},{"role":"assistant"}]}',
            "messages[1].content",
            "needs 'content' or 'tool_calls'",
        ),
        (
            b'{"model":"m","messages":[{"role":"tool","content":"x"}]}',
            "messages[0].tool_call_id",
            "'messages[0].tool_call_id'",
        ),
        (
            b'{"model":"m","messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_schema"}}',
            "response_format.json_schema",
            "Missing required parameter",
        ),
        (
            b'{"model":"m","messages":[{"role":"user","content":"x"}],'
            b'"response_format":{"type":"json_schema","json_schema":"s"}}',
            "response_format.json_schema",
            "expected an object",
        ),
        (
            b'{"model":"m","messages":[{"role":"user","content":"x"}],'
            b'"response_format":{"type":"json_schema","json_schema":{"schema":{"$defs":[1]}}}}',
            "response_format.json_schema.schema.$defs",
            "'$defs' must be an object mapping names to schemas",
        ),
        (
            b'{"model":"m","messages":[{"role":"user","content":"x"}],"presence_penalty":"high"}',
            "presence_penalty",
            "expected a number",
        ),
        (
            b'{"model":"m","messages":[{"role":"user","content":"x"}],"temperature":"hot"}',
            "temperature",
            "expected a number",
        ),
        (b'{"model":"m","messages":[{"role":"user","content":"x"}],"temperature":3}', "temperature", "<= 2"),
        (
            b'{"model":"m","messages":[{"role":"user","content":"x"}],"stream":"yes"}',
            "stream",
            "expected a boolean",
        ),
        (
            b'{"model":"m","messages":[{"role":"user","content":"x"}],"stream_options":{"include_usage":true}}',
            "stream_options",
            "only allowed when 'stream'",
        ),
        (b'{"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":0}', "max_tokens", ">= 1"),
    ],
)
def test_bad_body_names_the_field(body: bytes, param: str | None, text: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        decode_chat(body)
    assert info.value.status == 400
    assert info.value.param == param
    assert text in info.value.message


def test_a_redis_url_that_is_not_one_is_refused_at_start() -> None:
    import pytest

    from router.settings import Settings, SettingsError

    with pytest.raises(SettingsError) as error:
        Settings.from_env({"ROUTER_REDIS_URL": "http://user:secret@cache:6379"})
    assert "not a Redis URL" in str(error.value) and "secret" not in str(error.value)
    assert (
        Settings.from_env({"ROUTER_REDIS_URL": "rediss://cache:6380/1"}).redis_url == "rediss://cache:6380/1"
    )
