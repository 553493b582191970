"""Builders shared by the engine tests: engines, requests, chains and a tiny driver."""
from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Iterable

from agentrt.kvcache.prefix import TokenChain, stable_hash
from agentrt.runtime.core.messages import EngineEvent, LLMRequest, RequestDone
from agentrt.runtime.engines import PerfModel, SimulatedEngine


def make_perf(model: str = "Llama-3.1-8B", gpu: str = "H100-SXM", tp: int = 1) -> PerfModel:
    return PerfModel(model, gpu, tp)


def make_engine(worker_id: str = "w0", perf: PerfModel | None = None, **kwargs) -> SimulatedEngine:
    return SimulatedEngine(worker_id, perf or make_perf(), **kwargs)


def synthetic_chain(key: int | str, tokens: int, base: TokenChain | None = None) -> TokenChain:
    """`base` (or an empty chain) extended by one synthetic run of `tokens` tokens."""
    chain = base.copy() if base is not None else TokenChain(16)
    chain.extend_synthetic(key if isinstance(key, int) else stable_hash(key), tokens)
    return chain


def make_request(
    rid: str, prefix: TokenChain, max_tokens: int = 256, session: str | None = None,
    hint: int | None = None, **kwargs,
) -> LLMRequest:
    return LLMRequest(
        request_id=rid, program_id=kwargs.pop("program", "p0"),
        session_id=session or f"s-{rid}", model="Llama-3.1-8B", prefix=prefix,
        max_tokens=max_tokens, output_tokens_hint=hint, **kwargs,
    )


def chain_after(request: LLMRequest, done: RequestDone) -> TokenChain:
    """What the client's chain becomes once it appends the reply (see RequestDone)."""
    chain = request.prefix.copy()
    if done.output_token_ids is not None:
        chain.extend_tokens(done.output_token_ids)
    else:
        chain.extend_synthetic(done.output_synthetic_key, done.output_tokens)
    return chain


def assert_token_identity(done: RequestDone) -> None:
    assert done.prompt_tokens == (
        done.cached_tokens + done.prefilled_tokens - done.recomputed_tokens
    ), done
    assert done.recomputed_tokens >= 0 and done.cached_tokens >= 0


def drive(
    engine: SimulatedEngine,
    arrivals: Iterable[tuple[float, LLMRequest]] = (),
    on_done: Callable[[RequestDone, float], Iterable[tuple[float, LLMRequest]]] | None = None,
    check: bool = True,
    kv_check_every: int = 1,
    max_steps: int = 1_000_000,
    fused: bool = False,
) -> list[EngineEvent]:
    """Run `engine` on a virtual clock: submit each request at its time, step while
    there is work, and feed every RequestDone to `on_done`, which may schedule more
    requests. With `fused`, each step gets the next arrival as its horizon. With
    `check`, verifies the engine's bookkeeping after every step and the whole KV pool
    every `kv_check_every` calls and at the end (the pool walk costs about 1.5 us per
    block). Returns all events in order."""
    queue = [(t, i, r) for i, (t, r) in enumerate(arrivals)]
    heapq.heapify(queue)
    seq, now, events, calls = len(queue), 0.0, [], 0
    for _ in range(max_steps):
        while queue and queue[0][0] <= now:
            engine.submit(heapq.heappop(queue)[2], now)
        if not engine.has_work():
            if not queue:
                if check:
                    engine.check_integrity()
                return events
            now = queue[0][0]
            continue
        if fused:
            result = engine.step(now, queue[0][0] if queue else math.inf)
        else:
            result = engine.step(now)
        now += result.duration
        events += result.events
        calls += 1
        if check:
            engine.check_bookkeeping()
            if calls % kv_check_every == 0:
                engine.check_integrity()
        for ev in result.events:
            if isinstance(ev, RequestDone) and on_done is not None:
                for t, req in on_done(ev, now):
                    heapq.heappush(queue, (t, seq, req))
                    seq += 1
    raise AssertionError(f"engine still busy after {max_steps} steps")
