"""Paged KV accounting: prefix-hashed blocks, ref counts, holds and eviction.

Pure and synchronous: time is passed in as `now`; nothing here sleeps, spawns or
touches Ray.

    prefix      TokenChain (prompt identity as chained block hashes), stable_hash
    block_pool  BlockPool: ref counts, content hashes, free lists (mechanism)
    runs        Block, Run: cached blocks as paths, "in use" tracked per path
    eviction    EvictionPolicy strategies picked by name (LRU, ...)
    holds       HoldTable: named references that keep cached prefixes resident
    manager     KVCacheManager: sequences and holds for one engine
    bench_pool  micro-benchmark of the manager on agent-shaped sessions (__main__)
"""
from kvcache.block_pool import BlockPool, PoolCounters
from kvcache.errors import KVCacheFullError, KVIntegrityError, NoFreeBlocksError
from kvcache.eviction import (
    EvictionPolicy,
    LRUEviction,
    eviction_policy_names,
    make_eviction_policy,
    register_eviction_policy,
)
from kvcache.holds import HoldTable
from kvcache.manager import Allocation, KVCacheManager, KVStats, PrefixMatch
from kvcache.prefix import TokenChain, stable_hash
from kvcache.runs import Block, Run

__all__ = [
    "Allocation",
    "Block",
    "BlockPool",
    "EvictionPolicy",
    "HoldTable",
    "KVCacheFullError",
    "KVCacheManager",
    "KVIntegrityError",
    "KVStats",
    "LRUEviction",
    "NoFreeBlocksError",
    "PoolCounters",
    "PrefixMatch",
    "Run",
    "TokenChain",
    "eviction_policy_names",
    "make_eviction_policy",
    "register_eviction_policy",
    "stable_hash",
]
