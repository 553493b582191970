"""Holds: named references that keep the cached prefix of a chain resident.

A hold keeps the leading cached blocks of a prompt from eviction while its owner is
away (a session waiting on a tool). Deadlines and caps are policy and live above; this
table only takes and drops references through the pool. One reference on the last
cached block keeps the whole prefix in use (see `block_pool`), so a hold is that block
plus its depth::

    holder "s1" ──▶ tip b2, 3 blocks    b0 ─ b1 ─┬─ b2
    holder "s2" ──▶ tip b3, 3 blocks              └─ b3      num_held_blocks = 4

`num_held_blocks` counts distinct blocks under any hold with the same trick the pool
uses for "in use": a block is covered while it is a tip or has a covered child, so
taking or dropping a hold walks only the blocks whose coverage changes.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from kvcache.block_pool import BlockPool


@dataclass(slots=True)
class _Hold:
    tip: int  # block id of the last held block; the pool reference is on it
    blocks: int  # chain depth of the tip


class HoldTable:
    """Holder id -> held prefix. All operations O(log n + blocks changing state)."""

    def __init__(self, pool: BlockPool) -> None:
        self._pool = pool
        self._holds: dict[str, _Hold] = {}
        # Coverage: holds per tip block, and covered children per covered block (a
        # block is covered, i.e. a key of _covered, while it is a tip or has one).
        self._tips: dict[int, int] = {}
        self._covered: dict[int, int] = {}

    def hold(self, holder_id: str, hashes: Sequence[int], now: float) -> int:
        """Keep the leading cached blocks of the chain `hashes` resident for
        `holder_id`, replacing its previous hold. Returns the number of blocks held
        (0, and no hold, when nothing of the chain is cached)."""
        pool = self._pool
        depth = pool.cached_prefix_blocks(hashes)
        old = self._holds.pop(holder_id, None)
        if depth:
            tip = pool.block_of(hashes[depth - 1])
            pool.acquire((tip,), now)
            self._cover_add(tip)
            self._holds[holder_id] = _Hold(tip, depth)
        if old is not None:
            self._cover_remove(old.tip)
            pool.release((old.tip,), now)
        return depth

    def unhold(self, holder_id: str, now: float) -> int:
        """Drop the holder's hold; returns the number of blocks it held (0 if none)."""
        old = self._holds.pop(holder_id, None)
        if old is None:
            return 0
        self._cover_remove(old.tip)
        self._pool.release((old.tip,), now)
        return old.blocks

    def held_blocks(self, holder_id: str) -> int:
        hold = self._holds.get(holder_id)
        return hold.blocks if hold is not None else 0

    @property
    def num_held_blocks(self) -> int:
        """Distinct blocks under at least one hold."""
        return len(self._covered)

    def __contains__(self, holder_id: object) -> bool:
        return holder_id in self._holds

    def tips(self) -> Iterator[int]:
        """The block id each hold references (one per hold)."""
        return (hold.tip for hold in self._holds.values())

    def violations(self) -> list[str]:
        """Broken invariants of the table (recomputes coverage by walking chains)."""
        tips: dict[int, int] = {}
        covered: dict[int, int] = {}
        for hold in self._holds.values():
            chain = self._pool.ancestry(hold.tip)
            if len(chain) != hold.blocks:
                return [f"hold on block {hold.tip}: depth {hold.blocks} != {len(chain)}"]
            tips[hold.tip] = tips.get(hold.tip, 0) + 1
            covered.update((bid, 0) for bid in chain)
        for bid in list(covered):
            parent = self._pool.parent_block(bid)
            if parent is not None:
                covered[parent] += 1
        if tips != self._tips or covered != self._covered:
            return ["hold table: coverage counts disagree with the holds"]
        return []

    def _cover_add(self, tip: int) -> None:
        tips, covered, blocks = self._tips, self._covered, self._pool.blocks
        tips[tip] = tips.get(tip, 0) + 1
        if tip in covered:
            return
        covered[tip] = 0
        bid = blocks[tip].parent_id
        while bid is not None:
            children = covered.get(bid)
            if children is not None:
                covered[bid] = children + 1
                return
            covered[bid] = 1
            bid = blocks[bid].parent_id

    def _cover_remove(self, tip: int) -> None:
        tips, covered, blocks = self._tips, self._covered, self._pool.blocks
        if tips[tip] > 1:
            tips[tip] -= 1
            return
        del tips[tip]
        bid = tip
        while not covered[bid] and bid not in tips:
            del covered[bid]
            parent = blocks[bid].parent_id
            if parent is None:
                return
            covered[parent] -= 1
            bid = parent
