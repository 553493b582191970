"""Runs: in use tracked per path of cached blocks, with exact free times for eviction."""
from __future__ import annotations

import pytest

from agentrt.kvcache import eviction
from agentrt.kvcache.block_pool import BlockPool
from agentrt.kvcache.eviction import LRUEviction, register_eviction_policy
from agentrt.kvcache.pool_integrity import referenced_subtrees

from .builders import BS, chain, fill_pool_chain, make_manager, make_pool
from .test_kvcache_properties import LONG_COUNTS, Driver, fuzz


class RecordingLRU(LRUEviction):
    """LRU that goes through add/pop for every exposed parent, and records each add."""

    exposed_parent_next = False

    def __init__(self) -> None:
        super().__init__()
        self.adds: list[tuple[int, float, bool]] = []

    def add(self, block_id: int, now: float, oldest: bool = False) -> None:
        self.adds.append((block_id, now, oldest))
        super().add(block_id, now, oldest)


def test_a_chain_is_one_run_and_branches_hang_new_runs_from_it():
    """The layout drawn in `kvcache.runs`."""
    pool = make_pool(16)
    a = fill_pool_chain(pool, chain(("s", 12), ("a", 12)))  # s0 s1 s2 a3 a4 a5
    pool.release(a[:-1], 1.0)  # a5 keeps its reference
    b = fill_pool_chain(pool, chain(("s", 8), ("b", 8)))  # shares s0 s1, then b0 b1
    pool.release(b, 2.0)
    c = fill_pool_chain(pool, chain(("s", 8), ("c", 12)))  # shares s0 s1, then c0 c1 c2
    pool.acquire(c[3:4], 3.0)
    pool.release(c[:3] + c[4:], 3.0)  # c1 keeps two references
    run_a, run_b, run_c = (pool.blocks[ids[-1]].run for ids in (a, b, c))
    assert b[:2] == c[:2] == a[:2]
    assert all(pool.blocks[bid].run is run_a for bid in a)
    assert (run_a.size, run_a.used, run_a.anchors) == (6, 6, {1: 1, 5: 1})
    assert (run_b.parent, run_b.at, run_b.size, run_b.used, run_b.anchors) == (
        run_a, 1, 2, 0, {})
    assert (run_c.parent, run_c.at, run_c.size, run_c.used, run_c.anchors) == (
        run_a, 1, 3, 2, {1: 2})
    assert pool.blocks[a[1]].num_used_children == 2  # s2, and run C
    assert pool.num_used == 6 + 2 and pool.num_cached_evictable == 2 + 1
    pool.check_integrity()


def test_releasing_a_long_chain_frees_it_in_one_step_and_acquiring_takes_it_back():
    pool = make_pool(600)
    long = chain(("sys", 40), ("session", 2000))  # 510 blocks
    ids = fill_pool_chain(pool, long)
    pool.release(ids[:-1], 1.0)
    run = pool.blocks[ids[0]].run
    assert run.size == 510 and all(pool.blocks[bid].run is run for bid in ids)
    pool.release(ids[-1:], 2.0)
    assert (run.used, pool.num_used, pool.num_free, pool.num_evictable_now) == (0, 0, 600, 1)
    assert pool.free_blocks_in_prefix(long.hashes, 510) == 510
    pool.acquire(ids[-1:], 3.0)
    assert (run.used, pool.num_used, pool.num_evictable_now) == (510, 510, 0)
    pool.check_integrity()


def test_an_exposed_parent_is_reported_with_the_time_it_went_free():
    policy = RecordingLRU()
    pool = BlockPool(6, BS, policy)
    x = fill_pool_chain(pool, chain(("x", 24)))  # x0 .. x5, one run
    pool.release(x[:-1], 1.0)
    pool.acquire(x[1:2], 1.0)
    pool.release(x[-1:], 2.0)  # x2 .. x5 go free at 2
    pool.release(x[1:2], 3.0)  # x0, x1 at 3
    assert pool.blocks[x[0]].run.freed == [(2, 2.0), (0, 3.0)]
    pool.allocate(6, 4.0)  # evicts x5 first, then each block it exposes
    assert policy.adds == [(x[5], 2.0, False)] + [
        (x[i], 2.0 if i >= 2 else 3.0, True) for i in (4, 3, 2, 1, 0)]
    pool.check_integrity()


