"""Shared state backends: in-process memory by default (one worker)."""

from router.store.responses import MemoryResponseStore, ResponseStore, StoredResponse

__all__ = ["MemoryResponseStore", "ResponseStore", "StoredResponse"]
