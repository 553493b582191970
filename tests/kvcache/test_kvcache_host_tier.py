"""The host tier: offload instead of drop, reload on the next turn, closure across tiers."""
from __future__ import annotations

import pytest

from agentrt.kvcache.host_tier import HostTier, OffloadResult
from agentrt.kvcache.manager import Allocation, ChainOffload, KVCacheManager, PrefixMatch

from .builders import BS, chain, run_turn


def make_tiered(num_blocks: int = 8, host_blocks: int = 8) -> KVCacheManager:
    return KVCacheManager(num_blocks, BS, host_blocks=host_blocks)


@pytest.fixture
def kv():
    manager = make_tiered()
    yield manager
    manager.check_integrity()


def flood(kv: KVCacheManager, name: str, now: float) -> None:
    """Take every free block for a moment: evicts (offloads) whatever is evictable."""
    c = chain((name, kv.num_free_blocks * BS))
    kv.allocate(name, c, now)
    kv.free(name, now)


# -- the tier alone ----------------------------------------------------------------------


def test_the_tier_is_lru_by_offload_order_and_pops_leaves():
    tier = HostTier(3)
    # A chain a0 <- a1 <- a2 evicted leaf first, then b0.
    assert tier.offload([(12, 11), (11, 10), (10, None)]) == OffloadResult(3, 0)
    assert tier.offload([(20, None)]) == OffloadResult(1, 1)  # pushes out 12, the leaf
    assert (12 in tier, 11 in tier, 20 in tier, len(tier)) == (False, True, True, 3)
    assert tier.violations(lambda h: False) == []


def test_stretch_is_the_host_run_after_the_gpu_prefix():
    tier = HostTier(8)
    tier.offload([(3, 2), (2, 1)])
    hashes = [1, 2, 3, 4]
    assert tier.stretch(hashes, 1) == 2  # 1 on the GPU, then 2 and 3 here
    assert tier.stretch(hashes, 3) == 0  # 1..3 on the GPU, 4 nowhere
    assert tier.stretch([5, 6], 0) == 0


def test_take_and_discard_remove_blocks_and_take_checks_first():
    tier = HostTier(8)
    tier.offload([(3, 2), (2, 1)])
    with pytest.raises(KeyError):
        tier.take([2, 9])
    assert len(tier) == 2
    tier.take([2])
    assert tier.discard([3, 7]) == 1
    assert len(tier) == 0


def test_violations_name_exclusivity_and_closure():
    tier = HostTier(8)
    tier.offload([(3, 2)])
    assert any("closure" in v for v in tier.violations(lambda h: False))
    assert any("also cached" in v for v in tier.violations(lambda h: h in (2, 3)))
    assert tier.violations(lambda h: h == 2) == []


def test_capacity_must_be_positive():
    with pytest.raises(ValueError, match="capacity_blocks"):
        HostTier(0)


# -- the manager with a tier ---------------------------------------------------------------


def test_evicted_blocks_are_offloaded_and_reported_by_match(kv):
    _, after = run_turn(kv, "t1", chain(("sys", 8), ("user", 4)), ("reply", 4))  # 4 blocks
    flood(kv, "flood", 1.0)  # 8 blocks: evicts all four
    assert kv.match(after) == PrefixMatch(blocks=0, tokens=0, host_blocks=4, host_tokens=15)
    assert kv.stats.offloaded_blocks == 4


def test_allocate_reloads_host_blocks_instead_of_recomputing(kv):
    _, after = run_turn(kv, "t1", chain(("sys", 8), ("user", 4)), ("reply", 4))
    flood(kv, "flood", 1.0)
    prompt = chain(("tool", 6), base=after)  # 22 tokens: 5 full blocks + 2
    alloc = kv.allocate("t2", prompt, 2.0)
    assert alloc == Allocation(cached_tokens=0, blocks_allocated=6, reloaded_tokens=16)
    assert kv.match(after).blocks == 4  # reloaded blocks are committed again
    assert kv.stats.reloaded_tokens == 16
    assert kv.stats.reuse_rate == pytest.approx(16 / (12 + 32 + 22))  # prompts: 12, 32, 22
    kv.free("t2", 3.0)


