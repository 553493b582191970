"""Holds: named references that keep the cached prefix of a chain resident.

A hold keeps the leading cached blocks of a prompt from eviction while its owner is
away (a session waiting on a tool). Deadlines and caps are policy and live above; this
table only takes and drops references through the pool. One reference on the last
cached block keeps the whole prefix in use (see `block_pool`), so a hold is that block
plus its depth::

    holder "s1" ──▶ tip b2, 3 blocks    b0 ─ b1 ─┬─ b2
    holder "s2" ──▶ tip b3, 3 blocks              └─ b3      num_held_blocks = 4

`num_held_blocks` counts distinct blocks under any hold the way the pool counts blocks
in use (see `kvcache.runs`): per run, the covered blocks are a leading stretch, one
past the deepest hold tip or covered run hanging from it. So taking or dropping a hold
costs O(runs whose coverage changes), however long the chain. Held blocks are in use,
hence never evicted, so the runs they lie in keep their identity and positions.

A cap bounds `num_held_blocks` (pinned memory): `hold_within` takes the whole cached
prefix if the distinct held blocks stay within the cap, else the longest leading part
that does ("trimmed"), else nothing ("refused"). What a hold would add is computed
without taking it (`added_blocks`), so a refused or trimmed hold leaves no trace in
the eviction order.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

from agentrt.kvcache.block_pool import BlockPool
from agentrt.kvcache.runs import Run


HoldStatus = Literal["held", "trimmed", "refused", "nothing_cached"]


@dataclass(frozen=True, slots=True)
class HoldResult:
    """What a capped hold did.

    status: "held" (the whole cached prefix), "trimmed" (a shorter leading part, to
    stay within the cap), "refused" (not even one block fits, or trimming was not
    allowed), "nothing_cached". After "refused" and "nothing_cached" the holder has no
    hold (its previous one is gone too)."""

    status: HoldStatus
    blocks: int  # blocks the hold references now (0: no hold)
    requested: int  # cached blocks of the prefix: what an uncapped hold would take


@dataclass(slots=True)
class _Hold:
    tip: int  # block id of the last held block; the pool reference is on it
    blocks: int  # chain depth of the tip


class HoldTable:
    """Holder id -> held prefix. All operations O(log n + runs changing coverage)."""

    def __init__(self, pool: BlockPool) -> None:
        self._pool = pool
        self._holds: dict[str, _Hold] = {}
        # Coverage per run: anchors (hold tips, and covered runs hanging there) per
        # position, and how many leading blocks are covered; runs with none are absent.
        self._anchors: dict[Run, dict[int, int]] = {}
        self._depth: dict[Run, int] = {}
        self._num_covered = 0

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

    def hold_within(
        self, holder_id: str, hashes: Sequence[int], now: float, cap: int, trim: bool = True
    ) -> HoldResult:
        """`hold`, keeping `num_held_blocks <= cap`: the whole cached prefix if it fits,
        else (with `trim`) its longest leading part that fits. The holder's previous
        hold is dropped first, so it does not count against the new one.
        O(log n x runs on the chain)."""
        self.unhold(holder_id, now)
        depth = self._pool.cached_prefix_blocks(hashes)
        if not depth:
            return HoldResult("nothing_cached", 0, 0)
        room = cap - self._num_covered
        if self.added_blocks(hashes, depth) <= room:
            return HoldResult("held", self.hold(holder_id, hashes, now), depth)
        if not trim:
            return HoldResult("refused", 0, depth)
        lo, hi = 0, depth - 1  # the largest fitting depth, by bisection (monotone)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self.added_blocks(hashes, mid) <= room:
                lo = mid
            else:
                hi = mid - 1
        if not lo:
            return HoldResult("refused", 0, depth)
        self.hold(holder_id, hashes[:lo], now)
        return HoldResult("trimmed", lo, depth)

    def added_blocks(self, hashes: Sequence[int], depth: int) -> int:
        """How many of the first `depth` blocks of the chain (all cached) no hold
        covers yet: what holding them would add to `num_held_blocks`. Read-only,
        O(runs on the chain): coverage is a leading stretch per run, closed under
        ancestors, so the walk up stops at the first run covered past the chain."""
        if not depth:
            return 0
        b = self._pool.blocks[self._pool.block_of(hashes[depth - 1])]
        run, pos, added = b.run, b.pos, 0
        while True:
            covered = self._depth.get(run, 0)
            if covered > pos:
                return added
            added += pos + 1 - covered
            if run.parent is None:
                return added
            pos, run = run.at, run.parent

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
        return self._num_covered

    def __contains__(self, holder_id: object) -> bool:
        return holder_id in self._holds

    def tips(self) -> Iterator[int]:
        """The block id each hold references (one per hold)."""
        return (hold.tip for hold in self._holds.values())

    def violations(self) -> list[str]:
        """Broken invariants of the table (recomputes coverage by walking chains)."""
        blocks = self._pool.blocks
        covered: set[int] = set()
        anchors: dict[Run, Counter[int]] = {}
        for hold in self._holds.values():
            chain = self._pool.ancestry(hold.tip)
            if len(chain) != hold.blocks:
                return [f"hold on block {hold.tip}: depth {hold.blocks} != {len(chain)}"]
            covered.update(chain)
            tip = blocks[hold.tip]
            anchors.setdefault(tip.run, Counter())[tip.pos] += 1
        depth: dict[Run, int] = {}
        for bid in covered:
            b = blocks[bid]
            depth[b.run] = max(depth.get(b.run, 0), b.pos + 1)
        for run in depth:
            if run.parent is not None:
                anchors.setdefault(run.parent, Counter())[run.at] += 1
        if (len(covered), depth) != (self._num_covered, self._depth) or \
                {run: dict(a) for run, a in anchors.items()} != self._anchors:
            return ["hold table: coverage counts disagree with the holds"]
        return []

    def _cover_add(self, tip: int) -> None:
        b = self._pool.blocks[tip]
        run, pos = b.run, b.pos
        while True:
            anchors = self._anchors.setdefault(run, {})
            anchors[pos] = anchors.get(pos, 0) + 1
            old = self._depth.get(run, 0)
            if pos < old:
                return
            self._depth[run] = pos + 1
            self._num_covered += pos + 1 - old
            if old or run.parent is None:
                return
            pos, run = run.at, run.parent

    def _cover_remove(self, tip: int) -> None:
        b = self._pool.blocks[tip]
        run, pos = b.run, b.pos
        while True:
            anchors = self._anchors[run]
            anchors[pos] -= 1
            if anchors[pos]:
                return
            del anchors[pos]
            old = self._depth[run]
            if pos + 1 < old:
                return
            new = max(anchors) + 1 if anchors else 0
            self._num_covered -= old - new
            if new:
                self._depth[run] = new
                return
            del self._depth[run], self._anchors[run]
            if run.parent is None:
                return
            pos, run = run.at, run.parent
