"""Injectable clock: monotonic time for deadlines and wall time for timestamps."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    """What the router asks of time; tests pass a fake that they move by hand."""

    def monotonic(self) -> float: ...

    def wall(self) -> float: ...


class SystemClock:
    """The real clock."""

    __slots__ = ()

    def monotonic(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.time()


class FakeClock:
    """A clock that moves only when told to."""

    __slots__ = ("_mono", "_wall")

    def __init__(self, start_wall: float = 1_760_000_000.0) -> None:
        self._mono = 1000.0
        self._wall = start_wall

    def monotonic(self) -> float:
        return self._mono

    def wall(self) -> float:
        return self._wall

    def advance(self, seconds: float) -> None:
        self._mono += seconds
        self._wall += seconds
