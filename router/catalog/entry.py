"""The error a catalog entry raises when it passed the schema but does not fit with the rest."""

from __future__ import annotations


class EntryError(Exception):
    """A catalog entry that passed the schema but does not fit with the rest; ``path`` locates it."""

    def __init__(self, path: tuple[str, ...], reason: str) -> None:
        super().__init__(reason)
        self.path = path
        self.reason = reason
