"""The edge's policy from the catalog in force: the keys, CORS and header bounds every request meets.

Built whole from a (re)loaded catalog and swapped as one object, so a request never sees the keys of
one catalog with the CORS rules of another.
"""

from __future__ import annotations

from router.access import KeyRing
from router.catalog.schema import AccessSpec


class EdgePolicy:
    __slots__ = ("allow_headers", "any_origin", "cors", "keys", "max_header_bytes", "max_headers", "origins")

    def __init__(self, keys: KeyRing, access: AccessSpec) -> None:
        self.keys = keys
        self.cors = access.cors
        self.origins = frozenset(access.cors.origins)
        self.any_origin = "*" in self.origins
        self.allow_headers = ", ".join(access.cors.allow_headers)
        self.max_headers = access.max_headers
        self.max_header_bytes = access.max_header_bytes
