"""Named results of the KV cache manager (`kvcache.manager`).

The host-tier fields default to 0, so without a tier the results read as if the tier
did not exist.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PrefixMatch:
    """Cached part of a prompt: `blocks` leading blocks on the GPU, worth `tokens`
    prompt tokens, then `host_blocks` more in the host tier, worth `host_tokens`
    (together capped so that at least one prompt token is always computed)."""

    blocks: int
    tokens: int
    host_blocks: int = 0
    host_tokens: int = 0


@dataclass(frozen=True, slots=True)
class Allocation:
    """Result of admitting a prompt: tokens served from the GPU cache, fresh blocks
    taken (reloaded ones included), and tokens reloaded from the host tier. The
    prompt's first `cached_tokens + reloaded_tokens` tokens need no prefill."""

    cached_tokens: int
    blocks_allocated: int
    reloaded_tokens: int = 0


@dataclass(frozen=True, slots=True)
class ChainOffload:
    """What `offload` did: GPU blocks evicted, how many of them the host tier stored
    (the rest were dropped: no tier), and host blocks pushed out to make room."""

    evicted: int
    stored: int
    pushed_out: int = 0


@dataclass(frozen=True, slots=True)
class KVStats:
    hit_tokens: int
    miss_tokens: int
    allocated_blocks: int
    evicted_blocks: int
    deduped_blocks: int
    reloaded_tokens: int = 0  # prompt tokens served by reloading host blocks
    offloaded_blocks: int = 0  # blocks stored in the host tier

    @property
    def hit_rate(self) -> float:
        """GPU prefix hits over GPU hits and misses (reloaded tokens are neither)."""
        total = self.hit_tokens + self.miss_tokens
        return self.hit_tokens / total if total else 0.0

    @property
    def reuse_rate(self) -> float:
        """Prompt tokens not recomputed (GPU hits and host reloads) over all."""
        reused = self.hit_tokens + self.reloaded_tokens
        total = reused + self.miss_tokens
        return reused / total if total else 0.0
