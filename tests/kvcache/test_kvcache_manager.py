"""KVCacheManager: prefix reuse across turns and sessions, holds, capacity errors."""
from __future__ import annotations

import pytest

from agentrt.kvcache.errors import KVCacheFullError, KVIntegrityError
from agentrt.kvcache.manager import Allocation, KVStats, PrefixMatch
from agentrt.kvcache.prefix import TokenChain

from .builders import BS, chain, make_manager, run_turn


@pytest.fixture
def kv():
    manager = make_manager(16)
    yield manager
    manager.check_integrity()


# -- prefix reuse ----------------------------------------------------------------------


def test_turn_two_reuses_every_full_block_of_turn_one(kv):
    prompt1 = chain(("sys", 8), ("user", 6))  # 14 tokens
    alloc1, after1 = run_turn(kv, "t1", prompt1, ("reply", 5))  # 19 tokens: 4 full blocks
    assert alloc1 == Allocation(cached_tokens=0, blocks_allocated=4)

    prompt2 = chain(("tool", 7), base=after1)  # 26 tokens
    assert kv.match(prompt2) == PrefixMatch(blocks=4, tokens=16)
    alloc2 = kv.allocate("t2", prompt2, 1.0)
    assert alloc2 == Allocation(cached_tokens=16, blocks_allocated=3)
    assert (kv.seq_num_tokens("t2"), kv.seq_num_blocks("t2")) == (26, 7)
    assert kv.stats == KVStats(hit_tokens=16, miss_tokens=14 + 10, allocated_blocks=5 + 3,
                               evicted_blocks=0, deduped_blocks=0)
    kv.free("t2", 2.0)


def test_a_fully_cached_prompt_still_computes_its_last_token(kv):
    _, after = run_turn(kv, "t1", chain(("sys", 8)), ("reply", 4))  # 12 tokens, 3 blocks
    assert kv.match(after) == PrefixMatch(blocks=3, tokens=11)
    assert kv.allocate("t2", after, 1.0) == Allocation(cached_tokens=11, blocks_allocated=0)
    kv.free("t2", 1.0)


def test_sessions_share_a_system_prompt(kv):
    system = chain(("sys", 8))
    run_turn(kv, "a", chain(("user-a", 4), base=system), ("reply-a", 2))
    prompt_b = chain(("user-b", 4), base=system)
    assert kv.match(prompt_b).blocks == 2
    assert kv.allocate("b", prompt_b, 1.0).cached_tokens == 8
    kv.free("b", 1.0)


def test_concurrent_sequences_with_the_same_content_are_deduplicated(kv):
    prompt = chain(("sys", 8))
    kv.allocate("a", prompt, 0.0)
    kv.allocate("b", prompt, 0.0)  # nothing committed yet: no hit
    assert kv.num_used_blocks == 4
    kv.commit("a", prompt, 1.0)
    kv.commit("b", prompt, 1.0)
    assert kv.num_used_blocks == 2
    assert kv.stats.deduped_blocks == 2
    kv.free("a", 2.0)
    kv.free("b", 2.0)
    assert (kv.num_used_blocks, kv.num_cached_blocks) == (0, 2)


def test_commit_is_incremental_as_the_output_grows(kv):
    prompt = chain(("sys", 6))
    kv.allocate("s", prompt, 0.0)
    kv.commit("s", prompt, 0.0)  # 1 full block
    grown = prompt.copy()
    for step in range(3):
        kv.append("s", 2, float(step))
        grown.extend_tokens([step, step])
        kv.commit("s", grown, float(step))
    assert grown.num_tokens == 12
    assert kv.match(grown).blocks == 3
    kv.free("s", 5.0)


def test_commit_rejects_chains_that_do_not_fit_the_sequence(kv):
    kv.allocate("s", chain(("sys", 8)), 0.0)
    kv.commit("s", chain(("sys", 8)), 0.0)
    with pytest.raises(ValueError, match="append first"):
        kv.commit("s", chain(("sys", 12)), 0.0)
    with pytest.raises(ValueError, match="does not extend"):
        kv.commit("s", chain(("other", 8)), 0.0)
    with pytest.raises(ValueError, match="block size"):
        kv.commit("s", TokenChain(BS * 2), 0.0)
    kv.free("s", 0.0)


# -- growth and capacity ----------------------------------------------------------------


def test_append_allocates_only_when_crossing_a_block_boundary(kv):
    kv.allocate("s", chain(("sys", 5)), 0.0)  # 2 blocks, 3 slots left
    assert kv.seq_num_blocks("s") == 2
    kv.append("s", 3, 0.0)
    assert kv.seq_num_blocks("s") == 2
    kv.append("s", 1, 0.0)
    assert (kv.seq_num_tokens("s"), kv.seq_num_blocks("s")) == (9, 3)
    kv.free("s", 0.0)
    assert not kv.has_seq("s")


