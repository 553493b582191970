"""A min-heap of block ids keyed by sort keys that may change: lazy invalidation.

Re-keying pushes a new entry and leaves the old one behind; `pop` skips entries whose
key is no longer current. Keys end in a unique tick, so entries never compare ids and
equal-looking keys keep insertion order. The heap is rebuilt when stale entries
outnumber live ones, so memory stays O(live)."""
from __future__ import annotations

import heapq
from itertools import count
from typing import Any


class KeyedHeap:
    """Block id -> key (a tuple); `pop` returns the id with the smallest key."""

    __slots__ = ("_heap", "_key", "_tick")

    def __init__(self) -> None:
        self._heap: list[tuple[Any, ...]] = []
        self._key: dict[int, tuple[Any, ...]] = {}
        self._tick = count()

    def push(self, block_id: int, *key: Any) -> None:
        """Set (or replace) the key of `block_id`; a tick is appended."""
        full = (*key, next(self._tick))
        self._key[block_id] = full
        heapq.heappush(self._heap, (*full, block_id))
        if len(self._heap) > 2 * len(self._key) + 64:
            self._heap = [(*k, b) for b, k in self._key.items()]
            heapq.heapify(self._heap)

    def discard(self, block_id: int) -> bool:
        """Forget `block_id`; False if it was not there."""
        return self._key.pop(block_id, None) is not None

    def pop(self) -> int | None:
        """Remove and return the id with the smallest key, or None when empty."""
        heap, keys = self._heap, self._key
        while heap:
            entry = heapq.heappop(heap)
            block_id = entry[-1]
            if keys.get(block_id) == entry[:-1]:
                del keys[block_id]
                return block_id
        return None

    def key(self, block_id: int) -> tuple[Any, ...] | None:
        """The current key of `block_id` (tick last), or None."""
        return self._key.get(block_id)

    def __len__(self) -> int:
        return len(self._key)

    def __contains__(self, block_id: object) -> bool:
        return block_id in self._key

    def __iter__(self):
        return iter(list(self._key))
