"""OpenAIEngine: a RealtimeEngine over one OpenAI-compatible server replica.

    submit(req) ─▶ task: wait for a slot (max_concurrency) ─▶ ChatClient.chat ─▶ emit
                                  waiting                      running      RequestDone

One engine per replica (base URL), with its own connection pool. Every submitted call
runs as an asyncio task on the loop `start` ran on and ends in exactly one of:

- a RequestDone with the server's usage (prompt, cached = prompt_tokens_details
  .cached_tokens, prefilled = prompt - cached, output), text, tool calls and finish
  reason, stamped on the run clock (`clock()`);
- a RequestDone with finish_reason "error" and `error` saying what failed, where and
  what to do (no token was served: counts are 0), so the step gets an answer, not a hang;
- nothing, when it was aborted (`abort`, `stop`): its HTTP stream is closed, and the
  server stops generating.

The server's capacity (vLLM /metrics, SGLang /get_server_info, or configured) is read
at `start` and every `scrape_interval_s` after; `info` and `stats` report it.
`cached_prefix_tokens` is an estimate (`PrefixMemory`), as `kv_state="estimate"` says.
"""
from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from agentrt.kvcache.prefix import TokenChain, stable_hash
from agentrt.runtime.core.messages import EngineStats, LLMRequest, RequestDone
from agentrt.runtime.engines.base import Capabilities, EngineInfo, EventSink
from agentrt.runtime.engines.openai.body import chat_body
from agentrt.runtime.engines.openai.capacity import CapacityMonitor
from agentrt.runtime.engines.openai.client import ChatClient
from agentrt.runtime.engines.openai.completion import ChatResult
from agentrt.runtime.engines.openai.config import OpenAIEndpoint
from agentrt.runtime.engines.openai.errors import EndpointError
from agentrt.runtime.engines.openai.prefix_memory import PrefixMemory

log = logging.getLogger(__name__)

CAPABILITIES = Capabilities(clock="realtime", retain=False, host_tier=False, receive=False,
                            hints=False, kv_state="estimate")
DEFAULT_MEMORY_BLOCKS = 4096  # prefix estimate size while the capacity is unknown


@dataclass(slots=True)
class _Counters:
    calls_done: int = 0
    calls_failed: int = 0
    prompt_tokens: int = 0
    cached_tokens: int = 0
    output_tokens: int = 0
    busy_time: float = 0.0


