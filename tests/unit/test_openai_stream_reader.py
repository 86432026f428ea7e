"""The OpenAI stream reader: complete streams, cut streams, and errors sharing a read with chunks."""

from __future__ import annotations

import pytest

from router.errors import StreamInterrupted, UpstreamBadResponse
from router.providers.openai import StreamReader

HEAD = b'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":'
CHUNK = HEAD + b'[{"index":0,"delta":{"content":"%s"},"finish_reason":null}]}\n\n'
FINISH = HEAD + b'[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n'
ERROR = b'data: {"error":{"message":"boom","type":"server_error","param":null,"code":null}}\n\n'


def test_chunks_before_an_error_in_the_same_read_are_delivered_first() -> None:
    reader = StreamReader("p")
    chunks = reader.feed(CHUNK % b"a" + CHUNK % b"b" + ERROR)
    assert [c.choices[0].delta.content for c in chunks] == ["a", "b"]
    assert isinstance(reader.error, StreamInterrupted) and "boom" in reader.error.message


def test_done_ends_the_stream_complete() -> None:
    reader = StreamReader("p")
    reader.feed(CHUNK % b"a" + FINISH + b"data: [DONE]\n\n")
    assert reader.done
    reader.check_complete()


def test_finish_without_done_still_counts_as_complete() -> None:
    reader = StreamReader("p")
    reader.feed(CHUNK % b"a" + FINISH)
    reader.check_complete()


def test_end_without_finish_or_done_is_interrupted() -> None:
    reader = StreamReader("p")
    reader.feed(CHUNK % b"a")
    with pytest.raises(StreamInterrupted):
        reader.check_complete()


def test_garbage_event_is_a_bad_response() -> None:
    reader = StreamReader("p")
    reader.feed(b"data: <html>oops</html>\n\n")
    assert isinstance(reader.error, UpstreamBadResponse)
