"""Paged KV accounting: prefix-hashed blocks, ref counts, holds and eviction.

Pure and synchronous: time is passed in as `now`; nothing here sleeps, spawns or
touches Ray.

    prefix      TokenChain (prompt identity as chained block hashes), stable_hash
    block_pool  BlockPool: ref counts, content hashes, free lists (mechanism)
    eviction    EvictionPolicy strategies picked by name (LRU, ...)
    holds       HoldTable: named references that keep cached prefixes resident
    manager     KVCacheManager: sequences and holds for one engine
"""
from kvcache.block_pool import Block, BlockPool, PoolCounters
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
    "TokenChain",
    "eviction_policy_names",
    "make_eviction_policy",
    "register_eviction_policy",
    "stable_hash",
]
