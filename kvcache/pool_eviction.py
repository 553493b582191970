"""Eviction in the block pool: free cached leaves go in the eviction policy's order,
and a chain's free end can be evicted on demand (a swap-out). A mixin of
`kvcache.block_pool.BlockPool`, whose blocks, cache map and counters it shares.
"""
from __future__ import annotations

from collections.abc import Sequence

from agentrt.kvcache.runs import Block, detach_last, freed_at


class PoolEviction:
    """Needs from the pool: `blocks`, `eviction`, `counters`, `on_evict`,
    `offload_sink`, `_cached`, `_empty`, `_num_free_cached` and
    `cached_prefix_blocks`."""

    def _evict(self, n: int, victims: list[int]) -> list[tuple[int, int | None]]:
        """Evict `n` free cached leaves in the policy's order, appending their ids to
        `victims`; returns their (content hash, parent hash) pairs."""
        blocks, policy = self.blocks, self.eviction
        chase = policy.exposed_parent_next
        evicted: list[tuple[int, int | None]] = []
        left = n
        victim = None
        while left:
            if victim is None:
                victim = policy.pop_victim()
                if victim is None:
                    raise AssertionError("num_free > 0 but nothing evictable")
            b = blocks[victim]
            evicted.append((b.hash, b.parent_hash))
            victims.append(victim)
            left -= 1
            parent = self._forget(b)
            victim = None
            if parent is None:
                continue
            # A free block left without a child went free no later than its child,
            # which was the oldest: it goes first in line.
            if chase and left:
                victim = parent.block_id
            else:
                policy.add(parent.block_id, freed_at(parent.run, parent.pos), oldest=True)
        self._num_free_cached -= n
        self.counters.evictions += n
        return evicted

    def _forget(self, b: Block) -> Block | None:
        """Unregister evicted `b` (a free leaf, out of the policy). Returns its parent
        if that is now a free leaf (not yet in the policy), else None."""
        del self._cached[b.hash]
        parent_id = b.parent_id
        detach_last(b)
        b.hash = b.parent_hash = b.parent_id = None
        if parent_id is None:
            return None
        parent = self.blocks[parent_id]
        parent.num_cached_children -= 1
        if parent.num_cached_children or parent.pos < parent.run.used:
            return None
        return parent

    def evict_tail(self, hashes: Sequence[int], now: float) -> list[tuple[int, int | None]]:
        """Evict the free end of the cached chain `hashes` now, deepest block first,
        up to the first block that is in use or has another cached child; the blocks
        become empty. Returns the evicted (content hash, parent hash) pairs, in order,
        and reports them to `on_evict` (not to `offload_sink`: the caller decides
        where they go). O(log n + blocks evicted)."""
        depth = self.cached_prefix_blocks(hashes)
        if not depth:
            return []
        b: Block | None = self.blocks[self._cached[hashes[depth - 1]]]
        if b.pos < b.run.used or b.num_cached_children:
            return []  # in use, or a branch point: nothing of this chain is a leaf
        self.eviction.remove(b.block_id)
        evicted: list[tuple[int, int | None]] = []
        while b is not None:
            evicted.append((b.hash, b.parent_hash))
            self._empty.append(b.block_id)
            b = self._forget(b)
        self._num_free_cached -= len(evicted)
        self.counters.evictions += len(evicted)
        for content_hash, _ in evicted:
            for callback in self.on_evict:
                callback(content_hash)
        return evicted

    def _report(self, evicted: list[tuple[int, int | None]]) -> None:
        if self.offload_sink is not None:
            self.offload_sink(evicted)
        for content_hash, _ in evicted:
            for callback in self.on_evict:
                callback(content_hash)
