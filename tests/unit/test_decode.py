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
            "Invalid enum value 'wizard'",
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
