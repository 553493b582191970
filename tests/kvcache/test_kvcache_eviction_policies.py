"""Workflow-aware eviction and the Belady oracle: exact victim orders on small scenarios.

Unbound policies (no pool) take a block id as its content hash, which keeps the
scenarios readable; the last tests of each run the policy inside a manager."""
from __future__ import annotations

import math

import pytest

from agentrt.kvcache.eviction import make_eviction_policy
from agentrt.kvcache.eviction_belady import BeladyEviction, FutureAccess
from agentrt.kvcache.eviction_workflow import StepTransitions, WorkflowAwareEviction
from agentrt.kvcache.manager import KVCacheManager

from .builders import BS, chain, run_turn
from .test_kvcache_eviction import drain


P = 0.9  # reuse odds told for every paused session unless a test says otherwise


def add_all(policy, block_ids, start: float = 0.0) -> None:
    for i, bid in enumerate(block_ids):
        policy.add(bid, start + i)


# -- workflow-aware ------------------------------------------------------------------


def scored_policy() -> WorkflowAwareEviction:
    """a waits on a 1 s tool, b on a 100 s tool; d shares block 6 with a; 5 is nobody's."""
    policy = WorkflowAwareEviction()
    policy.session_paused("a", [6, 1, 2], 0.0, p_reuse=P, gap_s=1.0, rebuild_cost_s=3.0)
    policy.session_paused("b", [3, 4], 0.0, p_reuse=P, gap_s=100.0, rebuild_cost_s=2.0)
    policy.session_paused("d", [6, 7], 0.0, p_reuse=P, gap_s=100.0)
    return policy


def test_workflow_aware_evicts_unknown_then_far_then_near_then_shared():
    policy = scored_policy()
    add_all(policy, [1, 2, 3, 4, 5, 6])
    assert policy.score(5) == 0.0 and policy.score(6) == math.inf
    assert policy.score(1) == pytest.approx(0.9 * 1.0 / 1.0)  # p x cost per block / gap
    assert policy.score(3) == pytest.approx(0.9 * 1.0 / 100.0)
    assert drain(policy) == [5, 3, 4, 1, 2, 6]


def test_a_resumed_session_is_kept_and_a_finished_one_goes_first():
    policy = scored_policy()
    add_all(policy, [1, 2, 3, 4, 5])
    policy.session_resumed("b", [3, 4], 1.0)
    policy.session_finished("a")
    assert drain(policy) == [1, 2, 5, 3, 4]  # a's blocks and 5 score 0: LRU among them


def test_learned_transitions_lower_the_reuse_of_sessions_that_rarely_continue():
    transitions = StepTransitions(prior=0.9)
    assert transitions.probability("coder", "submit", "turn") == 0.9
    for _ in range(9):
        transitions.record("coder", "submit", "end")
    assert transitions.probability("coder", "submit", "turn") == pytest.approx(0.09)
    policy = WorkflowAwareEviction()
    for session, block, tool in (("s", 1, "submit"), ("t", 2, "test")):
        policy.session_paused(session, [block], 0.0, gap_s=1.0,
                              p_reuse=transitions.probability("coder", tool, "turn"))
    add_all(policy, [2, 1])
    assert drain(policy) == [1, 2]


def test_reports_after_add_rekey_blocks_already_evictable():
    policy = WorkflowAwareEviction()
    add_all(policy, [1, 2])  # unknown yet: LRU
    policy.session_paused("s", [1], 5.0, p_reuse=P, gap_s=1.0)
    assert drain(policy) == [2, 1]


def test_without_reports_workflow_aware_is_lru():
    policy = make_eviction_policy("workflow_aware")
    add_all(policy, [4, 2, 9])
    policy.touch(4, 10.0)
    policy.remove(2)
    with pytest.raises(KeyError):
        policy.remove(2)
    assert drain(policy) == [9, 4]


