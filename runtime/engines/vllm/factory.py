"""Builds a worker's VllmEngine: what a worker actor calls with its worker id.

Every worker of the pool gets the same settings (one engine, `tensor_parallel_size`
GPUs; place the actor with `ray_options()`), the run clock the driver shares (wall
seconds since `origin`) and the cluster's TTL policy, whose pin cap and pressure rule
the engine's scheduler carries out. Plain values only: the factory travels to the
worker process with the actor.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from agentrt.runtime.engines.vllm.config import VllmSettings
from agentrt.runtime.engines.vllm.engine import VllmEngine


@dataclass(frozen=True)
class VllmEngineFactory:
    settings: VllmSettings
    ttl: str | None = None
    origin: float = field(default_factory=time.time)
    """Wall time (epoch seconds) of run time 0."""

    def clock(self) -> float:
        return time.time() - self.origin

    def ray_options(self) -> dict[str, Any]:
        return self.settings.ray_options()

    def __call__(self, worker_id: str) -> VllmEngine:
        return VllmEngine(worker_id, self.settings, clock=self.clock, ttl=self.ttl)
