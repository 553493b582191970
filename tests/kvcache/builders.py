"""Builders shared by the kvcache tests: chains, pools and managers at toy sizes.

Block size 4 keeps the arithmetic readable: a 10-token prompt is 2 full blocks plus a
partial block of 2 tokens.
"""
from __future__ import annotations

from agentrt.kvcache.block_pool import BlockPool
from agentrt.kvcache.eviction import make_eviction_policy
from agentrt.kvcache.manager import KVCacheManager
from agentrt.kvcache.prefix import TokenChain, stable_hash

BS = 4


def key(name: str | int) -> int:
    return stable_hash("test", name)


def chain(*runs: tuple[str | int, int], base: TokenChain | None = None) -> TokenChain:
    """`base` (or an empty chain) extended by synthetic runs given as (name, tokens)."""
    out = base.copy() if base is not None else TokenChain(BS)
    for name, count in runs:
        out.extend_synthetic(key(name), count)
    return out


def tokens_chain(token_ids: list[int], block_size: int = BS) -> TokenChain:
    return TokenChain.from_tokens(token_ids, block_size)


def make_pool(num_blocks: int = 8, eviction: str = "lru") -> BlockPool:
    return BlockPool(num_blocks, BS, make_eviction_policy(eviction))


def make_manager(num_blocks: int = 16, eviction: str = "lru") -> KVCacheManager:
    return KVCacheManager(num_blocks, BS, eviction)


def fill_pool_chain(pool: BlockPool, c: TokenChain, now: float = 0.0) -> list[int]:
    """Allocate and commit every full block of `c` in `pool`; returns the block ids
    (still referenced once each)."""
    ids = pool.allocate(c.num_full_blocks, now)
    return [
        pool.commit(bid, h, c.hashes[i - 1] if i else None, now)
        for i, (bid, h) in enumerate(zip(ids, c.hashes))
    ]


def run_turn(
    kv: KVCacheManager, seq_id: str, prompt: TokenChain, output: tuple[str | int, int],
    now: float = 0.0,
):
    """One LLM call: admit `prompt`, generate `output`, commit, free.

    Returns (allocation, chain after the turn)."""
    alloc = kv.allocate(seq_id, prompt, now)
    kv.append(seq_id, output[1], now)
    after = chain(output, base=prompt)
    kv.commit(seq_id, after, now)
    kv.free(seq_id, now)
    return alloc, after
