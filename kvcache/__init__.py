"""Paged KV accounting: prefix-hashed blocks, ref counts, holds and eviction.

Pure and synchronous: time is passed in as `now`; nothing here sleeps, spawns or
touches Ray.

    prefix      TokenChain (prompt identity as chained block hashes), stable_hash
    block_pool  BlockPool: ref counts, content hashes, free lists (mechanism)
    runs        Block, Run: cached blocks as paths, "in use" tracked per path
    eviction    EvictionPolicy strategies picked by name: "lru" here,
                "workflow_aware" (eviction_workflow), "belady" (eviction_belady)
    holds       HoldTable: named references that keep cached prefixes resident, capped
    host_tier   HostTier: evicted blocks offloaded to host memory, reloaded later
    manager     KVCacheManager: sequences, holds and the host tier for one engine
    results     the manager's named results (PrefixMatch, Allocation, ...)
    pins        PinSet: holds with deadlines, soft weights, a cap, per-program release
    pressure    what to give up when KV is full (Continuum's rule, pins first)
    bench_pool  micro-benchmark of the manager on agent-shaped sessions (__main__)
"""
from agentrt.kvcache.block_pool import BlockPool, PoolCounters
from agentrt.kvcache.errors import KVCacheFullError, KVIntegrityError, NoFreeBlocksError
from agentrt.kvcache.eviction import (
    EvictionPolicy,
    LRUEviction,
    eviction_policy_names,
    make_eviction_policy,
    register_eviction_policy,
)
from agentrt.kvcache.eviction_belady import BeladyEviction, FutureAccess
from agentrt.kvcache.eviction_workflow import StepTransitions, WorkflowAwareEviction
from agentrt.kvcache.holds import HoldResult, HoldTable
from agentrt.kvcache.host_tier import HostTier, OffloadResult
from agentrt.kvcache.manager import KVCacheManager
from agentrt.kvcache.pins import PinResult, PinSet, Released
from agentrt.kvcache.pressure import PressureAction, RunningRequest, pressure_action
from agentrt.kvcache.results import Allocation, ChainOffload, KVStats, PrefixMatch
from agentrt.kvcache.prefix import TokenChain, stable_hash
from agentrt.kvcache.runs import Block, Run

__all__ = [
    "Allocation",
    "BeladyEviction",
    "Block",
    "BlockPool",
    "ChainOffload",
    "EvictionPolicy",
    "FutureAccess",
    "HoldResult",
    "HoldTable",
    "HostTier",
    "KVCacheFullError",
    "KVCacheManager",
    "KVIntegrityError",
    "KVStats",
    "LRUEviction",
    "NoFreeBlocksError",
    "OffloadResult",
    "PinResult",
    "PinSet",
    "PoolCounters",
    "PrefixMatch",
    "PressureAction",
    "Released",
    "Run",
    "RunningRequest",
    "StepTransitions",
    "TokenChain",
    "WorkflowAwareEviction",
    "eviction_policy_names",
    "make_eviction_policy",
    "pressure_action",
    "register_eviction_policy",
    "stable_hash",
]