def test_a_full_cache_raises_with_the_numbers_and_changes_nothing(kv):
    kv.allocate("big", chain(("a", 56)), 0.0)  # 14 of 16 blocks
    prompt = chain(("b", 12))
    assert kv.blocks_needed(prompt) == 3 and not kv.can_allocate(prompt)
    with pytest.raises(KVCacheFullError, match="needs 3 blocks but only 2 are free") as err:
        kv.allocate("b", prompt, 0.0)
    assert (err.value.needed, err.value.free) == (3, 2)
    assert not kv.has_seq("b") and kv.num_free_blocks == 2
    assert kv.can_append("big", 8) and not kv.can_append("big", 9)
    with pytest.raises(KVCacheFullError):
        kv.append("big", 9, 0.0)
    assert kv.seq_num_tokens("big") == 56
    kv.free("big", 0.0)


def test_blocks_needed_counts_free_cached_prefix_blocks_it_would_take_back(kv):
    _, after = run_turn(kv, "t1", chain(("sys", 8)), ("reply", 4))  # 3 blocks, all free
    prompt = chain(("more", 4), base=after)
    assert kv.blocks_needed(prompt) == 1 + 3
    assert kv.blocks_needed(prompt, extra_tokens=5) == 3 + 3
    kv.hold("h", after, 1.0)  # now in use: reusing them is free of charge
    assert kv.blocks_needed(prompt) == 1
    kv.unhold("h", 2.0)


def test_sequence_ids_are_unique_and_checked(kv):
    kv.allocate("s", chain(("a", 4)), 0.0)
    with pytest.raises(ValueError, match="already allocated"):
        kv.allocate("s", chain(("a", 4)), 0.0)
    kv.free("s", 0.0)
    with pytest.raises(KeyError, match="unknown sequence"):
        kv.free("s", 0.0)


# -- holds ---------------------------------------------------------------------------


def test_a_hold_keeps_a_session_resident_under_pressure(kv):
    _, after = run_turn(kv, "t1", chain(("sys", 8), ("user", 4)), ("reply", 4))
    assert kv.hold("session", after, 1.0) == 4
    assert kv.num_free_blocks == 12
    kv.allocate("other", chain(("flood", 48)), 2.0)  # takes every free block
    assert kv.match(after).blocks == 4
    kv.free("other", 3.0)
    assert kv.unhold("session", 4.0) == 4
    kv.allocate("other", chain(("flood2", 64)), 5.0)  # now the session's blocks go
    assert kv.match(after).blocks == 0
    kv.free("other", 6.0)


def test_a_hold_covers_only_the_cached_prefix(kv):
    _, after = run_turn(kv, "t1", chain(("sys", 8)), ("reply", 2))  # 10 tokens, 2 full
    longer = chain(("not-yet", 8), base=after)
    assert kv.hold("s", longer, 1.0) == 2
    assert kv.hold("s", chain(("nothing", 8)), 1.0) == 0
    assert kv.held_blocks("s") == 0 and kv.num_held_blocks == 0
    assert kv.unhold("s", 2.0) == 0


def test_holds_count_distinct_blocks_and_replace_each_other(kv):
    system = chain(("sys", 8))
    _, a = run_turn(kv, "a", chain(("a", 8), base=system), ("ra", 4))  # 5 blocks
    _, b = run_turn(kv, "b", chain(("b", 4), base=system), ("rb", 4))  # 4 blocks
    kv.hold("a", a, 1.0)
    kv.hold("b", b, 1.0)
    assert (kv.held_blocks("a"), kv.held_blocks("b")) == (5, 4)
    assert kv.num_held_blocks == 5 + 4 - 2  # the system prompt is counted once
    kv.hold("a", system, 2.0)  # replace with a shorter prefix
    assert (kv.held_blocks("a"), kv.num_held_blocks) == (2, 4)
    kv.unhold("b", 3.0)
    assert kv.num_held_blocks == 2
    kv.unhold("a", 3.0)
    assert (kv.num_held_blocks, kv.num_used_blocks) == (0, 0)


def test_handing_a_prefix_from_a_hold_to_the_next_turn(kv):
    _, after1 = run_turn(kv, "t1", chain(("sys", 8)), ("reply", 4))
    kv.hold("s", after1, 1.0)
    prompt2 = chain(("tool", 4), base=after1)
    assert kv.allocate("t2", prompt2, 2.0).cached_tokens == 12
    kv.unhold("s", 2.0)
    assert kv.num_used_blocks == 4
    kv.free("t2", 3.0)


# -- integrity -----------------------------------------------------------------------


def test_check_integrity_catches_a_reference_nobody_owns():
    kv = make_manager(8)
    kv.allocate("s", chain(("a", 8)), 0.0)
    kv.pool.blocks[0].ref_count += 1
    with pytest.raises(KVIntegrityError, match="references from seqs"):
        kv.check_integrity()


def test_unknown_eviction_policy_is_rejected():
    with pytest.raises(ValueError, match=r"valid names: .*\blru\b"):
        make_manager(8, eviction="fifo")
