"""Builds a worker's OpenAIEngine: what a worker actor calls with its worker id.

Worker `w{i}` gets replica `endpoints[i]` (the Ray driver names its workers w0, w1, ...;
a worker id given explicitly in `by_worker` wins). The engine reads the run clock the
driver shares (`RunClock`, wall seconds since the run began at scale 1: a real server
runs on the wall clock). The factory travels to the worker process with the actor, so
it holds only plain values; the API key is read there, from that process's
environment.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass, field

from agentrt.runtime.engines.openai.config import OpenAIEndpoint
from agentrt.runtime.engines.openai.engine import OpenAIEngine

_WORKER = re.compile(r"w(\d+)")


@dataclass(frozen=True)
class OpenAIEngineFactory:
    endpoints: tuple[OpenAIEndpoint, ...]
    origin: float = field(default_factory=time.time)
    """Wall time (epoch seconds) of run time 0."""
    seed: int = 0
    by_worker: dict[str, OpenAIEndpoint] = field(default_factory=dict)

    def endpoint_for(self, worker_id: str) -> OpenAIEndpoint:
        """Raises ValueError naming the worker and the replicas configured."""
        if worker_id in self.by_worker:
            return self.by_worker[worker_id]
        match = _WORKER.fullmatch(worker_id)
        if match is None or int(match.group(1)) >= len(self.endpoints):
            raise ValueError(f"no OpenAI-compatible replica for worker {worker_id!r}: "
                             f"{len(self.endpoints)} base URL(s) configured "
                             f"({[e.base_url for e in self.endpoints]}); give one per worker")
        return self.endpoints[int(match.group(1))]

    def clock(self) -> float:
        return time.time() - self.origin

    def __call__(self, worker_id: str) -> OpenAIEngine:
        return OpenAIEngine(worker_id, self.endpoint_for(worker_id), clock=self.clock,
                            seed=self.seed)