def test_a_block_back_in_use_forgets_its_free_time():
    pool = make_pool(8)
    x = fill_pool_chain(pool, chain(("x", 24)))
    pool.release(x[:-1], 1.0)
    pool.acquire(x[1:2], 1.0)
    pool.acquire(x[3:4], 1.0)
    pool.release(x[-1:], 2.0)  # x4, x5 free at 2
    pool.release(x[3:4], 3.0)  # x2, x3 at 3
    run = pool.blocks[x[0]].run
    assert run.freed == [(4, 2.0), (2, 3.0)]
    pool.acquire(x[4:5], 4.0)  # x2 .. x4 back in use
    assert run.freed == [(5, 2.0)]
    pool.check_integrity()


def test_chasing_exposed_parents_evicts_as_the_add_and_pop_round_trip_does(monkeypatch):
    monkeypatch.setattr(eviction, "_POLICIES", dict(eviction._POLICIES))
    register_eviction_policy("lru-round-trip")(RecordingLRU)
    runs = {}
    for name in ("lru", "lru-round-trip"):
        d = fuzz(name, 7, 1500, 64, LONG_COUNTS)
        pool = d.kv.pool
        runs[name] = (d.kv.stats, list(pool.eviction._order),
                      [(b.ref_count, b.hash, b.parent_id) for b in pool.blocks])
    assert runs["lru"] == runs["lru-round-trip"]
    assert runs["lru"][0].evicted_blocks > 100


class FreeTimeDriver(Driver):
    """Checks every time the pool hands the policy against one recomputed from scratch:
    when each free cached block last went from in use to free."""

    def __init__(self, eviction: str, num_blocks: int) -> None:
        super().__init__(eviction, num_blocks)
        self.free_since: dict[int, float] = {}
        self.policy = self.kv.pool.eviction
        assert isinstance(self.policy, RecordingLRU)

    def check(self) -> None:
        super().check()
        for block_id, now, oldest in self.policy.adds:
            assert now == (self.free_since[block_id] if oldest else self.now)
        self.policy.adds.clear()
        pool = self.kv.pool
        in_use = referenced_subtrees(pool.blocks)
        free_since = {}
        for b in pool.blocks:
            if b.hash is not None and b.block_id not in in_use:
                free_since[b.block_id] = self.free_since.get(b.block_id, self.now)
        self.free_since = free_since


def test_free_times_match_a_recomputation_over_random_operations(monkeypatch):
    monkeypatch.setattr(eviction, "_POLICIES", dict(eviction._POLICIES))
    register_eviction_policy("lru-round-trip")(RecordingLRU)
    for seed in range(3):
        d = fuzz("lru-round-trip", seed, 1500, 64, LONG_COUNTS, FreeTimeDriver)
        assert d.kv.stats.evicted_blocks > 100


def test_commit_shares_a_cached_prefix_then_appends_the_rest_in_place_or_in_a_new_run():
    kv = make_manager(32)
    prompt = chain(("sys", 8), ("a", 12))  # 5 blocks
    longer, branch = chain(("more", 8), base=prompt), chain(("other", 8), base=prompt)
    for seq_id, content in [("a", prompt), ("b", longer), ("c", branch)]:
        kv.allocate(seq_id, content, 0.0)  # nothing committed yet: no hits
    for seq_id, content in [("a", prompt), ("b", longer), ("c", branch)]:
        kv.commit(seq_id, content, 1.0)
    pool = kv.pool
    a, b, c = (pool.blocks[pool.block_of(x.hashes[-1])] for x in (prompt, longer, branch))
    assert kv.stats.deduped_blocks == 5 + 5
    assert b.run is a.run and (a.pos, b.pos) == (4, 6)  # b went on where a ended
    assert (c.run.parent, c.run.at, c.run.size, c.pos) == (a.run, 4, 2, 1)
    assert (a.ref_count, b.ref_count, c.ref_count, kv.num_used_blocks) == (1, 1, 1, 9)
    for seq_id in "abc":
        kv.free(seq_id, 2.0)
    assert (kv.num_used_blocks, kv.num_cached_blocks) == (0, 9)
    kv.check_integrity()


@pytest.mark.parametrize("corrupt", ["used", "anchors", "size"])
def test_check_integrity_reports_run_counts_that_disagree_with_the_blocks(corrupt):
    pool = make_pool(8)
    ids = fill_pool_chain(pool, chain(("a", 12)))
    pool.release(ids[:-1], 1.0)
    run = pool.blocks[ids[0]].run
    if corrupt == "used":
        run.used = 2
    elif corrupt == "anchors":
        run.anchors[0] = 1
    else:
        run.size = 4
    with pytest.raises(AssertionError, match="run from block"):
        pool.check_integrity()
