"""The block pool's invariants, as a list of violations (empty when consistent).

Kept apart from `block_pool` so that the hot-path file stays about transitions; this
one is read when something is wrong. O(num_blocks).
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from kvcache.eviction import EvictionPolicy

if TYPE_CHECKING:
    from kvcache.block_pool import Block


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
    out += _evictable_violations(blocks, eviction)
    return out


def _state_violations(
    blocks: Sequence[Block], empty: Sequence[int], num_used: int, num_free_cached: int
) -> list[str]:
    """Each block is exactly one of: in use, free cached, empty."""
    out = []
    empty_set = set(empty)
    if len(empty_set) != len(empty):
        out.append("empty list has duplicate ids")
    used = free_cached = 0
    for b in blocks:
        if b.ref_count < 0:
            out.append(f"block {b.block_id}: negative ref count {b.ref_count}")
        is_empty = not b.in_use and b.hash is None
        if is_empty != (b.block_id in empty_set):
            out.append(f"block {b.block_id}: empty={is_empty} but in empty list="
                       f"{b.block_id in empty_set}")
        if b.hash is None and (b.parent_hash is not None or b.parent_id is not None
                               or b.num_cached_children or b.num_used_children):
            out.append(f"block {b.block_id}: uncommitted but has parent/children")
        used += b.in_use
        free_cached += not b.in_use and b.hash is not None
    if used != num_used:
        out.append(f"num_used counter {num_used} != {used} blocks in use")
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
    """Children counts match; prefix closure; a block in use has its parent in use."""
    out = []
    children = Counter(b.parent_hash for b in blocks if b.parent_hash is not None)
    used_children = Counter(
        b.parent_hash for b in blocks if b.parent_hash is not None and b.in_use
    )
    for b in blocks:
        if b.hash is None:
            continue
        counts = (b.num_cached_children, b.num_used_children)
        expected = (children.get(b.hash, 0), used_children.get(b.hash, 0))
        if counts != expected:
            out.append(f"block {b.block_id}: (cached, used) children {counts} != {expected}")
        parent_id = None if b.parent_hash is None else cached.get(b.parent_hash)
        if parent_id != b.parent_id:
            out.append(f"block {b.block_id}: parent id {b.parent_id} but hash map says {parent_id}")
        if b.parent_hash is None:
            continue
        if parent_id is None:
            out.append(f"block {b.block_id}: parent {b.parent_hash} not cached (prefix closure)")
        elif b.in_use and not blocks[parent_id].in_use:
            out.append(f"block {b.block_id}: in use but its parent block {parent_id} is free")
    for parent_hash in children:
        if parent_hash not in cached:
            out.append(f"children registered under uncached hash {parent_hash}")
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
