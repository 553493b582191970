"""The prefill side of one engine iteration: which sequences get a chunk, and the sums
the perf model needs. (Decodes are counted by `DecodeBatch` as running totals.)"""
from __future__ import annotations

from dataclasses import dataclass, field

from agentrt.runtime.engines.simulated.perf_model import attention_pairs
from agentrt.runtime.engines.simulated.sequence import Seq


@dataclass(slots=True)
class StepBatch:
    """Prefill chunks of one iteration, the sequences it preempted, the tokens its
    admissions reloaded from host memory and how long the last of them waits for a
    prefetch still on the link."""

    chunks: list[tuple[Seq, int]] = field(default_factory=list)
    tokens: int = 0
    pairs: int = 0
    preempted: list[Seq] = field(default_factory=list)
    reloaded: int = 0  # tokens admissions brought back from the host tier
    prefetch_wait: float = 0.0  # longest wait of an admission for its prefetch to land

    def add(self, seq: Seq, n: int) -> None:
        """Schedule `n` prompt tokens of `seq` after its `computed` ones."""
        self.chunks.append((seq, n))
        self.tokens += n
        self.pairs += attention_pairs(n, seq.computed)
