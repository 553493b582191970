"""What vLLM's prefix cache holds, from its own KV events, in agentrt's block hashes.

vLLM publishes, once per step, the blocks it cached and evicted
(vllm/distributed/kv_events.py: `BlockStored` with the blocks' hashes, their parent's
hash and their token ids; `BlockRemoved`; `AllBlocksCleared`). vLLM's hashes are its
own (a seeded hash of parent and tokens); agentrt names a block by
`TokenChain`'s hash of its parent and its token ids (kvcache/prefix.py). The mirror
translates as the events come: a stored block's agentrt hash is the hash of its
parent's agentrt hash and its token ids, so `cached_prefix_tokens(chain)` answers
exactly for chains of the model's own token ids, block size equal to the engine's.

A block stored while its parent was unknown to the mirror (stored before the mirror
began, or an event lost) cannot be translated and is not counted: the view errs
towards "not cached". Read from other threads under a lock; written by the engine
thread only.
"""
from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable
from typing import Any

from agentrt.kvcache.prefix import TokenChain


class BlockMirror:
    def __init__(self, block_size: int, root: int = 0) -> None:
        self.block_size = block_size
        self.root = root
        self._ours: dict[Any, int] = {}  # vLLM block hash -> agentrt hash
        self._copies: Counter = Counter()  # vLLM block hash -> blocks stored under it
        self._cached: Counter = Counter()  # agentrt hash -> vLLM hashes mapping to it
        self._lock = threading.Lock()
        self.stored = self.removed = self.untranslated = 0

    def apply(self, batches: Iterable[Any]) -> None:
        """Take in event batches (each with `.events`), in publication order."""
        with self._lock:
            for batch in batches:
                for event in batch.events:
                    kind = type(event).__name__
                    if kind == "BlockStored":
                        self._stored(event)
                    elif kind == "BlockRemoved":
                        self._removed(event.block_hashes)
                    elif kind == "AllBlocksCleared":
                        self._ours.clear()
                        self._copies.clear()
                        self._cached.clear()

    def _stored(self, event: Any) -> None:
        if event.block_size != self.block_size:
            raise ValueError(f"KV events of {event.block_size}-token blocks reached a "
                             f"mirror of {self.block_size}-token blocks")
        parent = self.root if event.parent_block_hash is None else \
            self._ours.get(event.parent_block_hash)
        tokens, size = event.token_ids, self.block_size
        for i, block_hash in enumerate(event.block_hashes):
            self.stored += 1
            self._copies[block_hash] += 1
            if block_hash in self._ours:
                parent = self._ours[block_hash]
                continue
            if parent is None:
                self.untranslated += 1
                continue
            parent = hash((parent, tuple(tokens[i * size:(i + 1) * size])))
            self._ours[block_hash] = parent
            self._cached[parent] += 1

    def _removed(self, block_hashes: Iterable[Any]) -> None:
        for block_hash in block_hashes:
            self.removed += 1
            self._copies[block_hash] -= 1
            if self._copies[block_hash] > 0:
                continue
            del self._copies[block_hash]
            ours = self._ours.pop(block_hash, None)
            if ours is not None:
                self._cached[ours] -= 1
                if self._cached[ours] <= 0:
                    del self._cached[ours]

    def cached_prefix_tokens(self, chain: TokenChain) -> int:
        """Leading tokens of `chain` whose blocks vLLM holds now (whole blocks)."""
        if chain.block_size != self.block_size or chain.root != self.root:
            return 0
        n = 0
        with self._lock:  # a linear walk: an evicted parent may leave its child cached
            for block_hash in chain.hashes:
                if block_hash not in self._cached:
                    break
                n += 1
        return n * self.block_size

    def __len__(self) -> int:
        """Distinct cached blocks the mirror can name."""
        with self._lock:
            return len(self._cached)
