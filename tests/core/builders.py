"""Builders shared by core tests."""
from __future__ import annotations

from agentrt.kvcache.prefix import TokenChain, stable_hash
from agentrt.runtime.core.messages import EngineStats, LLMRequest, RequestDone
from agentrt.runtime.core.scheduler import Scheduler


def make_request(request_id: str, *, program: str = "p0", session: str | None = None,
                 program_arrival: float = 0.0, tokens: int = 64, max_tokens: int = 16,
                 tenant: str = "default", arrival: float = 0.0) -> LLMRequest:
    chain = TokenChain(block_size=16)
    chain.extend_synthetic(stable_hash(session or program), tokens)
    return LLMRequest(request_id=request_id, program_id=program,
                      session_id=session or f"{program}/s", model="llama-3.1-8b",
                      prefix=chain, max_tokens=max_tokens, program_arrival=program_arrival,
                      tenant=tenant, arrival=arrival)


def make_done(request: LLMRequest, worker_id: str, at: float = 1.0,
              started: float = 0.0, output_tokens: int = 4) -> RequestDone:
    return RequestDone(request_id=request.request_id, session_id=request.session_id,
                       program_id=request.program_id, worker_id=worker_id, finished_at=at,
                       prompt_tokens=request.prompt_tokens, cached_tokens=0,
                       prefilled_tokens=request.prompt_tokens, output_tokens=output_tokens,
                       first_scheduled_at=started)


def make_stats(worker_id: str, running: int = 0, waiting: int = 0) -> EngineStats:
    return EngineStats(worker_id=worker_id, running=running, waiting=waiting,
                       kv_capacity_blocks=100, kv_used_blocks=0, kv_pinned_blocks=0,
                       kv_cached_blocks=0, block_size=16, prefix_hit_tokens=0,
                       prefix_miss_tokens=0, busy_time=0.0, steps=0)


def make_scheduler(workers=("w0", "w1"), **kwargs) -> Scheduler:
    scheduler = Scheduler(**kwargs)
    for worker_id in workers:
        scheduler.add_worker(worker_id)
    return scheduler


def ids(requests) -> list[str]:
    return [r.request_id for r in requests]


def drain(queue, now: float | None = None) -> list[str]:
    out = []
    while (request := queue.pop(now)) is not None:
        out.append(request.request_id)
    return out
