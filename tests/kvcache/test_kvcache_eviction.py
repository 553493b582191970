"""Eviction policies and their registry."""
from __future__ import annotations

import pytest

from agentrt.kvcache import eviction
from agentrt.kvcache.eviction import (
    EvictionPolicy,
    LRUEviction,
    eviction_policy_names,
    make_eviction_policy,
    register_eviction_policy,
)


def drain(policy: EvictionPolicy) -> list[int]:
    out = []
    while (victim := policy.pop_victim()) is not None:
        out.append(victim)
    return out


def test_registry_builds_policies_by_name():
    assert "lru" in eviction_policy_names()
    assert isinstance(make_eviction_policy("lru"), LRUEviction)


def test_unknown_policy_names_the_valid_ones():
    with pytest.raises(ValueError, match=r"unknown eviction policy 'mru'.*lru"):
        make_eviction_policy("mru")


def test_registering_a_policy_returns_it_and_makes_it_constructible(monkeypatch):
    monkeypatch.setattr(eviction, "_POLICIES", dict(eviction._POLICIES))

    @register_eviction_policy("newest-first")
    class NewestFirst(LRUEviction):
        def pop_victim(self):
            return self._order.popitem(last=True)[0] if self._order else None

    assert isinstance(make_eviction_policy("newest-first"), NewestFirst)
    with pytest.raises(ValueError, match="already registered"):
        register_eviction_policy("newest-first")(NewestFirst)


def test_lru_evicts_in_the_order_blocks_became_evictable():
    lru = LRUEviction()
    for bid, t in [(3, 1.0), (1, 2.0), (2, 3.0)]:
        lru.add(bid, t)
    assert (len(lru), 1 in lru, 9 in lru) == (3, True, False)
    assert drain(lru) == [3, 1, 2]
    assert lru.pop_victim() is None


def test_lru_oldest_jumps_the_queue_and_touch_moves_to_the_back():
    lru = LRUEviction()
    lru.add(1, 1.0)
    lru.add(2, 2.0)
    lru.add(7, 0.5, oldest=True)
    lru.touch(1, 3.0)
    assert drain(lru) == [7, 2, 1]


def test_lru_remove_and_double_add():
    lru = LRUEviction()
    lru.add(1, 1.0)
    lru.add(2, 1.0)
    lru.remove(1)
    with pytest.raises(KeyError):
        lru.add(2, 2.0)
    with pytest.raises(KeyError):
        lru.remove(1)
    assert drain(lru) == [2]
