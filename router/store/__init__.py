"""Shared state backends: in-process memory by default (one worker), Redis for several."""

from router.store.backend import StateBackend, StoreReport, build_backend
from router.store.buckets import Bucket, LimitStore, MemoryLimitStore, TakeResult
from router.store.cache import CacheStore, MemoryCacheStore
from router.store.responses import MemoryResponseStore, ResponseStore, StoredResponse
from router.store.spend import Cap, Charge, MemorySpendStore, Reservation, SpendStore, Totals

__all__ = [
    "Bucket",
    "CacheStore",
    "Cap",
    "Charge",
    "LimitStore",
    "MemoryCacheStore",
    "MemoryLimitStore",
    "MemoryResponseStore",
    "MemorySpendStore",
    "Reservation",
    "ResponseStore",
    "SpendStore",
    "StateBackend",
    "StoreReport",
    "StoredResponse",
    "TakeResult",
    "Totals",
    "build_backend",
]
