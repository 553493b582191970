"""The block pool's invariants, as a list of violations (empty when consistent).

Kept apart from `block_pool` so that the hot-path file stays about transitions; this
one is read when something is wrong. It recomputes from scratch what the pool keeps
incrementally: which blocks are in use (walking up from every reference), children
counts, and each run's size, anchors and used prefix. O(num_blocks).
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from agentrt.kvcache.eviction import EvictionPolicy
from agentrt.kvcache.runs import Run

if TYPE_CHECKING:
    from agentrt.kvcache.block_pool import Block


def pool_violations(
    blocks: Sequence[Block],
    empty: Sequence[int],
    cached: Mapping[int, int],
    eviction: EvictionPolicy,
    num_used: int,
    num_free_cached: int,
) -> list[str]:
    """Every broken invariant of a pool's state, in block order."""
    out: list[str] = []
    out += _state_violations(blocks, empty, num_used, num_free_cached)
    out += _hash_map_violations(blocks, cached)
    out += _tree_violations(blocks, cached)
    out += _run_violations(blocks)
    out += _evictable_violations(blocks, eviction)
    return out


def referenced_subtrees(blocks: Sequence[Block]) -> set[int]:
    """Ids of the blocks in use by definition: referenced, or a cached descendant is."""
    used: set[int] = set()
    for b in blocks:
        bid: int | None = b.block_id if b.ref_count > 0 else None
        while bid is not None and bid not in used:
            used.add(bid)
            bid = blocks[bid].parent_id
    return used


def _state_violations(
    blocks: Sequence[Block], empty: Sequence[int], num_used: int, num_free_cached: int
) -> list[str]:
    """Each block is exactly one of: in use, free cached, empty."""
    out = []
    empty_set = set(empty)
    if len(empty_set) != len(empty):
        out.append("empty list has duplicate ids")
    in_use = referenced_subtrees(blocks)
    free_cached = 0
    for b in blocks:
        bid = b.block_id
        if b.ref_count < 0:
            out.append(f"block {bid}: negative ref count {b.ref_count}")
        if b.in_use != (bid in in_use):
            out.append(f"block {bid}: in_use={b.in_use} but its subtree "
                       f"{'holds' if bid in in_use else 'holds no'} reference")
        is_empty = bid not in in_use and b.hash is None
        if is_empty != (bid in empty_set):
            out.append(f"block {bid}: empty={is_empty} but in empty list={bid in empty_set}")
        if b.hash is None and (b.parent_hash is not None or b.parent_id is not None
                               or b.num_cached_children or b.run is not None):
            out.append(f"block {bid}: uncommitted but has parent/children/run")
        free_cached += bid not in in_use and b.hash is not None
    if len(in_use) != num_used:
        out.append(f"num_used counter {num_used} != {len(in_use)} blocks in use")
    if free_cached != num_free_cached:
        out.append(f"free cached counter {num_free_cached} != {free_cached} blocks")
    return out


def _hash_map_violations(blocks: Sequence[Block], cached: Mapping[int, int]) -> list[str]:
    out = []
    for h, bid in cached.items():
        if blocks[bid].hash != h:
            out.append(f"hash map: {h} -> block {bid}, whose hash is {blocks[bid].hash}")
    committed = sum(b.hash is not None for b in blocks)
    if committed != len(cached):
        out.append(f"{committed} committed blocks but {len(cached)} hash map entries")
    return out


def _tree_violations(blocks: Sequence[Block], cached: Mapping[int, int]) -> list[str]:
    """Children counts match; prefix closure."""
    out = []
    children = Counter(b.parent_hash for b in blocks if b.parent_hash is not None)
    for b in blocks:
        if b.hash is None:
            continue
        expected = children.get(b.hash, 0)
        if b.num_cached_children != expected:
            out.append(f"block {b.block_id}: cached children {b.num_cached_children} "
                       f"!= {expected}")
        parent_id = None if b.parent_hash is None else cached.get(b.parent_hash)
        if parent_id != b.parent_id:
            out.append(f"block {b.block_id}: parent id {b.parent_id} but hash map says {parent_id}")
        if b.parent_hash is not None and parent_id is None:
            out.append(f"block {b.block_id}: parent {b.parent_hash} not cached (prefix closure)")
    for parent_hash in children:
        if parent_hash not in cached:
            out.append(f"children registered under uncached hash {parent_hash}")
    return out


def _run_violations(blocks: Sequence[Block]) -> list[str]:
    """Runs are paths of the cached tree, and their counts match their blocks."""
    out = []
    heads: dict[Run, int] = {}  # run -> its first block
    sizes: Counter[Run] = Counter()  # run -> one past its deepest block
    anchors: dict[Run, Counter[int]] = {}  # run -> position -> refs + used runs there
    for b in blocks:
        if b.hash is None:
            continue
        run = b.run
        if run is None:
            out.append(f"block {b.block_id}: cached but in no run")
            continue
        parent = blocks[b.parent_id] if b.parent_id is not None else None
        if b.pos and (parent is None or parent.run is not run or parent.pos != b.pos - 1):
            out.append(f"block {b.block_id}: position {b.pos} does not follow its parent")
        if not b.pos:
            heads[run] = b.block_id
            if (run.parent, run.at) != ((parent.run, parent.pos) if parent else (None, -1)):
                out.append(f"block {b.block_id}: heads a run not hanging from its parent")
        sizes[run] = max(sizes[run], b.pos + 1)
        anchors.setdefault(run, Counter())[b.pos] += b.ref_count
    for run in anchors:
        if run.parent is not None and run.used:
            anchors.setdefault(run.parent, Counter())[run.at] += 1
    for run, counts in anchors.items():
        out += _run_count_violations(run, heads.get(run), sizes[run], +counts)
    return out


def _run_count_violations(
    run: Run, head: int | None, size: int, anchors: Counter[int]
) -> list[str]:
    """`run`'s size, anchors, used prefix and free marks, given what its blocks say."""
    out = []
    if run.size != size or run.anchors != dict(anchors):
        out.append(f"run from block {head}: size {run.size}, anchors {run.anchors} but "
                   f"its blocks say {size}, {dict(anchors)}")
    if run.used != (max(anchors) + 1 if anchors else 0):
        out.append(f"run from block {head}: used {run.used} but anchors {dict(anchors)}")
    # Free marks: strictly shallower going up the stack, the last one at `used`.
    starts = [start for start, _ in run.freed]
    if (run.used < run.size) != bool(starts) or starts != sorted(set(starts), reverse=True) \
            or (starts and (starts[-1] != run.used or starts[0] >= run.size)):
        out.append(f"run from block {head}: size {run.size}, used {run.used}, "
                   f"free marks {run.freed}")
    return out


def _evictable_violations(blocks: Sequence[Block], eviction: EvictionPolicy) -> list[str]:
    """The policy holds exactly the free cached leaves."""
    out = []
    leaves = 0
    for b in blocks:
        is_leaf = b.hash is not None and not b.in_use and b.num_cached_children == 0
        leaves += is_leaf
        if is_leaf != (b.block_id in eviction):
            out.append(f"block {b.block_id}: evictable leaf={is_leaf} but in policy="
                       f"{b.block_id in eviction}")
    if leaves != len(eviction):
        out.append(f"policy holds {len(eviction)} blocks, {leaves} are evictable leaves")
    return out
