"""Random operation sequences over a small cache: integrity holds after every step.

One driver applies operations and checks what must be true after each (integrity,
conservation of blocks, holds keep their prefixes, committed chains are matchable).
Hypothesis explores and shrinks operation sequences; a seeded fuzz adds volume.
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
from agentrt.kvcache.prefix import TokenChain

from .builders import BS, key

NUM_BLOCKS = 12
KEYS = 3  # few distinct contents, so prompts share prefixes and commits deduplicate


class Driver:
    """Applies cache operations, mirroring each sequence's content as a TokenChain."""

    def __init__(self, eviction: str = "lru", num_blocks: int = NUM_BLOCKS) -> None:
        self.kv = KVCacheManager(num_blocks, BS, eviction)
        self.now = 0.0
        self.seqs: dict[str, TokenChain] = {}
        self.library: list[TokenChain] = [TokenChain(BS)]  # chains seen committed
        self.holds: dict[str, tuple[TokenChain, int]] = {}
        self.next_id = 0

    def tick(self) -> float:
        self.now += 1.0
        return self.now

    def pick_seq(self, i: int) -> str | None:
        return sorted(self.seqs)[i % len(self.seqs)] if self.seqs else None

    def allocate(self, base: int, k: int, count: int) -> None:
        prompt = self.library[base % len(self.library)].copy()
        prompt.extend_synthetic(key(k), count)
        self._admit(prompt)

    def fork(self, i: int) -> None:
        """A new sequence with an existing one's content, committed or not (a parallel
        sample): when both commit, the second deduplicates onto the first."""
        seq_id = self.pick_seq(i)
        if seq_id is not None:
            self._admit(self.seqs[seq_id].copy())

    def _admit(self, prompt: TokenChain) -> None:
        seq_id, self.next_id = f"s{self.next_id}", self.next_id + 1
        expected = self.kv.match(prompt).tokens
        if self.kv.can_allocate(prompt):
            assert self.kv.allocate(seq_id, prompt, self.tick()).cached_tokens == expected
            self.seqs[seq_id] = prompt
        else:
            free = self.kv.num_free_blocks
            with pytest.raises(KVCacheFullError):
                self.kv.allocate(seq_id, prompt, self.tick())
            assert self.kv.num_free_blocks == free and not self.kv.has_seq(seq_id)

    def append(self, i: int, k: int, count: int) -> None:
        seq_id = self.pick_seq(i)
        if seq_id is None:
            return
        if self.kv.can_append(seq_id, count):
            self.kv.append(seq_id, count, self.tick())
            self.seqs[seq_id].extend_synthetic(key(k), count)
        else:
            with pytest.raises(KVCacheFullError):
                self.kv.append(seq_id, count, self.tick())
        assert self.kv.seq_num_tokens(seq_id) == self.seqs[seq_id].num_tokens

    def commit(self, i: int) -> None:
        seq_id = self.pick_seq(i)
        if seq_id is None:
            return
        content = self.seqs[seq_id]
        self.kv.commit(seq_id, content, self.tick())
        assert self.kv.match(content).blocks == content.num_full_blocks
        self.library.append(content.copy())

    def free(self, i: int) -> None:
        seq_id = self.pick_seq(i)
        if seq_id is not None:
            self.kv.free(seq_id, self.tick())
            del self.seqs[seq_id]

    def hold(self, holder: int, base: int) -> None:
        prefix = self.library[base % len(self.library)]
        expected = self.kv.match(prefix).blocks
        held = self.kv.hold(f"h{holder}", prefix, self.tick())
        assert held == expected == self.kv.held_blocks(f"h{holder}")
        self.holds.pop(f"h{holder}", None)
        if held:
            self.holds[f"h{holder}"] = (prefix, held)

    def unhold(self, holder: int) -> None:
        entry = self.holds.pop(f"h{holder}", None)
        assert self.kv.unhold(f"h{holder}", self.tick()) == (entry[1] if entry else 0)

    def pressure(self, k: int) -> None:
        """Take every free block for a moment, evicting whatever is evictable."""
        tokens = self.kv.num_free_blocks * BS
        if tokens:
            flood = TokenChain(BS)
            flood.extend_synthetic(key(f"flood-{k}"), tokens)
            self.kv.allocate("flood", flood, self.tick())
            assert self.kv.num_free_blocks == 0
            self.kv.free("flood", self.tick())

    def check(self) -> None:
        kv = self.kv
        kv.check_integrity()
        assert kv.num_used_blocks + kv.num_free_blocks == kv.capacity_blocks
        assert kv.num_cached_blocks <= kv.num_free_blocks
        for prefix, held in self.holds.values():
            assert kv.match(prefix).blocks >= held, "a held block was evicted"


class CacheMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.d = Driver()

    @rule(base=st.integers(0, 99), k=st.integers(0, KEYS), count=st.integers(0, 14))
    def allocate(self, base, k, count):
        self.d.allocate(base, k, count)

    @rule(i=st.integers(0, 99))
    def fork(self, i):
        self.d.fork(i)

    @rule(i=st.integers(0, 99), k=st.integers(0, KEYS), count=st.integers(0, 9))
    def append(self, i, k, count):
        self.d.append(i, k, count)

    @rule(i=st.integers(0, 99))
    def commit(self, i):
        self.d.commit(i)

    @rule(i=st.integers(0, 99))
    def free(self, i):
        self.d.free(i)

    @rule(holder=st.integers(0, 2), base=st.integers(0, 99))
    def hold(self, holder, base):
        self.d.hold(holder, base)

    @rule(holder=st.integers(0, 2))
    def unhold(self, holder):
        self.d.unhold(holder)

    @rule(k=st.integers(0, 5))
    def pressure(self, k):
        self.d.pressure(k)

    @invariant()
    def consistent(self):
        self.d.check()


TestCacheMachine = CacheMachine.TestCase
TestCacheMachine.settings = settings(max_examples=300, stateful_step_count=50, deadline=None)


COUNTS = (0, 1, 3, 4, 5, 8, 12)  # tokens per allocate or append: up to 3 blocks
LONG_COUNTS = (0, 1, 5, 12, 17, 24, 40)  # up to 10 blocks: long runs, many branches


def fuzz(
    eviction: str, seed: int, steps: int, num_blocks: int = NUM_BLOCKS,
    counts: tuple[int, ...] = COUNTS, driver: type[Driver] = Driver,
) -> Driver:
    """`steps` random operations from a seeded generator, checking after each."""
    rng = random.Random(seed)
    d = driver(eviction, num_blocks)
    ops = [
        lambda: d.allocate(rng.randrange(99), rng.randrange(KEYS), rng.choice(counts)),
        lambda: d.fork(rng.randrange(99)),
        lambda: d.append(rng.randrange(99), rng.randrange(KEYS), rng.choice(counts)),
        lambda: d.commit(rng.randrange(99)),
        lambda: d.commit(rng.randrange(99)),
        lambda: d.free(rng.randrange(99)),
        lambda: d.free(rng.randrange(99)),
        lambda: d.hold(rng.randrange(3), rng.randrange(99)),
        lambda: d.unhold(rng.randrange(3)),
        lambda: d.pressure(rng.randrange(5)),
    ]
    for _ in range(steps):
        rng.choice(ops)()
        d.check()
    return d


@pytest.mark.parametrize("eviction", eviction_policy_names())
def test_seeded_fuzz_keeps_integrity(eviction):
    runs = [fuzz(eviction, seed, steps=2000).kv.stats for seed in range(8)]
    # The runs exercised what they are meant to: reuse, deduplication, eviction.
    assert all(s.hit_tokens > 0 and s.evicted_blocks > 0 for s in runs)
    assert sum(s.deduped_blocks for s in runs) > 0


@pytest.mark.parametrize("eviction", eviction_policy_names())
def test_seeded_fuzz_on_long_chains_keeps_integrity(eviction):
    runs = [fuzz(eviction, seed, 1500, 64, LONG_COUNTS).kv.stats for seed in range(4)]
    assert all(s.hit_tokens > 0 and s.evicted_blocks > 0 for s in runs)
    assert sum(s.deduped_blocks for s in runs) > 0