class OpenAIEngine:
    """See the module docstring. `clock` returns run seconds (the driver's clock);
    `seed` seeds the retry jitter. Raises ValueError at construction when the
    endpoint's API-key variable is unset."""

    def __init__(self, worker_id: str, endpoint: OpenAIEndpoint, *,
                 clock: Callable[[], float], seed: int = 0) -> None:
        self.worker_id = worker_id
        self.model = endpoint.model
        self.endpoint = endpoint
        self._clock = clock
        self._client = ChatClient(endpoint, random.Random(stable_hash("retry", seed, worker_id)))
        self.capacity = CapacityMonitor(endpoint, self._client)
        self._memory = PrefixMemory(DEFAULT_MEMORY_BLOCKS)
        self._limit = asyncio.Semaphore(endpoint.max_concurrency) \
            if endpoint.max_concurrency else None
        self._tasks: dict[str, asyncio.Task] = {}
        self._running: set[str] = set()  # calls past the concurrency cap, at the server
        self._emit: EventSink | None = None
        self._monitor: asyncio.Task | None = None
        self._stopped = False
        self.counters = _Counters()

    # -- the Engine contract -------------------------------------------------------
    @property
    def info(self) -> EngineInfo:
        reading = self.capacity.reading
        block_size = reading.block_size if reading and reading.block_size else \
            self.endpoint.block_size
        return EngineInfo(self.worker_id, self.model, block_size,
                          reading.kv_capacity_blocks if reading else None,
                          self.capacity.max_model_len, CAPABILITIES)

    async def start(self, emit: EventSink) -> None:
        """Read the server's capacity and context limit (a failed read is logged and
        kept in `capacity.last_error`, not raised), then serve."""
        if self._emit is not None:
            return
        self._emit = emit
        await self.capacity.read_max_model_len()
        try:
            await self.capacity.refresh()
        except EndpointError:
            pass
        self._resize_memory()
        self._monitor = asyncio.get_running_loop().create_task(self._watch_capacity())

    async def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        tasks = list(self._tasks.values()) + ([self._monitor] if self._monitor else [])
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._client.aclose()

    def submit(self, request: LLMRequest, now: float) -> None:
        """Start the call. Raises EngineRefused (see `body.chat_body`), RuntimeError
        before `start` or after `stop`, ValueError for a request id already here."""
        if self._emit is None or self._stopped:
            raise RuntimeError(f"engine {self.worker_id} is not serving: call start() "
                               f"first (and never after stop())")
        if request.request_id in self._tasks:
            raise ValueError(f"request {request.request_id!r} was already submitted to "
                             f"{self.worker_id}")
        body = chat_body(request, self.endpoint)
        task = asyncio.get_running_loop().create_task(self._call(request, body, now))
        self._tasks[request.request_id] = task

    def abort(self, request_id: str, now: float) -> bool:
        task = self._tasks.pop(request_id, None)
        if task is None:
            return False
        self._running.discard(request_id)
        task.cancel()  # closes the HTTP stream: the server stops generating
        return True

    def release(self, session_id: str, now: float) -> None:
        """Nothing to release: an HTTP server keeps no session state for us."""

    def cached_prefix_tokens(self, prefix: TokenChain) -> int:
        return self._memory.cached_tokens(prefix)

    def stats(self) -> EngineStats:
        reading, c = self.capacity.reading, self.counters
        capacity = reading.kv_capacity_blocks if reading and reading.kv_capacity_blocks else 0
        usage = reading.kv_usage if reading and reading.kv_usage is not None else 0.0
        running = len(self._running)
        return EngineStats(
            worker_id=self.worker_id, running=running,
            waiting=len(self._tasks) - running, kv_capacity_blocks=capacity,
            kv_used_blocks=round(usage * capacity), kv_pinned_blocks=0, kv_cached_blocks=0,
            block_size=self.info.block_size, prefix_hit_tokens=c.cached_tokens,
            prefix_miss_tokens=c.prompt_tokens - c.cached_tokens, busy_time=c.busy_time,
            steps=c.calls_done + c.calls_failed)

    def check_integrity(self) -> None:
        assert self._running <= self._tasks.keys(), \
            f"{self.worker_id}: running calls {self._running - self._tasks.keys()} unknown"
        c = self.counters
        assert 0 <= c.cached_tokens <= c.prompt_tokens, f"{self.worker_id}: {c}"

    # -- one call ------------------------------------------------------------------
    async def _call(self, request: LLMRequest, body: dict, submitted_at: float) -> None:
        rid, started = request.request_id, submitted_at
        try:
            if self._limit is not None:
                await self._limit.acquire()
            try:
                self._running.add(rid)
                started = self._clock()
                done = self._done(request, await self._client.chat(body), submitted_at, started)
            finally:
                self._running.discard(rid)
                if self._limit is not None:
                    self._limit.release()
        except asyncio.CancelledError:
            self._tasks.pop(rid, None)
            raise
        except EndpointError as error:
            done = self._failed(request, str(error), submitted_at, started)
        except Exception as error:  # a bug must not leave the step waiting forever
            log.exception("%s: call %s failed", self.worker_id, request.request_id)
            done = self._failed(request, f"{type(error).__name__}: {error}", submitted_at,
                                started)
        self._tasks.pop(rid, None)
        self._emit([done])

    def _done(self, request: LLMRequest, result: ChatResult, submitted_at: float,
              started: float) -> RequestDone:
        now, usage, c = self._clock(), result.usage, self.counters
        cached = min(usage.cached_tokens, usage.prompt_tokens)
        c.calls_done += 1
        c.prompt_tokens += usage.prompt_tokens
        c.cached_tokens += cached
        c.output_tokens += usage.completion_tokens
        c.busy_time += now - started
        self._memory.remember(request.prefix)
        first = self._run_time(result.first_token_at) if result.first_token_at else now
        return RequestDone(
            request.request_id, request.session_id, request.program_id, self.worker_id,
            finished_at=now, prompt_tokens=usage.prompt_tokens, cached_tokens=cached,
            prefilled_tokens=usage.prompt_tokens - cached,
            output_tokens=usage.completion_tokens, text=result.text,
            tool_calls=result.tool_calls, finish_reason=result.finish_reason,
            output_synthetic_key=stable_hash("openai-reply", request.request_id),
            dispatched_at=submitted_at, first_scheduled_at=started, first_token_at=first)

    def _failed(self, request: LLMRequest, message: str, submitted_at: float,
                started: float) -> RequestDone:
        now = self._clock()
        self.counters.calls_failed += 1
        return RequestDone(
            request.request_id, request.session_id, request.program_id, self.worker_id,
            finished_at=now, prompt_tokens=0, cached_tokens=0, prefilled_tokens=0,
            output_tokens=0, finish_reason="error", error=message,
            output_synthetic_key=stable_hash("openai-reply", request.request_id),
            dispatched_at=submitted_at, first_scheduled_at=started, first_token_at=now)

    def _run_time(self, monotonic_at: float) -> float:
        """A client-clock (monotonic) instant on the run clock."""
        return self._clock() - (time.monotonic() - monotonic_at)

    # -- capacity ------------------------------------------------------------------
    async def _watch_capacity(self) -> None:
        monitor = self.capacity
        while True:
            await asyncio.sleep(self.endpoint.scrape_interval_s)
            try:
                await monitor.refresh()
            except EndpointError:
                continue  # kept in monitor.last_error, logged once
            self._resize_memory()

    def _resize_memory(self) -> None:
        reading = self.capacity.reading
        if reading is not None and reading.kv_capacity_blocks:
            self._memory.resize(reading.kv_capacity_blocks)