def test_workflow_aware_in_a_manager_evicts_the_long_tool_session_first():
    policy = WorkflowAwareEviction()
    kv = KVCacheManager(8, BS, policy)
    _, a = run_turn(kv, "a0", chain(("a", 8)), ("oa", 0), 1.0)  # 2 blocks each
    _, b = run_turn(kv, "b0", chain(("b", 8)), ("ob", 0), 2.0)
    policy.session_paused("a", a.hashes, 2.0, p_reuse=P, gap_s=1.0)
    policy.session_paused("b", b.hashes, 2.0, p_reuse=P, gap_s=100.0)
    kv.allocate("x", chain(("x", 24)), 3.0)  # 6 blocks: 4 empty + 2 evicted
    assert (kv.match(a).blocks, kv.match(b).blocks) == (2, 0)  # LRU would evict a
    kv.free("x", 4.0)
    kv.check_integrity()


# -- Belady ----------------------------------------------------------------------------


def test_belady_evicts_the_farthest_next_use_first_never_used_before_all():
    policy = BeladyEviction([
        FutureAccess(5.0, "s2", [3]),
        FutureAccess(10.0, "s1", [1, 2]),
    ])
    add_all(policy, [1, 2, 3, 4])
    assert [policy.next_use(h) for h in (1, 3, 4)] == [10.0, 5.0, math.inf]
    assert drain(policy) == [4, 1, 2, 3]


def test_an_access_that_ran_moves_the_session_to_its_next_one():
    policy = BeladyEviction()
    policy.expect("s1", [1], at=4.0)
    policy.expect("s1", [1, 2], at=20.0)
    policy.expect("s2", [3], at=8.0)
    add_all(policy, [1, 2, 3])
    assert drain(policy) == [2, 3, 1]  # next uses 20, 8, 4
    add_all(policy, [1, 2, 3])
    policy.accessed("s1")  # s1's access at 4 ran: 1 and 2 are next used at 20
    assert drain(policy) == [1, 2, 3]


def test_belady_exact_order_on_a_three_session_trace():
    policy = BeladyEviction()
    policy.expect("a", [1, 2], at=3.0)
    policy.expect("b", [3, 4], at=9.0)
    policy.expect("c", [5], at=6.0)
    add_all(policy, [1, 2, 3, 4, 5, 6])
    assert drain(policy) == [6, 3, 4, 5, 1, 2]


def test_a_shared_prefix_is_next_used_by_its_earliest_session():
    policy = BeladyEviction()
    policy.expect("a", [1, 2], at=9.0)
    policy.expect("b", [1, 3], at=4.0)
    assert policy.next_use(1) == 4.0
    policy.accessed("b")
    assert policy.next_use(1) == 9.0


def test_expect_rejects_out_of_order_times_and_non_extensions():
    policy = BeladyEviction()
    policy.expect("a", [1, 2], at=5.0)
    with pytest.raises(ValueError, match="time order"):
        policy.expect("a", [1, 2, 3], at=4.0)
    with pytest.raises(ValueError, match="does not extend"):
        policy.expect("a", [1, 7], at=6.0)
    assert policy.accessed("a") is True
    assert policy.accessed("a") is False and policy.accessed("unknown") is False


def test_belady_in_a_manager_keeps_the_session_needed_first():
    policy = BeladyEviction()
    kv = KVCacheManager(8, BS, policy)
    _, a = run_turn(kv, "a0", chain(("a", 8)), ("oa", 0), 1.0)
    _, b = run_turn(kv, "b0", chain(("b", 8)), ("ob", 0), 2.0)
    policy.expect("a", a.hashes, at=10.0)  # a's next turn comes first
    policy.expect("b", b.hashes, at=50.0)
    kv.allocate("x", chain(("x", 24)), 3.0)
    assert (kv.match(a).blocks, kv.match(b).blocks) == (2, 0)
    kv.free("x", 4.0)
    kv.check_integrity()
