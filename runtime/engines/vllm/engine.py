"""VllmEngine: a RealtimeEngine running vLLM in this process, retaining real KV blocks.

    event loop (the caller's)                engine thread (owns everything vLLM)
    submit / abort / release / retain  ──▶  command queue ──▶ applied between steps
                                            LLMEngine.step(): schedule, run, outputs
    emit([RequestDone, Preempted, ...]) ◀── call_soon_threadsafe, in step order

One thread (`EngineThread`) builds vLLM (`VllmCore`) and is the only one that calls
into it, so the scheduler's holds need no lock and a command never lands mid-step.
`retain` is queued like every command and returns `RetainResult(0, "queued")`; the
outcome is counted in `retained` once applied (`await settled()` waits for that).

What the core sees:
- RequestDone with usage: `cached_tokens` is vLLM's prefix-cache hit for the call (whole
  blocks), tool calls parsed by vLLM's parser (`ToolCalls`), finish reason, and the
  call's first-scheduled and first-token times. Preempted when vLLM preempted a call;
  PinExpired when a hold ended on its deadline or gave way to memory pressure.
- `stats()`: a snapshot taken after every step: vLLM's running and waiting calls, KV
  blocks used and held, cached free blocks, prefix hits, busy time.
- `cached_prefix_tokens`: exact, from vLLM's KV events (`BlockMirror`) for chains of
  the model's own token ids and for counted calls.
- Failures: a call vLLM refuses ends in a RequestDone with finish_reason "error"; if
  vLLM fails, every call in flight does, and the engine refuses later calls.
- Retention (capability `retain`, with a TTL policy): a call that may continue
  (neither its program's last call nor its session's last turn) leaves its blocks held
  when it finishes; a reply without tool calls frees them at once; a reply with one
  keeps them until the core's `retain` decision says how long (`RetainingScheduler`).
  No host tier: vLLM 0.32's CPU build has no KV offload below its KV (the KV is in host
  memory already), so "offload" decisions drop.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import math
import time
from collections.abc import Callable
from typing import Any

from agentrt.kvcache.prefix import TokenChain
from agentrt.runtime.core.messages import (
    EngineEvent, EngineStats, LLMRequest, Preempted, RequestDone,
)
from agentrt.runtime.core.retention.decision import PinDecision
from agentrt.runtime.engines.base import (
    Capabilities, EngineInfo, EngineRefused, EventSink, RetainResult,
)
from agentrt.runtime.engines.vllm.config import VllmSettings
from agentrt.runtime.engines.vllm.thread import STOP, EngineThread

CAPABILITIES = Capabilities(clock="realtime", retain=True, host_tier=False, receive=False,
                            hints=False, kv_state="exact")


class VllmEngine:
    """See the module doc. `clock` returns run seconds; `ttl` names the TTL policy whose
    knobs (pin cap, pressure rule) the engine takes; None: no holds at all."""

    def __init__(self, worker_id: str, settings: VllmSettings, *,
                 clock: Callable[[], float] = time.monotonic, ttl: str | None = None) -> None:
        self.worker_id, self.model, self.settings = worker_id, settings.name, settings
        self.clock = clock
        self._info = EngineInfo(worker_id, self.model, settings.block_size or 16,
                                settings.num_gpu_blocks, settings.max_model_len, CAPABILITIES)
        self._thread = EngineThread(worker_id, self.model, settings, clock, ttl,
                                    self._from_thread)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._emit: EventSink | None = None
        self._known: set[str] = set()  # submitted, neither finished nor aborted
        self._stopped = False

    @property
    def info(self) -> EngineInfo:
        return self._info

    # What the engine thread keeps, for tests and tools (read them after `settled`).
    @property
    def retained(self) -> dict[str, int]:
        """Outcomes of the TTL decisions carried out, by hold status (or action)."""
        return self._thread.retained

    @property
    def prompts(self) -> Any:
        return self._thread.prompts

    @property
    def problems(self) -> list[str]:
        return self._thread.problems

    # -- lifecycle -----------------------------------------------------------------
    async def start(self, emit: EventSink) -> None:
        """Build vLLM in the engine thread (tens of seconds) and serve. Raises what
        building raised (UnsupportedVllm, vLLM's configuration errors). Called again on
        a serving engine (the same loop), it only hands later events to `emit`: one
        engine serves run after run (benchmarks, tests)."""
        if self._emit is not None:
            self._emit = emit
            return
        if self._stopped:
            raise RuntimeError(f"engine {self.worker_id} was stopped; build a new one")
        self._loop = asyncio.get_running_loop()
        self._thread.start()
        await asyncio.wrap_future(self._thread.ready)
        core = self._thread.core
        self._info = EngineInfo(self.worker_id, self.model, core.block_size,
                                core.capacity_blocks, core.max_model_len, CAPABILITIES)
        self._emit = emit

    async def stop(self) -> None:
        """Abort what runs, shut vLLM's workers down, end the thread. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        self._known.clear()
        if self._thread.is_alive():
            self._thread.commands.put(STOP)
            await asyncio.to_thread(self._thread.join, 120)

    # -- the Engine contract -------------------------------------------------------
    def submit(self, request: LLMRequest, now: float) -> None:
        """Queue the call. Raises EngineRefused when it can never fit, RuntimeError
        before `start`, after `stop` or after vLLM failed, ValueError for an id already
        here."""
        rid = request.request_id
        if self._emit is None or self._stopped or self._thread.failed:
            reason = f" (vLLM failed: {self._thread.failed})" if self._thread.failed else ""
            raise RuntimeError(f"engine {self.worker_id} is not serving: await start() first "
                               f"(and never after stop()){reason}")
        if rid in self._known:
            raise ValueError(f"request {rid!r} is already queued or running")
        ids = None if request.messages is None else self.prompts.token_ids(request)
        prompt = request.prompt_tokens if ids is None else len(ids)
        limit = min(self._info.max_context or math.inf,
                    (self._info.kv_capacity_blocks or 0) * self._info.block_size)
        if request.max_tokens < 1 or prompt + request.max_tokens > limit:
            raise EngineRefused(
                rid, f"request {rid!r} can never fit worker {self.worker_id!r}: prompt "
                f"{prompt} + max_tokens {request.max_tokens} must be <= {limit} (the "
                f"model's context and the KV capacity), max_tokens >= 1; shorten the "
                f"conversation or lower max_tokens", int(limit))
        self._known.add(rid)
        self._thread.commands.put(("submit", request, ids, now))

    def abort(self, request_id: str, now: float) -> bool:
        """Drop the call (no RequestDone follows) and whatever its session holds here."""
        if request_id not in self._known:
            return False
        self._known.discard(request_id)
        self._thread.commands.put(("abort", request_id))
        return True

    def release(self, session_id: str, now: float) -> None:
        self._thread.commands.put(("release", session_id))

    def retain(self, session_id: str, prefix: TokenChain, decision: PinDecision,
               now: float, program_id: str | None = None) -> RetainResult:
        """Queued: see the module doc. The hold covers the session's last context as
        this engine fed it (`prefix` names the same tokens in agentrt's hashes)."""
        self._thread.commands.put(("retain", session_id, decision, now, program_id))
        return RetainResult(0, "queued")

    def cached_prefix_tokens(self, prefix: TokenChain) -> int:
        """Exact, from vLLM's KV events: for a chain of the model's token ids as it is,
        for a counted chain through the token ids this engine gives it (`Prompts`)."""
        mirror = self._thread.mirror
        if mirror is None or prefix.block_size != mirror.block_size:
            return 0
        direct = mirror.cached_prefix_tokens(prefix)
        if direct or not prefix.hashes:
            return direct
        ids = self.prompts.counted_ids(prefix, touch=False)
        return mirror.cached_prefix_tokens(TokenChain.from_tokens(ids, prefix.block_size))

    def stats(self) -> EngineStats:
        snapshot = self._thread.stats_snapshot
        if snapshot is None:
            return EngineStats(self.worker_id, 0, 0, self._info.kv_capacity_blocks or 0,
                               0, 0, 0, self._info.block_size, 0, 0, 0.0, 0)
        return snapshot

    def check_integrity(self) -> None:
        assert not self.problems, f"{self.worker_id}: " + "; ".join(self.problems)

    # -- for tests, benchmarks and tools -----------------------------------------
    async def call(self, fn: Callable[[Any], Any]) -> Any:
        """Run `fn(core)` in the engine thread between steps; returns its result.
        Raises RuntimeError when the engine thread is not running."""
        if not self._thread.is_alive() or self._thread.failed:
            raise RuntimeError(f"engine {self.worker_id} is not running"
                               + (f" (vLLM failed: {self._thread.failed})"
                                  if self._thread.failed else ""))
        future: concurrent.futures.Future = concurrent.futures.Future()
        self._thread.commands.put(("call", fn, future))
        return await asyncio.wrap_future(future)

    async def settled(self) -> None:
        """Wait until every command queued so far has been applied."""
        await self.call(lambda core: None)

    async def reset(self, ttl: str | None) -> bool:
        """Between runs on one engine: free every hold, empty vLLM's prefix cache and
        take `ttl`'s knobs (None: no holds). Returns whether the cache was emptied
        (vLLM refuses while a call holds blocks)."""
        def reset(core: Any) -> bool:
            for session in core.scheduler.holds.sessions():
                core.scheduler.release(session)
            core.scheduler.contexts.clear()
            self._thread.configure(ttl)
            self._thread.retained.clear()
            return core.reset_prefix_cache()

        return await self.call(reset)

    # -- events --------------------------------------------------------------------
    def _from_thread(self, events: list[EngineEvent]) -> None:
        """From the engine thread: onto the event loop, in order."""
        self._loop.call_soon_threadsafe(self._deliver, events)

    def _deliver(self, events: list[EngineEvent]) -> None:
        """On the event loop: drop what was aborted meanwhile, then emit."""
        kept = []
        for event in events:
            if isinstance(event, (RequestDone, Preempted)):
                if event.request_id not in self._known:
                    continue
                if isinstance(event, RequestDone):
                    self._known.discard(event.request_id)
            kept.append(event)
        if kept and self._emit is not None and not self._stopped:
            self._emit(kept)
