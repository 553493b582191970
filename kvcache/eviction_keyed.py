"""The shared mechanics of eviction policies that rank blocks by a computed key.

Workflow-aware and Belady eviction both keep the evictable blocks in a `KeyedHeap`
and re-key a block when what they know about its content changes; they differ only in
the key (`_rekey`) and in what they must forget about a block that leaves
(`_forget_extra`). This base class implements the pool's side of the contract once.

    evictable block ──_hash──▶ content hash ──_block──▶ evictable block
                     └_freed─▶ when it went free (the tie-breaker)
"""
from __future__ import annotations

from abc import abstractmethod
from typing import TYPE_CHECKING

from agentrt.kvcache.eviction import EvictionPolicy
from agentrt.kvcache.keyed_heap import KeyedHeap

if TYPE_CHECKING:
    from agentrt.kvcache.block_pool import BlockPool


class KeyedEviction(EvictionPolicy):
    """Evicts the block with the lowest `(key, freed at)`; subclasses set the key."""

    def __init__(self) -> None:
        self._pool: BlockPool | None = None
        self._heap = KeyedHeap()
        self._hash: dict[int, int] = {}  # evictable block -> its content hash
        self._block: dict[int, int] = {}  # content hash -> evictable block
        self._freed: dict[int, float] = {}  # evictable block -> when it went free

    def bind(self, pool: BlockPool) -> None:
        self._pool = pool

    def add(self, block_id: int, now: float, oldest: bool = False) -> None:
        """Key the block by what is known of its content (unbound, in tests: the block
        id stands for its hash). `oldest` needs nothing: `now` is its free time."""
        if block_id in self._heap:
            raise KeyError(f"block {block_id} is already evictable")
        h = self._pool.blocks[block_id].hash if self._pool is not None else block_id
        self._hash[block_id], self._block[h], self._freed[block_id] = h, block_id, now
        self._rekey(block_id)

    def remove(self, block_id: int) -> None:
        if not self._heap.discard(block_id):
            raise KeyError(f"block {block_id} is not evictable")
        self._forget(block_id)

    def touch(self, block_id: int, now: float) -> None:
        self._freed[block_id] = now
        self._rekey(block_id)

    def pop_victim(self) -> int | None:
        block_id = self._heap.pop()
        if block_id is not None:
            self._forget(block_id)
        return block_id

    def __len__(self) -> int:
        return len(self._heap)

    def __contains__(self, block_id: object) -> bool:
        return block_id in self._heap

    @abstractmethod
    def _rekey(self, block_id: int) -> None:
        """Push the block into the heap with its current key."""

    def _forget(self, block_id: int) -> None:
        self._forget_extra(block_id)
        del self._block[self._hash.pop(block_id)], self._freed[block_id]

    def _forget_extra(self, block_id: int) -> None:
        """What a subclass keeps about an evictable block, dropped when it leaves."""
