"""KV cache manager: sequences and holds on top of one engine's block pool.

A sequence is a running request's blocks (see `kvcache.sequence`). Its first blocks
may be shared cached blocks (prefix hits); the rest are fresh. As the engine learns
the content (the prompt, then generated tokens) it commits the sequence's chain, which
registers full blocks so that later prompts can reuse them. A hold keeps a chain's
cached prefix resident while nobody runs on it (see `kvcache.holds`).

With a host tier (`host_blocks > 0`; off by default), blocks the pool evicts are
offloaded to host memory instead of dropped (see `kvcache.host_tier`), `match`
reports the host-cached blocks after the GPU-cached ones, and `allocate` reloads
them: they count as reloaded, not recomputed, and the caller charges the reload time
(`PerfModel.reload_time(alloc.reloaded_tokens)`). `offload` moves a chain's free end
to host memory now; `reload` brings a chain's host blocks back as free cached blocks.

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

from agentrt.kvcache.block_pool import BlockPool
from agentrt.kvcache.errors import KVCacheFullError, KVIntegrityError
from agentrt.kvcache.eviction import EvictionPolicy, make_eviction_policy
from agentrt.kvcache.holds import HoldResult, HoldTable
from agentrt.kvcache.host_tier import HostTier
from agentrt.kvcache.prefix import TokenChain
from agentrt.kvcache.results import Allocation, ChainOffload, KVStats, PrefixMatch
from agentrt.kvcache.sequence import SeqBlocks

__all__ = ["Allocation", "ChainOffload", "KVCacheManager", "KVStats", "PrefixMatch"]


class KVCacheManager:
    """Block accounting for one engine: check/act/free over sequences and holds.

    Sequences: `can_allocate` / `allocate`, `can_append` / `append`, `commit`, `free`.
    Holds: `hold` / `unhold`. Every prefix passed in must use this manager's block size
    (ValueError otherwise).
    """

    def __init__(
        self, num_blocks: int, block_size: int = 16, eviction: str | EvictionPolicy = "lru",
        host_blocks: int = 0,
    ) -> None:
        policy = make_eviction_policy(eviction) if isinstance(eviction, str) else eviction
        self._pool = BlockPool(num_blocks, block_size, policy)
        self.block_size = block_size
        self._seqs: dict[str, SeqBlocks] = {}
        self._holds = HoldTable(self._pool)
        self._hit_tokens = 0
        self._miss_tokens = 0
        self._reloaded_tokens = 0
        self.host: HostTier | None = None
        if host_blocks:
            self.host = HostTier(host_blocks)
            self._pool.offload_sink = self.host.offload

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
        stored = self.host.stored_total if self.host is not None else 0
        return KVStats(self._hit_tokens, self._miss_tokens, c.allocations, c.evictions,
                       c.dedups, self._reloaded_tokens, stored)

    # -- prompts (read-only) -----------------------------------------------------------

    def match(self, prefix: TokenChain) -> PrefixMatch:
        """The cached leading part of `prefix`, on the GPU then in the host tier.
        O(log n)."""
        self._check_block_size(prefix)
        blocks = self._pool.cached_prefix_blocks(prefix.hashes)
        tokens = self._cached_tokens(prefix, blocks)
        if self.host is None:
            return PrefixMatch(blocks, tokens)
        host = self.host.stretch(prefix.hashes, blocks)
        return PrefixMatch(blocks, tokens, host,
                           self._cached_tokens(prefix, blocks + host) - tokens)

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
        """Admit `prefix` as sequence `seq_id`: share its cached blocks, reload its
        host-cached blocks (with a host tier), allocate the rest.

        Reloading takes the same fresh blocks recomputing would, so `blocks_needed`
        and `can_allocate` do not depend on the host tier. Raises ValueError if
        `seq_id` exists, KVCacheFullError (nothing changed) if the pool cannot supply
        the blocks.
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
        host = self.host.stretch(hashes, cached) if self.host is not None else 0
        if host:
            self.host.take(hashes[cached : cached + host])  # before evictions push them out
        tail = pool.allocate(fresh, now)
        committed = cached
        if host:
            ids = pool.commit_chain(tip, tail[:host], hashes, cached, now)
            del tail[:host]
            committed, tip, last_hash = cached + host, ids[-1], hashes[cached + host - 1]
        self._seqs[seq_id] = SeqBlocks(prefix.num_tokens, committed, tip, last_hash, tail)
        cached_tokens = self._cached_tokens(prefix, cached)
        reloaded = self._cached_tokens(prefix, committed) - cached_tokens
        self._hit_tokens += cached_tokens
        self._reloaded_tokens += reloaded
        self._miss_tokens += prefix.num_tokens - cached_tokens - reloaded
        return Allocation(cached_tokens, fresh, reloaded)

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
        if self.host is not None:
            self.host.discard(hashes[start:end])  # the GPU caches them again

    def free(self, seq_id: str, now: float) -> None:
        """Release the sequence's blocks; committed ones stay cached until evicted."""
        seq = self._seqs.pop(seq_id, None)
        if seq is None:
            raise KeyError(f"unknown sequence {seq_id!r}")
        if seq.tip is not None:
            self._pool.release((seq.tip,), now)
        self._pool.release(seq.tail, now)

    # -- host tier -------------------------------------------------------------------

    def offload(self, prefix: TokenChain, now: float) -> ChainOffload:
        """Evict the free end of `prefix`'s cached chain now (deepest first, up to a
        block in use or shared with another chain) and store it in the host tier, or
        drop it without one. What a swap-out does to a paused session."""
        self._check_block_size(prefix)
        evicted = self._pool.evict_tail(prefix.hashes, now)
        if self.host is None or not evicted:
            return ChainOffload(len(evicted), 0)
        result = self.host.offload(evicted)
        return ChainOffload(len(evicted), result.stored, result.pushed_out)

    def reload(self, prefix: TokenChain, now: float, max_blocks: int | None = None) -> int:
        """Bring the host-cached blocks of `prefix` (at most `max_blocks`, and no more
        than the pool can supply) back onto the GPU as free cached blocks, ahead of
        the next turn (a prefetch); returns how many. The caller charges the reload
        time. Allocating them may evict (and offload) other free blocks."""
        self._check_block_size(prefix)
        if self.host is None:
            return 0
        hashes = prefix.hashes
        cached = self._pool.cached_prefix_blocks(hashes)
        n = min(self.host.stretch(hashes, cached), self._room(hashes, cached),
                len(hashes) if max_blocks is None else max_blocks)
        if n <= 0:
            return 0
        self.host.take(hashes[cached : cached + n])
        return self._install(hashes, cached, n, now)

    def adopt(self, prefix: TokenChain, blocks: int, now: float) -> int:
        """Install the first `blocks` full blocks of `prefix` as free cached blocks: KV
        copied in from another worker (a session migrating here). Blocks cached here
        already are kept; returns how many were added (no more than the pool can
        supply). The caller charges the transfer time. Allocating them may evict (and
        offload) other free blocks."""
        self._check_block_size(prefix)
        hashes = prefix.hashes
        cached = self._pool.cached_prefix_blocks(hashes)
        n = min(min(blocks, len(hashes)) - cached, self._room(hashes, cached))
        if n <= 0:
            return 0
        if self.host is not None:  # tiers stay exclusive: the copy replaces host blocks
            self.host.take(hashes[cached : cached + min(n, self.host.stretch(hashes, cached))])
        return self._install(hashes, cached, n, now)

    def _room(self, hashes: list[int], cached: int) -> int:
        """Free blocks an install after the cached prefix of `hashes` may take (the
        prefix's own free blocks excluded: it must stay)."""
        pool = self._pool
        return pool.num_free - (pool.free_blocks_in_prefix(hashes, cached) if cached else 0)

    def _install(self, hashes: list[int], cached: int, n: int, now: float) -> int:
        """Commit `n` fresh blocks as hashes[cached : cached + n], after the cached
        prefix, and leave them free (cached). Returns n."""
        pool = self._pool
        tip = pool.block_of(hashes[cached - 1]) if cached else None
        if tip is not None:
            pool.acquire((tip,), now)  # keep the GPU prefix while allocating
        ids = pool.commit_chain(tip, pool.allocate(n, now), hashes, cached, now)
        pool.release((ids[-1],), now)
        return n

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

    def hold_within(
        self, holder_id: str, prefix: TokenChain, now: float, cap_blocks: int, trim: bool = True
    ) -> HoldResult:
        """`hold`, keeping the distinct held blocks (`num_held_blocks`) within
        `cap_blocks`: trimmed to the longest leading part that fits, or refused (see
        `HoldResult`). The holder's previous hold is dropped first."""
        self._check_block_size(prefix)
        return self._holds.hold_within(holder_id, prefix.hashes, now, cap_blocks, trim)

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
        """Raise KVIntegrityError unless the pool is consistent, every block's ref
        count equals the references from sequences (tip and tail) and holds (tip),
        and the host tier is exclusive of the GPU and prefix-closed across both."""
        self._pool.check_integrity()
        violations = self._holds.violations()
        if self.host is not None:
            violations += self.host.violations(lambda h: self._pool.block_of(h) is not None)
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
