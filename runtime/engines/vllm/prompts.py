"""A call's prompt as the model's token ids.

A chat call (`LLMRequest.messages`) is rendered with the model folder's chat template
and tokenizer (`LocalTokenizer`, which renders as vLLM's server does: the real-server
tests compare the two), or, for a model without a local folder, with vLLM's tokenizer's
own `apply_chat_template`.

A counted call (a trace replay, `ctx.chat_tokens`: no messages, only its `TokenChain`)
has no text. Its token ids are made up from the chain, so that the engine's prefix cache
sees what agentrt's chain says: a full block whose hash this engine has seen before
gets the same ids as then (`remember`, after each call, for its prompt and reply),
any other block gets ids drawn from its hash, and the partial tail ids drawn from the
last full block's hash. Two chains that share blocks thus share token ids block for
block, and a session's next prompt extends its last prompt and reply token for token.
The remembered blocks are read from the caller's thread too (`cached_prefix_tokens`
translates a counted chain this way), under a lock.
"""
from __future__ import annotations

import random
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

from agentrt.kvcache.prefix import TokenChain, stable_hash
from agentrt.runtime.core.messages import LLMRequest
from agentrt.runtime.engines.openai.tokenizer import LocalTokenizer

FIRST_ORDINARY_ID = 16  # made-up ids stay clear of the low ids tokenizers reserve


class Prompts:
    """`token_ids(request)` and, after a counted call, `remember(chain, ids)`.
    `known_blocks` bounds the remembered blocks (least recently used go first)."""

    def __init__(self, model: str, tokenizer: Any, block_size: int,
                 known_blocks: int = 65_536) -> None:
        self.block_size = block_size
        self._vllm_tokenizer = tokenizer
        folder = Path(model)
        self._local = LocalTokenizer.from_model_dir(folder) \
            if (folder / "tokenizer.json").is_file() else None
        # Ordinary (not added, not special) ids for counted calls.
        self._vocab = max(FIRST_ORDINARY_ID + 1, int(getattr(tokenizer, "vocab_size", 0)))
        self._known: OrderedDict[int, tuple[int, ...]] = OrderedDict()
        self._limit = known_blocks
        self._lock = threading.Lock()

    def token_ids(self, request: LLMRequest) -> list[int]:
        if request.messages is not None:
            return self.chat_ids(request.messages, request.tools)
        return self.counted_ids(request.prefix)

    def chat_ids(self, messages: list[dict], tools: list | None) -> list[int]:
        if self._local is not None:
            return self._local.encode_prompt(messages, tools)
        ids = self._vllm_tokenizer.apply_chat_template(
            messages, tools=tools or None, add_generation_prompt=True, tokenize=True)
        return list(ids["input_ids"] if isinstance(ids, dict) else ids)

    def counted_ids(self, chain: TokenChain, touch: bool = True) -> list[int]:
        """Token ids for a chain without text (see the module doc); `touch`: count the
        remembered blocks used as recently used."""
        if chain.block_size != self.block_size:
            raise ValueError(f"a counted call's chain has {chain.block_size}-token blocks; "
                             f"this engine's are {self.block_size} (configure block_size "
                             f"{self.block_size})")
        ids: list[int] = []
        for block_hash in chain.hashes:
            with self._lock:
                known = self._known.get(block_hash)
                if known is not None and touch:
                    self._known.move_to_end(block_hash)
            ids.extend(known if known is not None else self._draw(block_hash, self.block_size))
        tail = chain.num_partial_tokens
        if tail:
            ids.extend(self._draw(stable_hash("tail", chain.parent_of(len(chain.hashes))),
                                  tail))
        return ids

    def remember(self, chain: TokenChain, token_ids: list[int]) -> None:
        """`chain`'s full blocks were fed as `token_ids` (its first tokens, block by block)."""
        size = self.block_size
        with self._lock:
            for i, block_hash in enumerate(chain.hashes[:len(token_ids) // size]):
                self._known[block_hash] = tuple(token_ids[i * size:(i + 1) * size])
                self._known.move_to_end(block_hash)
            while len(self._known) > self._limit:
                self._known.popitem(last=False)

    def _draw(self, seed: int, n: int) -> list[int]:
        rng = random.Random(seed)
        return [rng.randrange(FIRST_ORDINARY_ID, self._vocab) for _ in range(n)]
