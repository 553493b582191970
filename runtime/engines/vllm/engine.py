"""VllmEngine: a RealtimeEngine running vLLM in this process, retaining real KV blocks.

    event loop (the caller's)                engine thread (owns everything vLLM)
    submit / abort / release / retain  ──▶  command queue ──▶ applied between steps
                                            LLMEngine.step(): schedule, run, outputs
    emit([RequestDone, Preempted, ...]) ◀── call_soon_threadsafe, in step order

One thread builds vLLM (`VllmCore`) and is the only one that calls into it, so the
scheduler's holds need no lock and a command never lands mid-step. While idle the thread
sleeps on the queue, waking for the next hold deadline. `retain` is queued like every
command and returns `RetainResult(0, "queued")`; the outcome is counted in `retained`
once applied (`await settled()` waits for that).

What the core sees:
- RequestDone with usage: `cached_tokens` is vLLM's prefix-cache hit for the call (whole
  blocks), tool calls parsed by vLLM's parser (`ToolCalls`), finish reason, and the
  call's first-scheduled and first-token times. Preempted when vLLM preempted a call;
  PinExpired when a hold ended on its deadline or gave way to memory pressure.
- `stats()`: a snapshot taken after every step: vLLM's running and waiting calls, KV
  blocks used and held, cached free blocks, prefix hits, busy time.
- `cached_prefix_tokens`: exact, from vLLM's KV events (`BlockMirror`) for chains of
  the model's own token ids.
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
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from agentrt.kvcache.prefix import TokenChain
from agentrt.runtime.core.messages import (
    EngineEvent, EngineStats, LLMRequest, PinExpired, Preempted, RequestDone,
)
from agentrt.runtime.core.retention import make_ttl_policy
from agentrt.runtime.core.retention.decision import PinDecision
from agentrt.runtime.core.session_chain import reply_chain
from agentrt.runtime.engines.base import (
    Capabilities, EngineInfo, EngineRefused, EventSink, RetainResult,
)
from agentrt.runtime.engines.vllm.calls import Call
from agentrt.runtime.engines.vllm.config import VllmSettings
from agentrt.runtime.engines.vllm.mirror import BlockMirror
from agentrt.runtime.engines.vllm.stats import snapshot

CAPABILITIES = Capabilities(clock="realtime", retain=True, host_tier=False, receive=False,
                            hints=False, kv_state="exact")
IDLE_WAKE_S = 1.0  # the longest an idle engine thread sleeps with holds to expire
SAMPLING_KEYS = ("temperature", "top_p", "top_k", "min_p", "seed", "stop",
                 "presence_penalty", "frequency_penalty", "repetition_penalty")
_STOP = object()


class VllmEngine:
    """See the module doc. `clock` returns run seconds; `ttl` names the TTL policy whose
    knobs (pin cap, pressure rule) the engine takes; None: no holds at all."""

    def __init__(self, worker_id: str, settings: VllmSettings, *,
                 clock: Callable[[], float] = time.monotonic, ttl: str | None = None) -> None:
        self.worker_id, self.model, self.settings = worker_id, settings.name, settings
        self.clock = clock
        policy = make_ttl_policy(ttl) if ttl is not None else None
        self.holding = policy is not None
        self.cap_fraction = settings.pin_cap_fraction or (
            policy.pin_cap_fraction if policy is not None else 1.0)
        self.pressure_rule = policy.pressure_rule if policy is not None else "pins_first"
        self._info = EngineInfo(worker_id, self.model, settings.block_size or 16,
                                settings.num_gpu_blocks, settings.max_model_len, CAPABILITIES)
        self._commands: queue.Queue = queue.Queue()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._emit: EventSink | None = None
        self._known: set[str] = set()  # submitted, neither finished nor aborted (loop side)
        self._calls: dict[str, Call] = {}  # engine thread side
        self.core: Any = None
        self.mirror: BlockMirror | None = None
        self._stats: EngineStats | None = None
        self.problems: list[str] = []
        self.retained: dict[str, int] = {}
        self.busy_time, self.steps, self.hit_tokens, self.prompt_tokens = 0.0, 0, 0, 0
        self._stopped = False

    @property
    def info(self) -> EngineInfo:
        return self._info

    # -- lifecycle -----------------------------------------------------------------
    async def start(self, emit: EventSink) -> None:
        """Build vLLM in the engine thread (tens of seconds) and serve. Raises what
        building raised (UnsupportedVllm, vLLM's configuration errors)."""
        if self._emit is not None:
            return
        self._loop = asyncio.get_running_loop()
        ready: concurrent.futures.Future = concurrent.futures.Future()
        self._thread = threading.Thread(target=self._run, args=(ready,), daemon=True,
                                        name=f"vllm-{self.worker_id}")
        self._thread.start()
        await asyncio.wrap_future(ready)
        self._emit = emit

    async def stop(self) -> None:
        """Abort what runs, shut vLLM's workers down, end the thread. Idempotent."""
        if self._stopped or self._thread is None:
            self._stopped = True
            return
        self._stopped = True
        self._known.clear()
        self._commands.put(_STOP)
        await asyncio.to_thread(self._thread.join, 120)

    # -- the Engine contract -------------------------------------------------------
    def submit(self, request: LLMRequest, now: float) -> None:
        rid = request.request_id
        if self._emit is None or self._stopped:
            raise RuntimeError(f"engine {self.worker_id} is not serving: await start() first "
                               f"(and never after stop())")
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
        self._commands.put(("submit", request, ids, now))

    def abort(self, request_id: str, now: float) -> bool:
        """Drop the call (no RequestDone follows) and whatever its session holds here."""
        if request_id not in self._known:
            return False
        self._known.discard(request_id)
        self._commands.put(("abort", request_id))
        return True

    def release(self, session_id: str, now: float) -> None:
        self._commands.put(("release", session_id))

    def retain(self, session_id: str, prefix: TokenChain, decision: PinDecision,
               now: float, program_id: str | None = None) -> RetainResult:
        """Queued: see the module doc. The hold covers the session's last context as
        this engine fed it (`prefix` names the same tokens in agentrt's hashes)."""
        self._commands.put(("retain", session_id, decision, now, program_id))
        return RetainResult(0, "queued")

    def cached_prefix_tokens(self, prefix: TokenChain) -> int:
        """Exact, from vLLM's KV events: for a chain of the model's token ids as it is,
        for a counted chain through the token ids this engine gives it (`Prompts`)."""
        mirror = self.mirror
        if mirror is None or prefix.block_size != mirror.block_size:
            return 0
        direct = mirror.cached_prefix_tokens(prefix)
        if direct or not prefix.hashes:
            return direct
        ids = self.prompts.counted_ids(prefix, touch=False)
        return mirror.cached_prefix_tokens(TokenChain.from_tokens(ids, prefix.block_size))

    def stats(self) -> EngineStats:
        if self._stats is None:
            return EngineStats(self.worker_id, 0, 0, self._info.kv_capacity_blocks or 0,
                               0, 0, 0, self._info.block_size, 0, 0, 0.0, 0)
        return self._stats

    def check_integrity(self) -> None:
        assert not self.problems, f"{self.worker_id}: " + "; ".join(self.problems)

    # -- for tests, benchmarks and tools -----------------------------------------
    async def call(self, fn: Callable[[Any], Any]) -> Any:
        """Run `fn(core)` in the engine thread between steps; returns its result."""
        future: concurrent.futures.Future = concurrent.futures.Future()
        self._commands.put(("call", fn, future))
        return await asyncio.wrap_future(future)

    async def settled(self) -> None:
        """Wait until every command queued so far has been applied."""
        await self.call(lambda core: None)

    async def reset(self, ttl: str | None) -> bool:
        """Between runs on one engine: free every hold, empty vLLM's prefix cache and
        take `ttl`'s knobs (None: no holds). Returns whether the cache was emptied
        (vLLM refuses while a call holds blocks)."""
        policy = make_ttl_policy(ttl) if ttl is not None else None

        def reset(core: Any) -> bool:
            for session in core.scheduler.holds.sessions():
                core.scheduler.release(session)
            core.scheduler.contexts.clear()
            self.holding = policy is not None
            self.cap_fraction = self.settings.pin_cap_fraction or (
                policy.pin_cap_fraction if policy is not None else 1.0)
            self.pressure_rule = policy.pressure_rule if policy is not None else "pins_first"
            core.scheduler.bind(self.clock, self.cap_fraction, self.pressure_rule)
            self.retained.clear()
            return core.reset_prefix_cache()

        return await self.call(reset)

    # -- the engine thread -----------------------------------------------------------
    def _run(self, ready: concurrent.futures.Future) -> None:
        from agentrt.runtime.engines.vllm.core import VllmCore
        from agentrt.runtime.engines.vllm.prompts import Prompts
        from agentrt.runtime.engines.vllm.tools import ToolCalls

        try:
            core = VllmCore(self.settings)
            core.scheduler.bind(self.clock, self.cap_fraction, self.pressure_rule)
            self.prompts = Prompts(self.settings.model, core.tokenizer, core.block_size)
            self.tools = ToolCalls(self.settings.tool_call_parser, core.tokenizer, self.model)
            self.mirror = BlockMirror(core.block_size)
            self._info = EngineInfo(self.worker_id, self.model, core.block_size,
                                    core.capacity_blocks, core.max_model_len, CAPABILITIES)
            self.core = core
            self._stats = snapshot(self)
        except BaseException as error:  # start() re-raises it in the caller
            ready.set_exception(error)
            return
        ready.set_result(None)
        try:
            self._serve(core)
        finally:
            core.shutdown()

    def _serve(self, core: Any) -> None:
        while True:
            commands = self._take_commands(core)
            if _STOP in commands:
                return
            for command in commands:
                self._apply(core, command)
            events: list[EngineEvent] = []
            now = self.clock()
            if core.has_work():
                started = time.perf_counter()
                outputs = core.step()
                self.busy_time += time.perf_counter() - started
                self.steps += 1
                events += self._hold_events(core, self.clock())
                events += self._outputs(core, outputs, self.clock())
            else:
                core.scheduler.expire(now)
                core.scheduler.flush_kv_events()
                events += self._hold_events(core, now)
            self.mirror.apply(core.scheduler.kv_event_publisher.take())
            self._stats = snapshot(self)
            if events:
                self._loop.call_soon_threadsafe(self._deliver, events)

    def _take_commands(self, core: Any) -> list[Any]:
        """Queued commands; blocks while the engine is idle (until a command comes or
        the next hold deadline passes)."""
        out = []
        if not core.has_work():
            deadline = core.scheduler.holds.next_deadline()
            wait = min(IDLE_WAKE_S, max(0.0, deadline - self.clock()))
            try:
                out.append(self._commands.get(timeout=wait if wait > 0 else None))
            except queue.Empty:
                return out
        while True:
            try:
                out.append(self._commands.get_nowait())
            except queue.Empty:
                return out

    def _apply(self, core: Any, command: Any) -> None:
        kind = command[0] if isinstance(command, tuple) else None
        if kind == "submit":
            _, request, ids, now = command
            ids = ids if ids is not None else self.prompts.token_ids(request)
            self._calls[request.request_id] = Call(request, ids, now)
            core.add(request.request_id, ids, self._sampling(request))
        elif kind == "abort":
            call = self._calls.pop(command[1], None)
            if call is not None:
                core.abort([command[1]])
                core.scheduler.release(call.request.session_id)
        elif kind == "release":
            core.scheduler.release(command[1])
        elif kind == "retain":
            _, session, decision, now, program = command
            result = core.scheduler.retain(session, decision, now, program)
            key = result.status or decision.action
            self.retained[key] = self.retained.get(key, 0) + 1
        elif kind == "call":
            _, fn, future = command
            try:
                future.set_result(fn(core))
            except BaseException as error:
                future.set_exception(error)

    def _sampling(self, request: LLMRequest) -> Any:
        from vllm import SamplingParams
        from vllm.sampling_params import RequestOutputKind

        from agentrt.runtime.engines.vllm import scheduler as keys

        options = {k: v for k, v in request.sampling.items() if k in SAMPLING_KEYS}
        n = request.max_tokens
        if request.messages is None:  # a counted call: exactly its reply length
            n = min(n, request.output_tokens_hint or n)
            options.update(min_tokens=n, ignore_eos=True)
        options.update(self.tools.sampling_overrides(request))
        hold = self.holding and not (request.last_call or request.last_turn)
        return SamplingParams(
            max_tokens=n, output_kind=RequestOutputKind.DELTA, **options,
            extra_args={keys.SESSION: request.session_id, keys.PROGRAM: request.program_id,
                        keys.REQUEST: request.request_id, keys.HOLD: hold,
                        keys.ARRIVAL: float(request.program_arrival),
                        keys.LAST: bool(request.last_call)})

    def _outputs(self, core: Any, outputs: list[Any], now: float) -> list[EngineEvent]:
        events: list[EngineEvent] = []
        for output in outputs:
            call = self._calls.get(output.request_id)
            if call is None or not call.add(output, now):
                continue
            del self._calls[output.request_id]
            done = call.done(self.worker_id, now, self.tools.parse)
            self.prompt_tokens += done.prompt_tokens
            self.hit_tokens += done.cached_tokens
            if call.request.messages is None:
                self.prompts.remember(reply_chain(call.request.prefix, done),
                                      call.prompt_ids + call.output_ids)
            core.scheduler.resolve(done.session_id, keep=bool(done.tool_calls))
            events.append(done)
        return events

    def _hold_events(self, core: Any, now: float) -> list[EngineEvent]:
        events: list[EngineEvent] = []
        for event in core.scheduler.take_hold_events():
            if event.kind == "preempted":
                call = self._calls.get(event.key)
                if call is not None:
                    call.preemptions += 1
                    events.append(Preempted(event.key, call.request.session_id,
                                            self.worker_id, event.at, "kv_full"))
            else:
                events.append(PinExpired(event.key, self.worker_id, event.at))
        return events

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
