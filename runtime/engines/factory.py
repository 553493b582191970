"""Builds a worker's engine from names: what the Ray worker actors and the simulator
both call, so that they run identical engines."""
from __future__ import annotations

from dataclasses import dataclass

from runtime.engines.perf_model import PerfModel
from runtime.engines.responder import Responder
from runtime.engines.simulated import SimulatedEngine


@dataclass(frozen=True)
class EngineFactory:
    model: str = "llama-3.1-8b"
    gpu: str = "h100"
    tp: int = 1
    responder: Responder | None = None
    block_size: int = 16
    max_num_seqs: int = 256
    max_batched_tokens: int = 8192
    kv_blocks: int | None = None
    """Override the KV capacity (blocks); None derives it from GPU memory."""
    seed: int = 0

    def perf_model(self) -> PerfModel:
        return PerfModel(self.model, self.gpu, self.tp)

    def validate(self) -> None:
        """Raise ValueError naming a bad model, GPU or parallelism before any actor starts."""
        self.perf_model()

    def __call__(self, worker_id: str) -> SimulatedEngine:
        return SimulatedEngine(
            worker_id, self.perf_model(), self.responder, block_size=self.block_size,
            max_num_seqs=self.max_num_seqs, max_batched_tokens=self.max_batched_tokens,
            kv_blocks=self.kv_blocks, seed=self.seed)
