"""Random sequences of allocate, extend, pin, unpin, expire, offload, reload, evict and
free over a small cache with a host tier and a pin cap: integrity after every step.

The driver extends the one in test_kvcache_properties with a host tier, a `PinSet`
(deadlines, cap, soft weights, programs) and the tier operations, and checks after each
step: pool, holds and host tier integrity (`check_integrity`), the pin set against the
holds and the cap, pinned prefixes still on the GPU, and match/allocate/reload agreeing
on GPU and host tokens. Hypothesis explores and shrinks; a seeded fuzz adds volume.
"""
from __future__ import annotations

import random

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from agentrt.kvcache.errors import KVCacheFullError
from agentrt.kvcache.eviction import eviction_policy_names
from agentrt.kvcache.manager import KVCacheManager
from agentrt.kvcache.pins import PinSet
from agentrt.kvcache.prefix import TokenChain

from .builders import BS
from .test_kvcache_properties import COUNTS, KEYS, NUM_BLOCKS, Driver

HOST_BLOCKS = 4
RULES = ("latest", "weakest")


class TierDriver(Driver):
    def __init__(self, eviction: str = "lru", num_blocks: int = NUM_BLOCKS) -> None:
        super().__init__(eviction, num_blocks)
        self.kv = KVCacheManager(num_blocks, BS, eviction, host_blocks=HOST_BLOCKS)
        self.pins = PinSet(self.kv, cap_fraction=0.5)
        self.pinned: dict[str, TokenChain] = {}
        self.reloads = 0

    def _admit(self, prompt: TokenChain) -> None:
        seq_id, self.next_id = f"s{self.next_id}", self.next_id + 1
        match = self.kv.match(prompt)
        if self.kv.can_allocate(prompt):
            alloc = self.kv.allocate(seq_id, prompt, self.tick())
            assert (alloc.cached_tokens, alloc.reloaded_tokens) == (match.tokens, match.host_tokens)
            assert self.kv.match(prompt).blocks == match.blocks + match.host_blocks
            self.seqs[seq_id] = prompt
        else:
            with pytest.raises(KVCacheFullError):
                self.kv.allocate(seq_id, prompt, self.tick())
            assert self.kv.match(prompt) == match

    def pin(self, k: int, base: int, ttl: float, program: int, soft: bool, flags: int) -> None:
        prefix = self.library[base % len(self.library)]
        session = f"p{k}"
        weight = (lambda t, until=self.now + ttl: max(0.0, (until - t) / ttl)) if soft else None
        result = self.pins.pin(session, prefix, self.now + ttl, self.tick(),
                               program_id=f"g{program}", weight=weight,
                               exclusive=bool(flags & 1), trim=not flags & 2)
        for other in result.replaced:
            del self.pinned[other]
        self.pinned.pop(session, None)
        assert result.blocks <= result.requested == self.kv.match(prefix).blocks
        if result.pinned:
            self.pinned[session] = prefix

    def unpin(self, k: int) -> None:
        released = self.pins.unpin(f"p{k}", self.tick())
        assert (released is not None) == (self.pinned.pop(f"p{k}", None) is not None)

    def expire(self, dt: float, spare: int) -> None:
        self.now += dt
        waiting = {f"p{spare}"}
        for released in self.pins.expire(self.now, waiting):
            assert released.deadline <= self.now and released.session_id not in waiting
            del self.pinned[released.session_id]
        assert all(self.pins.get(s).until > self.now or s in waiting for s in self.pinned)

    def release_program(self, program: int) -> None:
        for released in self.pins.release_program(f"g{program}", self.tick()):
            del self.pinned[released.session_id]

    def relieve(self, rule: int) -> None:
        session = self.pins.pick(RULES[rule % 2], self.now)
        if session is not None:
            self.pins.unpin(session, self.tick(), "pressure")
            del self.pinned[session]

    def offload(self, base: int) -> None:
        prefix = self.library[base % len(self.library)]
        result = self.kv.offload(prefix, self.tick())
        assert result.stored == result.evicted  # the tier always takes them

    def reload(self, base: int, limit: int) -> None:
        prefix = self.library[base % len(self.library)]
        before = self.kv.match(prefix)
        n = self.kv.reload(prefix, self.tick(), limit or None)
        after = self.kv.match(prefix)
        self.reloads += n
        assert n <= before.host_blocks and after.blocks == before.blocks + n

    def check(self) -> None:
        super().check()
        kv = self.kv
        assert self.pins.violations() == []
        assert sorted(self.pinned) == list(self.pins)
        for session, prefix in self.pinned.items():
            assert kv.match(prefix).blocks >= self.pins.get(session).blocks, "pinned block lost"
        assert len(kv.host) <= HOST_BLOCKS


class TierMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.d = TierDriver()

    @rule(base=st.integers(0, 99), k=st.integers(0, KEYS), count=st.integers(0, 14))
    def allocate(self, base, k, count):
        self.d.allocate(base, k, count)

    @rule(i=st.integers(0, 99), k=st.integers(0, KEYS), count=st.integers(0, 9))
    def extend(self, i, k, count):
        self.d.append(i, k, count)

    @rule(i=st.integers(0, 99))
    def commit(self, i):
        self.d.commit(i)

    @rule(i=st.integers(0, 99))
    def free(self, i):
        self.d.free(i)

    @rule(k=st.integers(0, 3), base=st.integers(0, 99), ttl=st.sampled_from([0.5, 2.0, 9.0]),
          program=st.integers(0, 1), soft=st.booleans(), flags=st.integers(0, 3))
    def pin(self, k, base, ttl, program, soft, flags):
        self.d.pin(k, base, ttl, program, soft, flags)

    @rule(k=st.integers(0, 3))
    def unpin(self, k):
        self.d.unpin(k)

    @rule(dt=st.sampled_from([0.0, 1.0, 3.0]), spare=st.integers(0, 3))
    def expire(self, dt, spare):
        self.d.expire(dt, spare)

    @rule(base=st.integers(0, 99))
    def offload(self, base):
        self.d.offload(base)

    @rule(base=st.integers(0, 99), limit=st.integers(0, 3))
    def reload(self, base, limit):
        self.d.reload(base, limit)

    @rule(k=st.integers(0, 5))
    def evict(self, k):
        self.d.pressure(k)

    @rule(rule_=st.integers(0, 1), program=st.integers(0, 1), end=st.booleans())
    def release(self, rule_, program, end):
        if end:
            self.d.release_program(program)
        else:
            self.d.relieve(rule_)

    @invariant()
    def consistent(self):
        self.d.check()


TestTierMachine = TierMachine.TestCase
TestTierMachine.settings = settings(max_examples=500, stateful_step_count=25, deadline=None)


def fuzz(eviction: str, seed: int, steps: int) -> TierDriver:
    """One random sequence of `steps` operations from a seeded generator."""
    rng = random.Random(seed)
    d = TierDriver(eviction)
    r = rng.randrange
    ops = [
        lambda: d.allocate(r(99), r(KEYS), rng.choice(COUNTS)),
        lambda: d.fork(r(99)),
        lambda: d.append(r(99), r(KEYS), rng.choice(COUNTS)),
        lambda: d.commit(r(99)),
        lambda: d.commit(r(99)),
        lambda: d.free(r(99)),
        lambda: d.free(r(99)),
        lambda: d.pin(r(4), r(99), rng.choice((0.5, 2.0, 9.0)), r(2), bool(r(2)), r(4)),
        lambda: d.unpin(r(4)),
        lambda: d.expire(rng.choice((0.0, 1.0, 3.0)), r(4)),
        lambda: d.offload(r(99)),
        lambda: d.reload(r(99), r(4)),
        lambda: d.reload(r(99), r(4)),
        lambda: d.pressure(r(5)),
        lambda: d.pressure(r(5)),
        lambda: d.relieve(r(2)),
        lambda: d.release_program(r(2)),
    ]
    for _ in range(steps):
        rng.choice(ops)()
        d.check()
    return d


SEQUENCES = {"lru": 1500}  # per policy; 500 for the others: 2,500 sequences in all


@pytest.mark.parametrize("eviction", eviction_policy_names())
def test_thousands_of_seeded_sequences_keep_integrity(eviction):
    runs = [fuzz(eviction, seed, steps=40) for seed in range(SEQUENCES.get(eviction, 500))]
    stats = [d.kv.stats for d in runs]
    # The sequences exercised the tier and the pins, not just the plain cache.
    assert sum(s.offloaded_blocks for s in stats) > 200
    assert sum(s.reloaded_tokens for s in stats) > 100 and sum(d.reloads for d in runs) > 50
    assert sum(d.kv.host.pushed_out_total for d in runs) > 0
    assert sum(s.hit_tokens for s in stats) > 0
