"""Shared state backends: in-process memory by default (one worker), Redis for several."""

from router.store.backend import StateBackend, StoreReport, build_backend
from router.store.buckets import Bucket, LimitStore, MemoryLimitStore, TakeResult
from router.store.cache import CacheStore, MemoryCacheStore
from router.store.responses import MemoryResponseStore, ResponseStore, StoredResponse

__all__ = [
    "Bucket",
    "CacheStore",
    "LimitStore",
    "MemoryCacheStore",
    "MemoryLimitStore",
    "MemoryResponseStore",
    "ResponseStore",
    "StateBackend",
    "StoreReport",
    "StoredResponse",
    "TakeResult",
    "build_backend",
]
