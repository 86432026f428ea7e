"""The upstream SSE parser must survive any split of the byte stream."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from router.providers._sse import SSEParser

STREAM = (
    'data: {"text":"héllo 世界 🎉"}\n\n'
    ": keep-alive comment\n\n"
    "event: content_block_delta\r\n"
    'data: {"a":1}\r\n\r\n'
    'data: {"multi":\ndata: "line"}\n\n'
    "data: [DONE]\n\n"
).encode()


def _parse(pieces: list[bytes]) -> list[tuple[str, bytes]]:
    parser = SSEParser()
    out: list[tuple[str, bytes]] = []
    for piece in pieces:
        out.extend((e.event, e.data) for e in parser.feed(piece))
    return out


EXPECTED = [
    ("message", '{"text":"héllo 世界 🎉"}'.encode()),
    ("content_block_delta", b'{"a":1}'),
    ("message", b'{"multi":\n"line"}'),
    ("message", b"[DONE]"),
]


def test_whole_stream_parses_into_events() -> None:
    assert _parse([STREAM]) == EXPECTED


@given(st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=12))
def test_any_split_gives_the_same_events(cuts: list[int]) -> None:
    points = sorted(set(cuts))
    pieces = [STREAM[a:b] for a, b in zip([0, *points], [*points, len(STREAM)], strict=True)]
    assert _parse(pieces) == EXPECTED


def test_byte_by_byte_keeps_multibyte_characters_whole() -> None:
    events = _parse([STREAM[i : i + 1] for i in range(len(STREAM))])
    assert events[0][1].decode() == '{"text":"héllo 世界 🎉"}'


def test_unterminated_last_event_is_not_delivered() -> None:
    parser = SSEParser()
    assert parser.feed(b'data: {"x":1}\n') == []
    assert parser.pending
