"""TokenChain and stable_hash: prompt identity as chained block hashes."""
from __future__ import annotations

import os
import subprocess
import sys

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentrt.kvcache.prefix import TokenChain, stable_hash

from .builders import BS, chain, key, tokens_chain

# -- stable_hash ---------------------------------------------------------------------


def test_stable_hash_is_63_bit_and_separates_parts():
    h = stable_hash("ab", "c")
    assert 0 <= h < 2**63
    assert h == stable_hash("ab", "c")
    assert h != stable_hash("a", "bc")
    assert stable_hash(1) != stable_hash("1") != stable_hash(b"1")
    assert stable_hash(-1) != stable_hash(255)


def test_stable_hash_rejects_other_types():
    with pytest.raises(TypeError, match="float"):
        stable_hash(1.5)


def test_hashes_are_identical_across_processes_with_different_hash_seeds():
    code = (
        "from kvcache.prefix import TokenChain, stable_hash\n"
        "c = TokenChain(4, root=stable_hash('m'))\n"
        "c.extend_tokens([1, 2, 3, 4, 5]); c.extend_synthetic(stable_hash('sys'), 9)\n"
        "print(stable_hash('x', 1, b'y'), c.hashes)\n"
    )
    outputs = set()
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                             text=True, check=True)
        outputs.add(run.stdout)
    assert len(outputs) == 1


# -- real tokens ---------------------------------------------------------------------


def test_only_full_blocks_are_hashed():
    c = tokens_chain(list(range(10)))
    assert (c.num_tokens, c.num_full_blocks, c.num_partial_tokens) == (10, 2, 2)
    assert c.parent_of(0) == c.root
    assert c.parent_of(1) == c.hashes[0]


def test_completing_the_partial_block_gives_the_same_hashes():
    c = tokens_chain(list(range(10)))
    c.extend_tokens([10, 11])
    assert c == tokens_chain(list(range(12)))
    assert c.num_full_blocks == 3


@settings(max_examples=200, deadline=None)
@given(
    tokens=st.lists(st.integers(0, 50_000), max_size=40),
    cuts=st.lists(st.integers(0, 40), max_size=4),
)
def test_split_invariance(tokens, cuts):
    whole = tokens_chain(tokens)
    pieces = TokenChain(BS)
    start = 0
    for cut in sorted(c for c in cuts if c <= len(tokens)) + [len(tokens)]:
        pieces.extend_tokens(tokens[start:cut])
        start = cut
    assert pieces == whole


def test_different_content_or_root_gives_different_hashes():
    a = tokens_chain([1, 2, 3, 4, 5, 6, 7, 8])
    b = tokens_chain([1, 2, 3, 4, 5, 6, 7, 9])
    assert a.hashes[0] == b.hashes[0]
    assert a.hashes[1] != b.hashes[1]
    other_root = TokenChain.from_tokens([1, 2, 3, 4], BS, root=7)
    assert other_root.hashes[0] != a.hashes[0]


def test_a_change_in_an_early_block_changes_every_later_hash():
    a = tokens_chain([1] * 12)
    b = tokens_chain([2] + [1] * 11)
    assert all(x != y for x, y in zip(a.hashes, b.hashes))


def test_accepts_any_int_sequence():
    assert TokenChain.from_tokens(range(9), BS) == tokens_chain(list(range(9)))


# -- synthetic runs ------------------------------------------------------------------


def test_synthetic_runs_are_deterministic():
    assert chain(("sys", 37), ("user", 5)) == chain(("sys", 37), ("user", 5))
    assert chain(("sys", 37)).hashes != chain(("other", 37)).hashes


def test_synthetic_offsets_restart_with_each_call():
    # (k, 0..7) is not (k, 0..3) followed by (k, 0..3).
    assert chain(("k", 8)).hashes != chain(("k", 4), ("k", 4)).hashes


def test_synthetic_run_fills_a_partial_block_then_whole_blocks():
    c = tokens_chain([1, 2, 3])
    c.extend_synthetic(key("s"), 6)
    assert (c.num_tokens, c.num_full_blocks, c.num_partial_tokens) == (9, 2, 1)
    same = tokens_chain([1, 2, 3])
    same.extend_synthetic(key("s"), 6)
    assert c == same


def test_a_million_token_run_costs_blocks_not_tokens():
    c = TokenChain(16)
    c.extend_synthetic(key("big"), 1_000_000)
    assert c.num_full_blocks == 62_500
    # A run of 10**12 tokens in blocks of 10**9: only feasible in O(blocks).
    huge = TokenChain(10**9)
    huge.extend_synthetic(key("huge"), 10**12 + 5)
    assert (huge.num_full_blocks, huge.num_partial_tokens) == (1000, 5)


def test_synthetic_rejects_bad_arguments():
    with pytest.raises(ValueError):
        TokenChain(BS).extend_synthetic(1, -1)
    with pytest.raises(TypeError):
        TokenChain(BS).extend_synthetic("k", 3)  # type: ignore[arg-type]


# -- copies and the wire ---------------------------------------------------------------


def test_copy_is_independent():
    a = chain(("sys", 6))
    b = a.copy()
    b.extend_synthetic(key("more"), 6)
    assert a == chain(("sys", 6))
    assert b.hashes[:1] == a.hashes


@pytest.mark.parametrize("build", [
    lambda: TokenChain(BS),
    lambda: tokens_chain([5, 6, 7]),
    lambda: chain(("sys", 13)),
    lambda: chain(("sys", 13), base=tokens_chain([1, 2, 3, 4, 5])),
])
def test_wire_round_trip_through_msgpack(build):
    c = build()
    back = TokenChain.from_wire(msgpack.unpackb(msgpack.packb(c.to_wire())))
    assert back == c
    # The partial block survives: extending both gives the same chain.
    c.extend_tokens([9, 9, 9])
    back.extend_tokens([9, 9, 9])
    assert back == c


def test_from_wire_rejects_inconsistent_counts():
    d = tokens_chain([1, 2, 3, 4, 5]).to_wire()
    d["num_tokens"] = 6
    with pytest.raises(ValueError, match="inconsistent"):
        TokenChain.from_wire(d)
