"""A serving benchmark replayed on the simulated engine: what `vllm bench serve` measures,
predicted by the performance model and the engine's own batching.

`replay` plays the closed loop of `vllm bench serve --dataset-name random --ignore-eos
--max-concurrency C --num-prompts N --request-rate inf`: C requests in flight, each with
its own prompt of `input_tokens` (random prompts share no prefix) and exactly
`output_tokens` of reply, a new one sent as soon as one finishes. It reports the
benchmark's figures: time per output token (TPOT: first token to last, over the
tokens after the first), time to first token and output throughput (tokens over the
benchmark's duration). Deterministic, on the simulated clock.
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass

from agentrt.kvcache.prefix import TokenChain, stable_hash
from agentrt.runtime.core.messages import LLMRequest, RequestDone
from agentrt.runtime.engines.simulated.engine import SimulatedEngine
from agentrt.runtime.engines.simulated.perf_model import PerfModel


@dataclass(frozen=True, slots=True)
class ServingResult:
    mean_tpot_s: float
    median_tpot_s: float
    mean_ttft_s: float
    output_tokens_per_s: float
    duration_s: float


def replay(perf: PerfModel, concurrency: int, prompts: int, input_tokens: int,
           output_tokens: int, *, max_num_seqs: int = 256, max_batched_tokens: int = 8192,
           block_size: int = 16) -> ServingResult:
    """See the module doc. Raises ValueError on sizes below 1 (and for a single-token
    reply, which has no TPOT)."""
    if min(concurrency, prompts, input_tokens) < 1 or output_tokens < 2:
        raise ValueError(f"need concurrency, prompts, input_tokens >= 1 and output_tokens "
                         f">= 2, got {concurrency}, {prompts}, {input_tokens}, {output_tokens}")
    engine = SimulatedEngine("bench", perf, block_size=block_size,
                             max_num_seqs=max_num_seqs, max_batched_tokens=max_batched_tokens)
    sent, now, done = 0, 0.0, []
    sent_at: dict[str, float] = {}

    def send() -> None:
        nonlocal sent
        chain = TokenChain(block_size)
        chain.extend_synthetic(stable_hash("bench-prompt", sent), input_tokens)
        rid = f"r{sent}"
        engine.submit(LLMRequest(rid, rid, rid, perf.model.name, chain, output_tokens,
                                 output_tokens_hint=output_tokens), now)
        sent_at[rid] = now
        sent += 1

    for _ in range(min(concurrency, prompts)):
        send()
    while len(done) < prompts:
        result = engine.step(now)
        now += result.duration
        for event in result.events:
            if isinstance(event, RequestDone):
                done.append(event)
                if sent < prompts:
                    send()
    tpots = [(d.finished_at - d.first_token_at) / (d.output_tokens - 1) for d in done]
    ttfts = [d.first_token_at - sent_at[d.request_id] for d in done]
    return ServingResult(statistics.fmean(tpots), statistics.median(tpots),
                         statistics.fmean(ttfts), prompts * output_tokens / now, now)
