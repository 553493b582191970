"""An estimate of which prompt blocks a server still caches, from what was sent to it.

An HTTP server does not say which blocks it holds. The engine remembers the block
hashes of the prompts it sent, most recent last, up to the server's KV capacity in
blocks (least recently used forgotten first, as vLLM's and SGLang's prefix caches
evict), and answers `cached_prefix_tokens` with the longest run of a prefix's leading
blocks it remembers. The figure is an estimate (`kv_state="estimate"`): the server may
have evicted sooner, under load from other clients, or hashed with other ids when the
runtime's tokenizer is not the model's.
"""
from __future__ import annotations

from collections import OrderedDict

from agentrt.kvcache.prefix import TokenChain


class PrefixMemory:
    def __init__(self, capacity_blocks: int) -> None:
        if capacity_blocks < 0:
            raise ValueError(f"capacity_blocks must be >= 0, got {capacity_blocks}")
        self.capacity_blocks = capacity_blocks
        self._blocks: OrderedDict[int, None] = OrderedDict()

    def __len__(self) -> int:
        return len(self._blocks)

    def resize(self, capacity_blocks: int) -> None:
        self.capacity_blocks = max(0, capacity_blocks)
        self._trim()

    def remember(self, prefix: TokenChain) -> None:
        """The server has just computed (or reused) `prefix`'s full blocks."""
        blocks = self._blocks
        for h in prefix.hashes:
            blocks[h] = None
            blocks.move_to_end(h)
        self._trim()

    def cached_tokens(self, prefix: TokenChain) -> int:
        """Leading tokens of `prefix` in remembered full blocks. Reads only."""
        run = 0
        for h in prefix.hashes:
            if h not in self._blocks:
                break
            run += 1
        return run * prefix.block_size

    def _trim(self) -> None:
        while len(self._blocks) > self.capacity_blocks:
            self._blocks.popitem(last=False)
