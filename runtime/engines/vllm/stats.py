"""The vLLM engine's EngineStats, read from vLLM's scheduler and block pool in the engine
thread after every step (the event loop reads the snapshot, never vLLM itself).

    kv_capacity_blocks   the block pool's blocks, less vLLM's null block
    kv_used_blocks       capacity - free blocks: what vLLM's own usage gauge counts,
                         held blocks included
    kv_pinned_blocks     distinct blocks agentrt holds (pending or decided)
    kv_cached_blocks     free blocks that still carry a prefix-cache hash (counted by
                         walking the pool: at most every CACHED_SCAN_S)
    prefix_hit/miss      prompt tokens of finished calls found cached / computed

`problems` gets the holds' broken invariants (`RetainingScheduler.check_holds`), which
`VllmEngine.check_integrity` raises.
"""
from __future__ import annotations

import time
from typing import Any

from agentrt.runtime.core.messages import EngineStats

CACHED_SCAN_S = 0.25


def _cached_free(engine: Any, pool: Any) -> int:
    """Free blocks with a hash; the walk is O(blocks), so its count is reused for up to
    CACHED_SCAN_S (kept on the engine as `cached_scan`: (when, count))."""
    when, count = getattr(engine, "cached_scan", (-1e9, 0))
    now = time.monotonic()
    if now - when >= CACHED_SCAN_S:
        count = sum(1 for b in pool.blocks
                    if b.ref_cnt == 0 and not b.is_null and b.block_hash is not None)
        engine.cached_scan = (now, count)
    return count


def snapshot(engine: Any) -> EngineStats:
    core = engine.core
    scheduler = core.scheduler
    pool = scheduler.kv_cache_manager.block_pool
    capacity = core.capacity_blocks
    running, waiting = scheduler.get_request_counts()
    engine.problems = scheduler.check_holds()
    return EngineStats(
        worker_id=engine.worker_id, running=running, waiting=waiting,
        kv_capacity_blocks=capacity, kv_used_blocks=capacity - pool.get_num_free_blocks(),
        kv_pinned_blocks=scheduler.holds.held_blocks,
        kv_cached_blocks=_cached_free(engine, pool), block_size=core.block_size,
        prefix_hit_tokens=engine.hit_tokens,
        prefix_miss_tokens=engine.prompt_tokens - engine.hit_tokens,
        busy_time=engine.busy_time, steps=engine.steps,
        running_context_tokens=sum(r.num_computed_tokens for r in scheduler.running))
