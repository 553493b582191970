"""KV cache manager: sequences and holds on top of one engine's block pool.

A sequence is a running request's blocks (see `kvcache.sequence`). Its first blocks
may be shared cached blocks (prefix hits); the rest are fresh. As the engine learns
the content (the prompt, then generated tokens) it commits the sequence's chain, which
registers full blocks so that later prompts can reuse them. A hold keeps a chain's
cached prefix resident while nobody runs on it (see `kvcache.holds`).

Costs: `match`, `blocks_needed`, `can_allocate` are O(log n). `allocate`, `append`,
`commit`, `free`, `hold` and `unhold` are O(log n + blocks allocated or committed +
runs changing between in use and free), where a run is a stretch of a chain between
branch points (see `kvcache.runs`). So a session's next turn takes back its cached
chain, and `free` gives it back, at a cost that does not grow with the chain (its
O(log n) lookups aside), whatever the order of allocate, free, hold and unhold.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from kvcache.block_pool import BlockPool
from kvcache.errors import KVCacheFullError, KVIntegrityError
from kvcache.eviction import make_eviction_policy
from kvcache.holds import HoldTable
from kvcache.prefix import TokenChain
from kvcache.sequence import SeqBlocks


@dataclass(frozen=True, slots=True)
class PrefixMatch:
    """Cached part of a prompt: `blocks` leading blocks, worth `tokens` prompt tokens
    (capped so that at least one prompt token is always computed)."""

    blocks: int
    tokens: int


@dataclass(frozen=True, slots=True)
class Allocation:
    """Result of admitting a prompt: tokens served from cache, fresh blocks taken."""

    cached_tokens: int
    blocks_allocated: int


@dataclass(frozen=True, slots=True)
class KVStats:
    hit_tokens: int
    miss_tokens: int
    allocated_blocks: int
    evicted_blocks: int
    deduped_blocks: int

    @property
    def hit_rate(self) -> float:
        total = self.hit_tokens + self.miss_tokens
        return self.hit_tokens / total if total else 0.0


class KVCacheManager:
    """Block accounting for one engine: check/act/free over sequences and holds.

    Sequences: `can_allocate` / `allocate`, `can_append` / `append`, `commit`, `free`.
    Holds: `hold` / `unhold`. Every prefix passed in must use this manager's block size
    (ValueError otherwise).
    """

    def __init__(self, num_blocks: int, block_size: int = 16, eviction: str = "lru") -> None:
        self._pool = BlockPool(num_blocks, block_size, make_eviction_policy(eviction))
        self.block_size = block_size
        self._seqs: dict[str, SeqBlocks] = {}
        self._holds = HoldTable(self._pool)
        self._hit_tokens = 0
        self._miss_tokens = 0

    # -- sizes and stats -------------------------------------------------------------

    @property
    def pool(self) -> BlockPool:
        return self._pool

    @property
    def on_evict(self) -> list[Callable[[int], None]]:
        """Callbacks called with the content hash of each evicted block."""
        return self._pool.on_evict

    @property
    def capacity_blocks(self) -> int:
        return self._pool.num_blocks

    @property
    def num_free_blocks(self) -> int:
        return self._pool.num_free

    @property
    def num_used_blocks(self) -> int:
        return self._pool.num_used

    @property
    def num_cached_blocks(self) -> int:
        """Free blocks that still hold reusable content."""
        return self._pool.num_cached_evictable

    @property
    def stats(self) -> KVStats:
        c = self._pool.counters
        return KVStats(self._hit_tokens, self._miss_tokens, c.allocations, c.evictions, c.dedups)

    # -- prompts (read-only) -----------------------------------------------------------

    def match(self, prefix: TokenChain) -> PrefixMatch:
        """The cached leading part of `prefix`. O(log n)."""
        self._check_block_size(prefix)
        blocks = self._pool.cached_prefix_blocks(prefix.hashes)
        return PrefixMatch(blocks, self._cached_tokens(prefix, blocks))

    def blocks_needed(self, prefix: TokenChain, extra_tokens: int = 0) -> int:
        """Blocks that admitting `prefix` (plus `extra_tokens`) would take out of the
        free pool now: fresh blocks, plus cached prefix blocks that are currently free."""
        self._check_block_size(prefix)
        pool = self._pool
        cached = pool.cached_prefix_blocks(prefix.hashes)
        fresh = self._blocks_for(prefix.num_tokens + extra_tokens) - cached
        return fresh + pool.free_blocks_in_prefix(prefix.hashes, cached)

    def can_allocate(self, prefix: TokenChain, extra_tokens: int = 0) -> bool:
        return self.blocks_needed(prefix, extra_tokens) <= self._pool.num_free

    # -- sequences -----------------------------------------------------------------

    def allocate(self, seq_id: str, prefix: TokenChain, now: float) -> Allocation:
        """Admit `prefix` as sequence `seq_id`: share its cached blocks, allocate the rest.

        Raises ValueError if `seq_id` exists, KVCacheFullError (nothing changed) if the
        pool cannot supply the blocks.
        """
        if seq_id in self._seqs:
            raise ValueError(f"sequence {seq_id!r} already allocated; free it first")
        self._check_block_size(prefix)
        pool, hashes = self._pool, prefix.hashes
        cached = pool.cached_prefix_blocks(hashes)
        fresh = self._blocks_for(prefix.num_tokens) - cached
        needed = fresh + pool.free_blocks_in_prefix(hashes, cached)
        if needed > pool.num_free:
            raise KVCacheFullError(f"sequence {seq_id!r}", needed, pool.num_free)
        tip = last_hash = None
        if cached:
            last_hash = hashes[cached - 1]
            tip = pool.block_of(last_hash)
            pool.acquire((tip,), now)
        tail = pool.allocate(fresh, now)
        self._seqs[seq_id] = SeqBlocks(prefix.num_tokens, cached, tip, last_hash, tail)
        cached_tokens = self._cached_tokens(prefix, cached)
        self._hit_tokens += cached_tokens
        self._miss_tokens += prefix.num_tokens - cached_tokens
        return Allocation(cached_tokens, fresh)

    def can_append(self, seq_id: str, num_tokens: int) -> bool:
        return self._append_blocks(self._seq(seq_id), num_tokens) <= self._pool.num_free

    def append(self, seq_id: str, num_tokens: int, now: float) -> None:
        """Grow the sequence by `num_tokens`, allocating blocks past its last one.

        Raises KVCacheFullError (nothing changed) if the pool cannot supply them.
        """
        seq = self._seq(seq_id)
        if num_tokens < 0:
            raise ValueError(f"num_tokens must be >= 0, got {num_tokens}")
        new = self._append_blocks(seq, num_tokens)
        if new > self._pool.num_free:
            raise KVCacheFullError(f"appending to {seq_id!r}", new, self._pool.num_free)
        if new:
            seq.tail += self._pool.allocate(new, now)
        seq.num_tokens += num_tokens

    def commit(self, seq_id: str, chain: TokenChain, now: float) -> None:
        """The sequence's content is now `chain`: register its full blocks not yet
        committed, in order, sharing any already cached elsewhere. O(new blocks).

        Raises ValueError if `chain` is longer than the sequence or does not extend the
        content committed before.
        """
        seq = self._seq(seq_id)
        self._check_block_size(chain)
        if chain.num_tokens > seq.num_tokens:
            raise ValueError(
                f"chain of {chain.num_tokens} tokens exceeds sequence {seq_id!r} "
                f"({seq.num_tokens} tokens); append first"
            )
        hashes, start = chain.hashes, seq.committed
        if start and (len(hashes) < start or hashes[start - 1] != seq.last_hash):
            raise ValueError(f"chain does not extend the content committed to {seq_id!r}")
        end = len(hashes)
        if end <= start:
            return
        tail = seq.tail
        # Only the new tip keeps a reference; it keeps the blocks before it in use.
        ids = self._pool.commit_chain(seq.tip, tail[: end - start], hashes, start, now)
        del tail[: end - start]
        seq.committed, seq.tip, seq.last_hash = end, ids[-1], hashes[-1]

    def free(self, seq_id: str, now: float) -> None:
        """Release the sequence's blocks; committed ones stay cached until evicted."""
        seq = self._seqs.pop(seq_id, None)
        if seq is None:
            raise KeyError(f"unknown sequence {seq_id!r}")
        if seq.tip is not None:
            self._pool.release((seq.tip,), now)
        self._pool.release(seq.tail, now)

    def has_seq(self, seq_id: str) -> bool:
        return seq_id in self._seqs

    def seq_num_tokens(self, seq_id: str) -> int:
        return self._seq(seq_id).num_tokens

    def seq_num_blocks(self, seq_id: str) -> int:
        return self._seq(seq_id).num_blocks

    # -- holds -----------------------------------------------------------------------

    def hold(self, holder_id: str, prefix: TokenChain, now: float) -> int:
        """Reference the leading cached blocks of `prefix` for `holder_id`, replacing
        its previous hold. Returns the number of blocks held (0 if none is cached)."""
        self._check_block_size(prefix)
        return self._holds.hold(holder_id, prefix.hashes, now)

    def unhold(self, holder_id: str, now: float) -> int:
        """Drop `holder_id`'s hold; returns the number of blocks released."""
        return self._holds.unhold(holder_id, now)

    def held_blocks(self, holder_id: str) -> int:
        return self._holds.held_blocks(holder_id)

    @property
    def num_held_blocks(self) -> int:
        """Distinct blocks pinned by at least one hold."""
        return self._holds.num_held_blocks

    # -- integrity ---------------------------------------------------------------------

    def check_integrity(self) -> None:
        """Raise KVIntegrityError unless the pool is consistent and every block's ref
        count equals the references from sequences (tip and tail) and holds (tip)."""
        self._pool.check_integrity()
        violations = self._holds.violations()
        refs: Counter[int] = Counter(self._holds.tips())
        for seq_id, seq in self._seqs.items():
            refs.update(seq.tail)
            if seq.tip is not None:
                refs[seq.tip] += 1
            violations += seq.violations(seq_id, self._pool)
        for b in self._pool.blocks:
            if b.ref_count != refs.get(b.block_id, 0):
                violations.append(f"block {b.block_id}: ref {b.ref_count} but "
                                  f"{refs.get(b.block_id, 0)} references from seqs+holds")
        if violations:
            raise KVIntegrityError(violations)

    # -- helpers -----------------------------------------------------------------------

    def _seq(self, seq_id: str) -> SeqBlocks:
        seq = self._seqs.get(seq_id)
        if seq is None:
            raise KeyError(f"unknown sequence {seq_id!r}")
        return seq

    def _blocks_for(self, num_tokens: int) -> int:
        return -(-num_tokens // self.block_size)

    def _append_blocks(self, seq: SeqBlocks, num_tokens: int) -> int:
        return self._blocks_for(seq.num_tokens + num_tokens) - seq.num_blocks

    def _cached_tokens(self, prefix: TokenChain, blocks: int) -> int:
        return max(0, min(blocks * self.block_size, prefix.num_tokens - 1))

    def _check_block_size(self, chain: TokenChain) -> None:
        if chain.block_size != self.block_size:
            raise ValueError(
                f"chain block size {chain.block_size} != manager block size {self.block_size}"
            )
