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
while its subtree holds a reference. So a sequence or a hold needs one reference, on
the last cached block of its chain::

    hold ─▶ b2 (ref 1)              in use: b0 b1 b2 b3
    seq  ─▶ b3 (ref 1)
             b0 ─ b1 ─┬─ b2
                      └─ b3 ─ b4   b4: free cached leaf, the only evictable block

In-use is closed under ancestors, so every free cached block can be evicted leaf
first without touching a block in use, and `num_free` counts them all. The cached
blocks are kept as runs (see `kvcache.runs`), which track in use per path: taking or
dropping a reference costs O(runs that change), not O(blocks that change), so a
session's turn can give back and take back a 5,000-block chain in O(1).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import compress, count

from agentrt.kvcache.errors import KVIntegrityError, NoFreeBlocksError
from agentrt.kvcache.eviction import EvictionPolicy, LRUEviction
from agentrt.kvcache.pool_eviction import PoolEviction
from agentrt.kvcache.pool_integrity import pool_violations
from agentrt.kvcache.prefix import leading_run
from agentrt.kvcache.runs import Block, append_in_place, attach, mark, unmark


@dataclass(slots=True)
class PoolCounters:
    allocations: int = 0
    evictions: int = 0
    dedups: int = 0


class BlockPool(PoolEviction):
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
        self.eviction.bind(self)
        # Stack of empty block ids; reversed so that a fresh pool hands out 0, 1, 2...
        self._empty = list(range(num_blocks - 1, -1, -1))
        self._cached: dict[int, int] = {}  # content hash -> block id
        self._num_used = 0
        self._num_free_cached = 0
        self.counters = PoolCounters()
        # Called with the content hash of each evicted block, after the pool is
        # consistent again; callbacks must not raise or call back into the pool.
        self.on_evict: list[Callable[[int], None]] = []
        # Called once per allocate that evicted, before `on_evict`, with the evicted
        # (content hash, parent hash) pairs in eviction order (a child before its
        # parent): the host tier's intake (see `kvcache.host_tier`). Same rules.
        self.offload_sink: Callable[[list[tuple[int, int | None]]], None] | None = None

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
        return leading_run(hashes, self._cached)

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
        empty = self._empty
        split = max(0, len(empty) - n)
        ids = empty[split:][::-1]  # in pop order
        del empty[split:]
        evicted = self._evict(n - len(ids), ids) if len(ids) < n else ()
        blocks = self.blocks
        for bid in ids:
            blocks[bid].ref_count = 1
        self._num_used += n
        self.counters.allocations += n
        if evicted:
            self._report(evicted)
        return ids

    def acquire(self, block_ids: Sequence[int], now: float) -> None:
        """Take one more reference on each block: one in use, or a free cached one
        (which, with its free ancestors, comes back into use). O(runs changing).

        Raises ValueError at the first empty block; the ids before it stay acquired.
        """
        blocks = self.blocks
        for bid in block_ids:
            b = blocks[bid]
            run = b.run
            if run is None:
                if not b.ref_count:
                    raise ValueError(f"acquire of empty block {bid}; use allocate")
                b.ref_count += 1
                continue
            if b.pos >= run.used and not b.num_cached_children:
                self.eviction.remove(bid)
            b.ref_count += 1
            became = mark(run, b.pos)
            self._num_used += became
            self._num_free_cached -= became

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
        parent = None
        if parent_hash is not None:
            parent_id = cached.get(parent_hash)
            if parent_id is None:
                raise ValueError(
                    f"parent hash {parent_hash} is not cached: commit a chain's blocks in order"
                )
            parent = self.blocks[parent_id]
            if parent.pos >= parent.run.used and not parent.num_cached_children:
                self.eviction.remove(parent_id)  # a free leaf comes into use
            parent.num_cached_children += 1
            b.parent_id = parent_id
        became = attach(parent, b)
        self._num_used += became
        self._num_free_cached -= became
        b.hash = content_hash
        b.parent_hash = parent_hash
        cached[content_hash] = block_id
        return block_id

    def commit_chain(
        self, tip: int | None, block_ids: Sequence[int], hashes: Sequence[int],
        start: int, now: float,
    ) -> list[int]:
        """Commit `block_ids` as the blocks of `hashes[start:]` (one each, in order) and
        hand the caller's references on to the last of them: `tip`, the caller's block
        of `hashes[start - 1]` (None when start is 0), and every block but the last
        lose their reference. Returns the ids that hold the content (see `commit`).

        The same as `commit` on each block, then `release` of the others, but a block
        after the last block of a run in use is appended in place: O(1) each.
        """
        blocks, commit = self.blocks, self.commit
        if tip is not None and (not start or blocks[tip].hash != hashes[start - 1]):
            raise ValueError(f"block {tip} does not hold the hash before {start}")
        ids: list[int] = []
        prev = tip  # holds the reference that moves on to the next block
        i, end = start, start + len(block_ids)
        while i < end:
            b = blocks[prev] if prev is not None else None
            if b is not None and b.ref_count and b.pos + 1 == b.run.size == b.run.used:
                # Append in place up to the first hash cached already (found in C).
                hits = compress(count(i), map(self._cached.__contains__, hashes[i:end]))
                stop = next(hits, end)
                todo = block_ids[i - start : stop - start]
                n = append_in_place(blocks, b, todo, hashes[i:stop])
                if n:
                    self._cached.update(zip(hashes[i : i + n], todo))
                    self.release((prev,), now)  # it stays in use: counts only
                    ids += todo[:n]
                    prev, i = ids[-1], i + n
                    continue
            # Releasing the previous block once its successor is in is the same as at
            # the end: it stays in use either way.
            ids.append(commit(block_ids[i - start], hashes[i], hashes[i - 1] if i else None, now))
            if prev is not None:
                self.release((prev,), now)
            prev, i = ids[-1], i + 1
        return ids

    def release(self, block_ids: Sequence[int], now: float) -> None:
        """Drop one reference from each block. A block left without references in
        its subtree becomes free cached (evictable once a leaf) or, if never committed,
        empty; so may its ancestors. O(runs changing).

        Raises ValueError at the first block without a reference.
        """
        blocks = self.blocks
        for bid in block_ids:
            b = blocks[bid]
            if b.ref_count <= 0:
                raise ValueError(f"release of block {bid}, which has no reference")
            b.ref_count -= 1
            run = b.run
            if run is None:
                if not b.ref_count:
                    self._num_used -= 1
                    self._empty.append(bid)
                continue
            freed = unmark(run, b.pos, now)
            if freed:
                self._num_used -= freed
                self._num_free_cached += freed
                if not b.num_cached_children:  # a leaf, so the deepest block freed
                    self.eviction.add(bid, now)

    # -- integrity -----------------------------------------------------------------

    def check_integrity(self) -> None:
        """Raise KVIntegrityError listing every broken invariant. O(num_blocks)."""
        violations = pool_violations(
            self.blocks, self._empty, self._cached, self.eviction,
            self._num_used, self._num_free_cached,
        )
        if violations:
            raise KVIntegrityError(violations)