def test_gpu_then_host_prefix_reloads_only_the_host_part(kv):
    system = chain(("sys", 8))
    run_turn(kv, "a", system, ("reply-a", 0))  # 2 blocks of system prompt
    _, after = run_turn(kv, "b", chain(("user-b", 8), base=system), ("reply-b", 0))
    kv.hold("keep-system", system, 1.0)
    flood(kv, "flood", 2.0)  # evicts user-b's 2 blocks, keeps the held system prompt
    assert kv.match(after) == PrefixMatch(2, 8, host_blocks=2, host_tokens=7)
    alloc = kv.allocate("b2", after, 3.0)
    assert (alloc.cached_tokens, alloc.reloaded_tokens) == (8, 7)
    kv.free("b2", 4.0)
    kv.unhold("keep-system", 4.0)


def test_offload_moves_a_chains_free_end_to_host_now(kv):
    _, after = run_turn(kv, "t1", chain(("sys", 8), ("user", 4)), ("reply", 4))
    free_before = kv.num_free_blocks
    assert kv.offload(after, 1.0) == ChainOffload(evicted=4, stored=4)
    assert kv.num_free_blocks == free_before and kv.num_cached_blocks == 0
    assert kv.match(after).host_blocks == 4


def test_offload_stops_at_blocks_in_use(kv):
    system = chain(("sys", 8))
    _, after = run_turn(kv, "t1", chain(("user", 8), base=system), ("reply", 0))
    kv.hold("h", system, 1.0)
    assert kv.offload(after, 1.0).evicted == 2  # the user blocks, not the held system
    kv.unhold("h", 2.0)


def test_reload_prefetches_host_blocks_as_free_cached_blocks(kv):
    _, after = run_turn(kv, "t1", chain(("sys", 8), ("user", 4)), ("reply", 4))
    kv.offload(after, 1.0)
    assert kv.reload(after, 2.0, max_blocks=3) == 3
    assert kv.match(after) == PrefixMatch(3, 12, host_blocks=1, host_tokens=3)
    assert kv.reload(after, 3.0) == 1
    assert kv.num_cached_blocks == 4 and len(kv.host) == 0


def test_recommitting_content_drops_its_host_copy(kv):
    prompt = chain(("sys", 8))
    run_turn(kv, "a", prompt, ("r", 0))
    kv.offload(prompt, 1.0)
    kv.allocate("b", chain(("sys", 8), ("x", 1)), 2.0)  # reloads both blocks
    assert len(kv.host) == 0
    kv.free("b", 3.0)


def test_without_a_tier_results_are_unchanged():
    kv = KVCacheManager(8, BS)
    _, after = run_turn(kv, "t1", chain(("sys", 8)), ("reply", 4))
    flood(kv, "flood", 1.0)
    assert kv.match(after) == PrefixMatch(0, 0)
    assert kv.offload(after, 2.0) == ChainOffload(0, 0)
    assert kv.reload(after, 2.0) == 0 and kv.host is None
    kv.check_integrity()


# -- adopting a peer's blocks (a session migrating here) -----------------------------------


def test_adopt_installs_a_peers_blocks_as_free_cached_blocks():
    kv = KVCacheManager(8, BS)
    prompt = chain(("sys", 8), ("user", 8))
    assert kv.adopt(prompt, 3, 1.0) == 3
    assert kv.match(prompt) == PrefixMatch(3, 12) and kv.num_used_blocks == 0
    assert kv.adopt(prompt, 4, 2.0) == 1  # what is cached already stays
    assert kv.adopt(prompt, 9, 3.0) == 0  # never more than the prefix's full blocks
    kv.check_integrity()


def test_adopt_takes_no_more_than_the_free_blocks():
    kv = KVCacheManager(8, BS)
    kv.allocate("busy", chain(("other", 6 * BS)), 1.0)
    assert kv.adopt(chain(("sys", 4 * BS)), 4, 2.0) == 2
    kv.check_integrity()


def test_adopt_replaces_host_copies_so_the_tiers_stay_exclusive(kv):
    _, after = run_turn(kv, "t1", chain(("sys", 8), ("user", 4)), ("reply", 4))
    kv.offload(after, 1.0)
    assert len(kv.host) == 4
    assert kv.adopt(after, 2, 2.0) == 2
    assert kv.match(after) == PrefixMatch(2, 8, host_blocks=2, host_tokens=7)
    assert len(kv.host) == 2
    flood(kv, "flood", 3.0)  # evicting and offloading again keeps LRU order intact
