"""A minimal realtime engine: replies on the real clock, in this process, with exact
prefix caching and nothing modeled.

Each call runs as an asyncio task: it takes the blocks of its prompt (the cached
prefix from earlier calls, fresh blocks for the rest), waits `latency_s` (0 by
default: no duration is modeled, the reply comes as soon as the event loop runs the
task), asks the responder for the reply, stores prompt and reply in the cache and
emits a RequestDone. Up to `max_running` calls hold blocks at once; the rest wait in
submit order. It is what the worker actor runs when no model is wanted at all (tests,
smoke runs of a workload), and the second implementation the Engine contract is
checked against.

    submit ─▶ waiting (FIFO) ─▶ running: allocate prompt + max_tokens ─▶ sleep(latency_s)
                  ─▶ reply ─▶ commit prompt + reply, free ─▶ emit([RequestDone])
"""
from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Callable

from agentrt.kvcache.manager import KVCacheManager
from agentrt.kvcache.prefix import TokenChain
from agentrt.runtime.core.messages import EngineStats, LLMRequest, RequestDone
from agentrt.runtime.engines.base import Capabilities, EngineInfo, EngineRefused, EventSink
from agentrt.runtime.engines.simulated.responder import FillerResponder, Responder
from agentrt.runtime.engines.simulated.sequence import output_key, respond_once


class InlineEngine:
    """See the module doc. `clock` returns run seconds (the events' timestamps)."""

    def __init__(self, worker_id: str, model: str = "local", *, responder: Responder | None = None,
                 block_size: int = 16, kv_blocks: int = 65_536, max_context: int = 131_072,
                 max_running: int = 64, latency_s: float = 0.0, seed: int = 0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if max_running < 1 or latency_s < 0:
            raise ValueError(f"need max_running >= 1 and latency_s >= 0, got {max_running}, "
                             f"{latency_s}")
        self.worker_id, self.model = worker_id, model
        self.responder = responder if responder is not None else FillerResponder()
        self.block_size, self.latency_s, self.seed = block_size, latency_s, seed
        self.max_running, self.clock = max_running, clock
        self.kv = KVCacheManager(kv_blocks, block_size)
        self._info = EngineInfo(worker_id, model, block_size, kv_blocks,
                                min(max_context, kv_blocks * block_size),
                                Capabilities(clock="realtime", kv_state="exact"))
        self._emit: EventSink | None = None
        self._waiting: deque[tuple[LLMRequest, float]] = deque()
        self._running: dict[str, asyncio.Task] = {}
        self._known: set[str] = set()  # ids submitted and not finished or aborted
        self.busy_time = 0.0
        self.steps = 0

    @property
    def info(self) -> EngineInfo:
        return self._info

    # -- lifecycle -----------------------------------------------------------------
    async def start(self, emit: EventSink) -> None:
        self._emit = emit

    async def stop(self) -> None:
        for request_id in list(self._running):
            self.abort(request_id, self.clock())
        self._waiting.clear()
        self._known.clear()
        self._emit = None

    # -- calls ---------------------------------------------------------------------
    def submit(self, request: LLMRequest, now: float) -> None:
        rid = request.request_id
        if self._emit is None:
            raise RuntimeError(f"engine {self.worker_id!r} is not started; await start(emit)")
        if rid in self._known:
            raise ValueError(f"request {rid!r} is already queued or running")
        limit = self._info.max_context
        if request.max_tokens < 1 or request.prompt_tokens + request.max_tokens > limit:
            raise EngineRefused(
                rid, f"request {rid!r} can never fit worker {self.worker_id!r}: prompt "
                f"{request.prompt_tokens} + max_tokens {request.max_tokens} must be <= "
                f"{limit}, max_tokens >= 1; shorten the conversation or lower max_tokens",
                limit)
        self._known.add(rid)
        self._waiting.append((request, now))
        self._admit()

    def abort(self, request_id: str, now: float) -> bool:
        if request_id not in self._known:
            return False
        self._known.discard(request_id)
        task = self._running.pop(request_id, None)
        if task is not None:
            task.cancel()
            if self.kv.has_seq(request_id):
                self.kv.free(request_id, now)
        else:
            self._waiting = deque(w for w in self._waiting if w[0].request_id != request_id)
        self._admit()
        return True

    def release(self, session_id: str, now: float) -> None:
        """Nothing is kept per session beyond the prefix cache."""

    def cached_prefix_tokens(self, prefix: TokenChain) -> int:
        return self.kv.match(prefix).tokens

    # -- running -------------------------------------------------------------------
    def _admit(self) -> None:
        while self._waiting and len(self._running) < self.max_running:
            request, submitted = self._waiting[0]
            if not self.kv.can_allocate(request.prefix, request.max_tokens):
                return  # the head waits for blocks; calls keep their order
            self._waiting.popleft()
            rid, now = request.request_id, self.clock()
            # Blocks are taken here, not in the task, so admissions never overcommit.
            alloc = self.kv.allocate(rid, request.prefix, now)
            self.kv.commit(rid, request.prefix, now)
            self.kv.append(rid, request.max_tokens, now)  # the reply's worst case
            task = asyncio.get_running_loop().create_task(
                self._run(request, submitted, alloc.cached_tokens, now))
            self._running[rid] = task

    async def _run(self, request: LLMRequest, submitted: float, cached: int,
                   now: float) -> None:
        rid, started = request.request_id, time.perf_counter()
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        response = respond_once(self.responder, self.seed, request)
        done = RequestDone(
            request_id=rid, session_id=request.session_id, program_id=request.program_id,
            worker_id=self.worker_id, finished_at=0.0, prompt_tokens=request.prompt_tokens,
            cached_tokens=cached, prefilled_tokens=request.prompt_tokens - cached,
            output_tokens=response.output_tokens, text=response.text,
            tool_calls=list(response.tool_calls), finish_reason=response.finish_reason,
            output_token_ids=response.token_ids,
            output_synthetic_key=None if response.token_ids is not None else output_key(rid),
            dispatched_at=submitted, first_scheduled_at=now)
        end = self.clock()
        self.kv.commit(rid, _fed_back(request.prefix, done), end)
        self.kv.free(rid, end)
        done.finished_at = done.first_token_at = end
        self.busy_time += time.perf_counter() - started
        self.steps += 1
        self._running.pop(rid, None)
        self._known.discard(rid)
        self._admit()
        self._emit([done])

    # -- reading -------------------------------------------------------------------
    def stats(self) -> EngineStats:
        kv, hits = self.kv, self.kv.stats
        return EngineStats(self.worker_id, len(self._running), len(self._waiting),
                           kv.capacity_blocks, kv.num_used_blocks, kv.num_held_blocks,
                           kv.num_cached_blocks, self.block_size, hits.hit_tokens,
                           hits.miss_tokens, self.busy_time, self.steps)

    def check_integrity(self) -> None:
        self.kv.check_integrity()
        assert set(self._running) <= self._known, "running calls the engine forgot"


def _fed_back(prompt: TokenChain, done: RequestDone) -> TokenChain:
    """What a model has KV for after a reply: the prompt and every output token but the
    last (sampled, never fed back), as a client extends its chain with the reply."""
    chain = prompt.copy()
    n = done.output_tokens - 1
    if done.output_token_ids is not None:
        chain.extend_tokens(done.output_token_ids[:n])
    elif n > 0:
        chain.extend_synthetic(done.output_synthetic_key, n)
    return chain
