"""BlockMirror: vLLM's KV events (the real event classes of vllm.distributed.kv_events)
become agentrt's block hashes; removals, duplicates, clears and unknown parents."""
from __future__ import annotations

import pytest

from agentrt.kvcache.prefix import TokenChain
from agentrt.runtime.engines.vllm.mirror import BlockMirror

pytestmark = [pytest.mark.realserver, pytest.mark.timeout(60)]
kv_events = pytest.importorskip("vllm.distributed.kv_events")
BS = 4


def stored(hashes, parent, tokens):
    return kv_events.BlockStored(block_hashes=list(hashes), parent_block_hash=parent,
                                 token_ids=list(tokens), block_size=BS, lora_id=None,
                                 medium="GPU", lora_name=None)


def batch(*events):
    return kv_events.KVEventBatch(ts=0.0, events=list(events))


def test_stored_blocks_answer_for_chains_of_the_same_tokens():
    mirror = BlockMirror(BS)
    tokens = list(range(100, 112))
    mirror.apply([batch(stored([b"h0", b"h1"], None, tokens[:8]), stored([b"h2"], b"h1", tokens[8:]))])
    assert mirror.cached_prefix_tokens(TokenChain.from_tokens(tokens + [1, 2], BS)) == 12
    assert mirror.cached_prefix_tokens(TokenChain.from_tokens(tokens[:4] + [0] * 8, BS)) == 4
    assert mirror.cached_prefix_tokens(TokenChain.from_tokens(tokens, 8)) == 0  # other size
    mirror.apply([batch(kv_events.BlockRemoved(block_hashes=[b"h1"], medium="GPU"))])
    # A child whose parent went is unreachable: the walk stops at the gap.
    assert mirror.cached_prefix_tokens(TokenChain.from_tokens(tokens, BS)) == 4
    assert len(mirror) == 2


def test_duplicates_need_as_many_removals_and_a_clear_empties_it():
    mirror = BlockMirror(BS)
    mirror.apply([batch(stored([b"a"], None, [1, 2, 3, 4]), stored([b"a"], None, [1, 2, 3, 4]))])
    mirror.apply([batch(kv_events.BlockRemoved(block_hashes=[b"a"], medium="GPU"))])
    chain = TokenChain.from_tokens([1, 2, 3, 4], BS)
    assert mirror.cached_prefix_tokens(chain) == 4
    mirror.apply([batch(kv_events.BlockRemoved(block_hashes=[b"a"], medium="GPU"))])
    assert mirror.cached_prefix_tokens(chain) == 0
    mirror.apply([batch(stored([b"a"], None, [1, 2, 3, 4]), kv_events.AllBlocksCleared())])
    assert mirror.cached_prefix_tokens(chain) == 0 and len(mirror) == 0


def test_a_block_whose_parent_the_mirror_never_saw_is_not_counted():
    mirror = BlockMirror(BS)
    mirror.apply([batch(stored([b"x"], b"unknown", [5, 6, 7, 8]))])
    assert mirror.untranslated == 1 and len(mirror) == 0
    with pytest.raises(ValueError, match="4-token blocks"):
        BlockMirror(8).apply([batch(stored([b"y"], None, [1, 2, 3, 4]))])
