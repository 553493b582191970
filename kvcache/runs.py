"""Blocks and runs: the cached blocks as a forest of paths, so that "in use" is one
number per path instead of a flag per block.

A run is a path of cached blocks in which each block but the last has the next one as
a cached child. Committing a block after the last block of a run extends that run;
committing one after any other block (a branch) starts a new run hanging from it.
Runs never split or merge: eviction only shortens a run at its end (a leaf), and an
emptied run is dropped. So a block's position in its run never changes, and a chain
crosses one run per branch point it passes (a shared system prompt, then a session)::

    run A  s0 ─ s1 ─ s2 ─ a3 ─ a4 ─ a5          size 6, used 6, anchors {1: 1, 5: 1}
    (root)       │                              (a5 has a ref; run C hangs at 1)
                 ├─ run B (at 1)  b0 ─ b1       size 2, used 0, anchors {}
                 └─ run C (at 1)  c0 ─ c1 ─ c2  size 3, used 2, anchors {1: 2}
                                                (c1 has two refs; c2 is free)

A block is in use while its subtree holds a reference. Inside a run that subtree holds
the rest of the run, so the blocks in use are a leading stretch, `used` of them: one
past the deepest ANCHOR, where an anchor is a reference on a block of the run or a
used run hanging from it (`anchors` counts them per position). Taking or dropping a
reference moves `used` of its run, and of the run above only while a run turns used
or unused, so it costs O(runs that change), one or two in practice, however long the
chain. A block knows where it is (`block.run`, `block.pos`), and is in use iff
`block.pos < block.run.used`.

`freed` remembers when the free end of a run went free, for eviction policies told
the last use of a block exposed by evicting its child: a stack of (first position,
time), deepest first, one per stretch that went free at once::

    used 2, size 9, freed [(6, t1), (2, t2)]    positions 6..8 went free at t1,
                                                2..5 at t2 > t1
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass(slots=True, eq=False)
class Run:
    """A path of cached blocks; compared and hashed by identity."""

    parent: Run | None  # the run holding the block this one hangs from
    at: int  # that block's position in `parent` (-1 for a root run)
    size: int = 0
    used: int = 0  # leading blocks in use
    anchors: dict[int, int] = field(default_factory=dict)  # position -> refs + used runs
    freed: list[tuple[int, float]] = field(default_factory=list)


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
    num_cached_children: int = 0  # cached blocks chaining from this one (0 = leaf)
    run: Run | None = None  # the run holding it while it is cached
    pos: int = 0  # its position there

    @property
    def in_use(self) -> bool:
        run = self.run
        return self.pos < run.used if run is not None else self.ref_count > 0

    @property
    def num_used_children(self) -> int:
        """Cached children in use: the next block of its run, and the used runs
        hanging from it (its anchors that are not its own references)."""
        run = self.run
        if run is None:
            return 0
        return (self.pos + 1 < run.used) + run.anchors.get(self.pos, 0) - self.ref_count


def mark(run: Run, pos: int, count: int = 1) -> int:
    """Add `count` anchors at `pos` of `run`; return how many cached blocks came into
    use (in this run and the runs it hangs from)."""
    became = 0
    while True:
        anchors = run.anchors
        anchors[pos] = anchors.get(pos, 0) + count
        old = run.used
        if pos < old:
            return became
        run.used = pos + 1
        became += pos + 1 - old
        if run.freed:
            _trim_freed(run)
        if old or run.parent is None:
            return became  # a used run is an anchor of its parent already
        pos, run, count = run.at, run.parent, 1


def unmark(run: Run, pos: int, now: float) -> int:
    """Drop one anchor at `pos` of `run`; return how many cached blocks went free."""
    freed = 0
    while True:
        anchors = run.anchors
        left = anchors[pos] - 1
        if left:
            anchors[pos] = left
            return freed
        del anchors[pos]
        old = run.used
        if pos + 1 < old:
            return freed
        # Few positions hold anchors (tips and branch points), so max is cheap.
        new = max(anchors) + 1 if anchors else 0
        run.used = new
        freed += old - new
        run.freed.append((new, now))
        if new or run.parent is None:
            return freed
        pos, run = run.at, run.parent


def attach(parent: Block | None, b: Block) -> int:
    """Place `b` (referenced, being committed) after `parent` in the forest: at the end
    of the parent's run if the parent ends it, else as a new run (a root run without a
    parent). Returns how many cached blocks came into use (the parent, if free, and
    its free ancestors)."""
    if parent is None:
        b.run, b.pos = Run(None, -1, 1, 1, {0: b.ref_count}), 0
        return 0
    run, pos = parent.run, parent.pos
    if pos == run.size - 1:
        b.run, b.pos = run, run.size
        run.size += 1
        return mark(run, b.pos, b.ref_count) - 1  # b was in use already
    b.run, b.pos = Run(run, pos, 1, 1, {0: b.ref_count}), 0
    return mark(run, pos)


def append_in_place(
    blocks: Sequence[Block], prev: Block, block_ids: Sequence[int], hashes: Sequence[int]
) -> int:
    """Commit `block_ids` as `hashes` (none of them cached) after `prev`, a referenced
    block that ends a run in use, one after the other in that run. Each block's
    reference but the last's is dropped (it stays in use under the last); the caller
    releases `prev`'s and registers the hashes. Stops before a block that is not
    referenced and uncommitted; returns how many it appended. O(1) per block."""
    run, parent = prev.run, prev
    anchors, pos, first = run.anchors, prev.pos, prev.pos
    for bid, h in zip(block_ids, hashes):
        b = blocks[bid]
        refs = b.ref_count
        if refs <= 0 or b.hash is not None:
            break
        pos += 1
        b.run = run
        b.pos = pos
        b.hash = h
        b.parent_hash = parent.hash
        b.parent_id = parent.block_id
        parent.num_cached_children += 1
        b.ref_count = refs - 1
        if refs > 1:
            anchors[pos] = refs - 1
        parent = b
    if pos > first:
        parent.ref_count += 1
        anchors[pos] = parent.ref_count
        run.size = run.used = pos + 1
    return pos - first


def detach_last(b: Block) -> None:
    """Take evicted `b` (free, a leaf, so the last of its run) out of its run."""
    run = b.run
    run.size -= 1
    freed = run.freed
    while freed and freed[0][0] >= run.size:
        del freed[0]
    b.run = None


def freed_at(run: Run, pos: int) -> float:
    """When the free block at `pos` of `run` went free."""
    for start, when in run.freed:
        if start <= pos:
            return when
    raise AssertionError(f"no free time recorded for position {pos} (used {run.used})")


def _trim_freed(run: Run) -> None:
    """`used` grew: forget the free times of blocks back in use."""
    freed, used = run.freed, run.used
    if used >= run.size:
        freed.clear()
        return
    while freed and freed[-1][0] < used:
        if len(freed) > 1 and freed[-2][0] <= used:
            freed.pop()
        else:
            freed[-1] = (used, freed[-1][1])
            return
