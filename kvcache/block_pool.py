"""The block pool: ref counts, content hashes and free lists. Mechanism only.

Every block is in exactly one state: empty, in use, or free cached::

    empty ──allocate──▶ in use ──release──▶ empty                    (never committed)
                          │
                        commit
                          ▼
                   in use, cached ──release──▶ free cached ──evict──▶ fresh, in use
                          ▲                         │              (inside allocate)
                          └──────── acquire ────────┘

Cached content is PREFIX-CLOSED: a block is registered only when the block before it
in its chain is cached (or it is a chain's first block), and only free cached blocks
without a cached child (leaves) are evictable. So along any chain the cached blocks
form a leading run, and `cached_prefix_blocks` is a binary search.

A reference on a cached block keeps its whole cached prefix in use: a block is in use
while it has a reference or a child in use. So a sequence or a hold needs one
reference, on the last cached block of its chain, and taking or dropping it touches
only the blocks whose state changes::

    hold ─▶ b2 (ref 1)              in use: b0 b1 b2 b3   (used children: b0:1 b1:2)
    seq  ─▶ b3 (ref 1)              b1 has two children in use, b2 and b3
             b0 ─ b1 ─┬─ b2
                      └─ b3 ─ b4   b4: free cached leaf, the only evictable block

In-use is closed under ancestors, so every free cached block can be evicted leaf
first without touching a block in use, and `num_free` counts them all.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from kvcache.errors import KVIntegrityError, NoFreeBlocksError
from kvcache.eviction import EvictionPolicy, LRUEviction
from kvcache.pool_integrity import pool_violations


@dataclass(slots=True)
class Block:
    """One physical KV block. `hash` is None until the block is committed."""

    block_id: int
    ref_count: int = 0  # direct references (sequences, holds)
    hash: int | None = None
    # The previous block of the chain (hash and id); None for a chain's first block.
    # A block with cached children is never evicted, so parent_id stays valid.
    parent_hash: int | None = None
    parent_id: int | None = None
    last_access: float = 0.0
    num_cached_children: int = 0  # cached blocks chaining from this one (0 = leaf)
    num_used_children: int = 0  # of those, how many are in use

    @property
    def in_use(self) -> bool:
        return self.ref_count > 0 or self.num_used_children > 0


@dataclass(slots=True)
class PoolCounters:
    allocations: int = 0
    evictions: int = 0
    dedups: int = 0


class BlockPool:
    """A fixed set of `num_blocks` blocks with prefix-hash caching.

    Check/act/free protocol: `can_allocate` / `allocate`, `acquire` / `acquire_cached`,
    `commit`, `release`. Misuse (releasing a block without a reference, acquiring an
    empty one, committing out of chain order) raises ValueError or KeyError.
    """

    def __init__(
        self, num_blocks: int, block_size: int, eviction: EvictionPolicy | None = None
    ) -> None:
        if num_blocks < 1 or block_size < 1:
            raise ValueError(
                f"num_blocks and block_size must be >= 1, got {num_blocks}, {block_size}"
            )
        self.block_size = block_size
        self.blocks = [Block(i) for i in range(num_blocks)]
        self.eviction = eviction if eviction is not None else LRUEviction()
        if len(self.eviction):
            raise ValueError("the eviction policy must start empty")
        # Stack of empty block ids; reversed so that a fresh pool hands out 0, 1, 2...
        self._empty = list(range(num_blocks - 1, -1, -1))
        self._cached: dict[int, int] = {}  # content hash -> block id
        self._num_used = 0
        self._num_free_cached = 0
        self.counters = PoolCounters()
        # Called with the content hash of each evicted block, after the pool is
        # consistent again; callbacks must not raise or call back into the pool.
        self.on_evict: list[Callable[[int], None]] = []

    # -- sizes ---------------------------------------------------------------------

    @property
    def num_blocks(self) -> int:
        return len(self.blocks)

    @property
    def num_used(self) -> int:
        """Blocks in use (referenced, or with a child in use)."""
        return self._num_used

    @property
    def num_cached_evictable(self) -> int:
        """Free blocks holding content: evictable now, or once their cached
        descendants (all free too) are gone."""
        return self._num_free_cached

    @property
    def num_evictable_now(self) -> int:
        """Free cached leaves: the blocks the eviction policy holds."""
        return len(self.eviction)

    @property
    def num_free(self) -> int:
        """Blocks `allocate` can hand out now: empty plus free cached."""
        return len(self._empty) + self._num_free_cached

    @property
    def num_cached(self) -> int:
        """Blocks holding registered content, in use or not."""
        return len(self._cached)

    # -- lookups (read-only) -------------------------------------------------------

    def block_of(self, content_hash: int) -> int | None:
        return self._cached.get(content_hash)

    def parent_block(self, block_id: int) -> int | None:
        """The cached block before `block_id` in its chain (None for a first block)."""
        return self.blocks[block_id].parent_id

    def ancestry(self, block_id: int) -> list[int]:
        """`block_id` and the cached blocks before it, last first. O(depth); for checks."""
        chain: list[int] = []
        bid: int | None = block_id
        while bid is not None:
            chain.append(bid)
            bid = self.blocks[bid].parent_id
        return chain

    def cached_prefix_blocks(self, hashes: Sequence[int]) -> int:
        """How many leading `hashes` (a chain, as in `TokenChain.hashes`) are cached.

        O(log n) lookups: by prefix closure, if hashes[i] is cached so is every
        hashes[j < i] (its ancestors), so "is cached" is true then false along the list.
        """
        cached = self._cached
        lo, hi = 0, len(hashes)
        while lo < hi:
            mid = (lo + hi) // 2
            if hashes[mid] in cached:
                lo = mid + 1
            else:
                hi = mid
        return lo

    def free_blocks_in_prefix(self, hashes: Sequence[int], cached_blocks: int) -> int:
        """Of the first `cached_blocks` hashes (all cached), how many are free: what
        referencing that prefix takes out of `num_free`.

        O(log n): in use is closed under ancestors, so it is true then false along
        a chain.
        """
        blocks, cached = self.blocks, self._cached
        lo, hi = 0, cached_blocks
        while lo < hi:
            mid = (lo + hi) // 2
            if blocks[cached[hashes[mid]]].in_use:
                lo = mid + 1
            else:
                hi = mid
        return cached_blocks - lo

    # -- check / act / free ---------------------------------------------------------

    def can_allocate(self, n: int) -> bool:
        return n <= self.num_free

    def allocate(self, n: int, now: float) -> list[int]:
        """Hand out `n` empty blocks with ref 1, evicting cached leaves if needed.

        Raises NoFreeBlocksError (nothing changed) if n > num_free.
        """
        if n > self.num_free:
            raise NoFreeBlocksError(n, self.num_free)
        ids = [self._take_block() for _ in range(n)]
        blocks = self.blocks
        for bid in ids:
            b = blocks[bid]
            b.ref_count = 1
            b.last_access = now
        self._num_used += n
        self.counters.allocations += n
        return ids

    def acquire(self, block_ids: Sequence[int], now: float) -> None:
        """Take one more reference on each block: one in use, or a free cached one
        (which, with its free ancestors, comes back into use). O(state changes).

        Raises ValueError at the first empty block; the ids before it stay acquired.
        """
        blocks = self.blocks
        for bid in block_ids:
            b = blocks[bid]
            b.last_access = now
            if b.ref_count or b.num_used_children:
                b.ref_count += 1
            elif b.hash is None:
                raise ValueError(f"acquire of empty block {bid}; use allocate")
            else:
                b.ref_count = 1
                self._became_used(b, now)

    def acquire_cached(self, hashes: Sequence[int], now: float) -> list[int]:
        """Acquire the blocks caching `hashes` (a cached chain prefix), one reference
        each; returns their ids. Raises KeyError, acquiring nothing, if one is not
        cached. To keep a prefix resident, acquiring its last block is enough."""
        cached = self._cached
        ids = [cached[h] for h in hashes]
        self.acquire(ids, now)
        return ids

    def commit(self, block_id: int, content_hash: int, parent_hash: int | None, now: float) -> int:
        """Register the content of a block the caller filled and references.

        `parent_hash` is the hash of the previous block of the chain (which must be
        cached), or None for a chain's first block. If `content_hash` is already cached
        by another block, that block gains a reference, `block_id` loses one, and the
        other block's id is returned for the caller to use instead; otherwise the block
        is registered and `block_id` is returned. The reference stays direct either way.
        """
        b = self.blocks[block_id]
        if b.ref_count <= 0 or b.hash is not None:
            raise ValueError(
                f"block {block_id} must be referenced and uncommitted to commit "
                f"(ref={b.ref_count}, hash={b.hash})"
            )
        cached = self._cached
        existing = cached.get(content_hash)
        if existing is not None:
            self.acquire((existing,), now)
            self.release((block_id,), now)
            self.counters.dedups += 1
            return existing
        if parent_hash is not None:
            b.parent_id = self._adopt(parent_hash, now)
        b.hash = content_hash
        b.parent_hash = parent_hash
        b.last_access = now
        cached[content_hash] = block_id
        return block_id

    def release(self, block_ids: Sequence[int], now: float) -> None:
        """Drop one reference from each block. A block left without references or
        children in use becomes free cached (evictable once a leaf) or, if never
        committed, empty; its parent may follow. O(state changes).

        Raises ValueError at the first block without a reference.
        """
        blocks = self.blocks
        for bid in block_ids:
            b = blocks[bid]
            if b.ref_count <= 0:
                raise ValueError(f"release of block {bid}, which has no reference")
            b.ref_count -= 1
            b.last_access = now
            if not b.ref_count and not b.num_used_children:
                self._became_free(b, now)

    # -- state transitions ----------------------------------------------------------

    def _became_used(self, b: Block, now: float) -> None:
        """Free cached `b` came into use: so do its free ancestors."""
        blocks = self.blocks
        while True:
            self._num_free_cached -= 1
            self._num_used += 1
            if not b.num_cached_children:
                self.eviction.remove(b.block_id)
            b.last_access = now
            if b.parent_id is None:
                return
            b = blocks[b.parent_id]
            b.num_used_children += 1
            if b.ref_count or b.num_used_children > 1:
                return  # it was in use already

    def _became_free(self, b: Block, now: float) -> None:
        """`b` lost its last reference and used child: so may its ancestors."""
        blocks = self.blocks
        while True:
            self._num_used -= 1
            if b.hash is None:
                self._empty.append(b.block_id)
                return
            self._num_free_cached += 1
            if not b.num_cached_children:
                self.eviction.add(b.block_id, now)
            if b.parent_id is None:
                return
            b = blocks[b.parent_id]
            b.num_used_children -= 1
            if b.ref_count or b.num_used_children:
                return
            b.last_access = now

    def _adopt(self, parent_hash: int, now: float) -> int:
        """A block in use is being registered as a child of `parent_hash`; returns
        the parent's block id."""
        parent_id = self._cached.get(parent_hash)
        if parent_id is None:
            raise ValueError(
                f"parent hash {parent_hash} is not cached: commit a chain's blocks in order"
            )
        parent = self.blocks[parent_id]
        if parent.ref_count or parent.num_used_children:
            parent.num_used_children += 1
        else:
            parent.num_used_children = 1
            self._became_used(parent, now)
        parent.num_cached_children += 1
        return parent_id

    def _take_block(self) -> int:
        if self._empty:
            return self._empty.pop()
        victim = self.eviction.pop_victim()
        if victim is None:
            raise AssertionError("num_free > 0 but nothing evictable")
        self._evict(self.blocks[victim])
        return victim

    def _evict(self, b: Block) -> None:
        content_hash = b.hash
        del self._cached[content_hash]
        self._num_free_cached -= 1
        if b.parent_id is not None:
            parent = self.blocks[b.parent_id]
            parent.num_cached_children -= 1
            if not parent.num_cached_children and not parent.in_use:
                # Its last use was no later than its child's, which was the oldest.
                self.eviction.add(parent.block_id, parent.last_access, oldest=True)
        b.hash = b.parent_hash = b.parent_id = None
        self.counters.evictions += 1
        for callback in self.on_evict:
            callback(content_hash)

    # -- integrity -----------------------------------------------------------------

    def check_integrity(self) -> None:
        """Raise KVIntegrityError listing every broken invariant. O(num_blocks)."""
        violations = pool_violations(
            self.blocks, self._empty, self._cached, self.eviction,
            self._num_used, self._num_free_cached,
        )
        if violations:
            raise KVIntegrityError(violations)
