"""BlockPool: ref counts, content hashes, prefix closure and leaf-only eviction."""
from __future__ import annotations

import pytest

from agentrt.kvcache.block_pool import BlockPool
from agentrt.kvcache.errors import KVIntegrityError, NoFreeBlocksError
from agentrt.kvcache.eviction import LRUEviction, eviction_policy_names

from .builders import chain, fill_pool_chain, make_pool


def sizes(pool: BlockPool) -> tuple[int, int, int, int]:
    """(used, free, free cached, evictable now)."""
    return pool.num_used, pool.num_free, pool.num_cached_evictable, pool.num_evictable_now


def test_a_fresh_pool_hands_out_blocks_in_id_order():
    pool = make_pool(8)
    assert pool.allocate(3, now=0.0) == [0, 1, 2]
    assert sizes(pool) == (3, 5, 0, 0)
    assert pool.counters.allocations == 3
    pool.check_integrity()


def test_allocating_more_than_free_raises_with_the_numbers_and_changes_nothing():
    pool = make_pool(8)
    pool.allocate(5, 0.0)
    with pytest.raises(NoFreeBlocksError, match="cannot allocate 4 blocks: only 3 free") as err:
        pool.allocate(4, 0.0)
    assert (err.value.requested, err.value.free) == (4, 3)
    assert not pool.can_allocate(4) and pool.can_allocate(3)
    assert sizes(pool) == (5, 3, 0, 0)


def test_committed_chains_are_found_by_leading_hashes():
    pool = make_pool(8)
    a = chain(("sys", 12))
    fill_pool_chain(pool, a)
    assert pool.cached_prefix_blocks(a.hashes) == 3
    assert pool.cached_prefix_blocks(chain(("x", 8), base=a).hashes) == 3
    assert pool.cached_prefix_blocks(chain(("sys", 4)).hashes) == 1
    assert pool.cached_prefix_blocks(chain(("other", 12)).hashes) == 0
    pool.check_integrity()


def test_commit_of_known_content_shares_the_cached_block():
    pool = make_pool(8)
    a = chain(("sys", 8))
    first = fill_pool_chain(pool, a)
    second = fill_pool_chain(pool, a)
    assert second == first
    assert [pool.blocks[b].ref_count for b in first] == [2, 2]
    assert pool.counters.dedups == 2
    assert sizes(pool) == (2, 6, 0, 0)  # the duplicates went back to empty
    pool.check_integrity()


def test_commit_out_of_chain_order_raises():
    pool = make_pool(8)
    a = chain(("sys", 8))
    (bid,) = pool.allocate(1, 0.0)
    with pytest.raises(ValueError, match="commit a chain's blocks in order"):
        pool.commit(bid, a.hashes[1], a.hashes[0], 0.0)
    pool.commit(bid, a.hashes[0], None, 0.0)
    with pytest.raises(ValueError, match="uncommitted"):
        pool.commit(bid, a.hashes[1], a.hashes[0], 0.0)


def test_release_empties_uncommitted_blocks_and_keeps_committed_ones_cached():
    pool = make_pool(8)
    a = chain(("sys", 8))
    ids = fill_pool_chain(pool, a)
    (scratch,) = pool.allocate(1, 0.0)
    pool.release([scratch], 1.0)
    pool.release(ids, 1.0)
    assert sizes(pool) == (0, 8, 2, 1)  # b0 is not a leaf: only b1 is evictable now
    assert pool.cached_prefix_blocks(a.hashes) == 2
    with pytest.raises(ValueError, match="no reference"):
        pool.release([scratch], 2.0)
    pool.check_integrity()


def test_a_reference_on_the_last_block_keeps_the_whole_prefix_in_use():
    pool = make_pool(8)
    a = chain(("sys", 12))
    ids = fill_pool_chain(pool, a)
    pool.release(ids[:-1], 1.0)
    assert sizes(pool) == (3, 5, 0, 0)
    pool.release(ids[-1:], 2.0)
    assert sizes(pool) == (0, 8, 3, 1)
    pool.acquire(ids[-1:], 3.0)  # back in use, ancestors included
    assert sizes(pool) == (3, 5, 0, 0)
    assert pool.free_blocks_in_prefix(a.hashes, 3) == 0
    pool.check_integrity()


def test_acquire_of_an_empty_block_raises():
    pool = make_pool(8)
    with pytest.raises(ValueError, match="use allocate"):
        pool.acquire([0], 0.0)


def test_acquire_cached_takes_a_reference_on_each_block():
    pool = make_pool(8)
    a = chain(("sys", 8))
    pool.release(fill_pool_chain(pool, a), 1.0)
    ids = pool.acquire_cached(a.hashes, 2.0)
    assert [pool.blocks[b].ref_count for b in ids] == [1, 1]
    with pytest.raises(KeyError):
        pool.acquire_cached(chain(("nope", 4)).hashes, 2.0)
    pool.check_integrity()


def test_free_blocks_in_prefix_counts_what_reusing_it_takes_from_the_free_pool():
    pool = make_pool(8)
    a = chain(("sys", 12))
    ids = fill_pool_chain(pool, a)
    pool.release(ids, 1.0)
    assert pool.free_blocks_in_prefix(a.hashes, 3) == 3
    b = chain(("b", 4), base=chain(("sys", 4)))  # shares block 0 only
    fill_pool_chain(pool, b)  # holds a's block 0 through b's block 1
    assert pool.free_blocks_in_prefix(a.hashes, 3) == 2


@pytest.mark.parametrize("policy", eviction_policy_names())
def test_eviction_takes_only_leaves_and_keeps_prefixes_closed(policy):
    pool = make_pool(4, policy)
    a = chain(("a", 12))
    pool.release(fill_pool_chain(pool, a), 1.0)
    evicted = []
    pool.on_evict.append(evicted.append)
    pool.allocate(2, 2.0)  # 1 empty + 1 eviction
    assert evicted == [a.hashes[2]]
    assert pool.cached_prefix_blocks(a.hashes) == 2
    pool.allocate(2, 3.0)
    assert evicted == [a.hashes[2], a.hashes[1], a.hashes[0]]
    assert pool.counters.evictions == 3
    pool.check_integrity()


def test_lru_evicts_the_least_recently_released_chain_first():
    pool = make_pool(6)
    a, b, c = chain(("a", 8)), chain(("b", 4)), chain(("c", 4))
    a_ids = fill_pool_chain(pool, a)
    b_ids = fill_pool_chain(pool, b)
    c_ids = fill_pool_chain(pool, c)
    pool.release(b_ids, 1.0)
    pool.release(a_ids, 2.0)
    pool.release(c_ids, 3.0)
    evicted = []
    pool.on_evict.append(evicted.append)
    pool.allocate(6, 4.0)  # 2 empty + 4 evictions
    # b is oldest; then a's leaf, and a's first block right after it (its parent's
    # last use is no later than the child's), then c.
    assert evicted == [b.hashes[0], a.hashes[1], a.hashes[0], c.hashes[0]]
    pool.check_integrity()


def test_a_block_in_use_is_never_evicted():
    pool = make_pool(4)
    a = chain(("a", 12))
    ids = fill_pool_chain(pool, a)
    pool.release(ids[:-1], 1.0)  # the last block's reference keeps all three in use
    assert pool.num_free == 1
    pool.allocate(1, 2.0)
    with pytest.raises(NoFreeBlocksError):
        pool.allocate(1, 2.0)
    assert pool.cached_prefix_blocks(a.hashes) == 3


def test_check_integrity_reports_every_corruption():
    pool = make_pool(4)
    ids = fill_pool_chain(pool, chain(("a", 8)))
    pool.blocks[ids[1]].num_cached_children = 3
    pool.eviction.add(ids[0], 0.0)
    with pytest.raises(KVIntegrityError) as err:
        pool.check_integrity()
    assert len(err.value.violations) == 3
    assert "cached children 3 != 0" in err.value.violations[0]
    assert "in policy=True" in err.value.violations[1]


def test_pool_rejects_bad_sizes_and_used_policies():
    with pytest.raises(ValueError):
        BlockPool(0, 4)
    lru = LRUEviction()
    lru.add(1, 0.0)
    with pytest.raises(ValueError, match="start empty"):
        BlockPool(4, 4, lru)
