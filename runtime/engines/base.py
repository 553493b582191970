"""The Engine contract: what a worker's inference backend offers the core.

An engine owns one worker's batch and KV cache. Two kinds of engine plug into the same
worker (the Ray worker actor, or the simulator's worker stepping):

- a **stepped** engine runs on the driver's clock: the driver calls `step(now)` while
  `has_work()`, waits `StepResult.duration` (virtual seconds in the simulator, scaled
  wall seconds on Ray) and hands the step's events to the core. The simulated engine is
  one: deterministic, and as fast as the driver can step it.
- a **realtime** engine runs on its own clock (an HTTP server, vLLM in-process, a local
  asyncio engine): `start(emit)` begins serving, and completions reach the driver as
  events through `emit` as they happen. Nothing is slept on its behalf.

Both take `submit`, `abort` and `release` from the driver, report `stats()`, and
declare what else they can do in `capabilities`. The core asks for capabilities; it
never reaches into an engine's internals:

    retain      `retain(session, prefix, decision)` carries out a TTL decision (pin with
                a deadline, soft pin, offload, drop) on the engine's own KV blocks
    host_tier   offload decisions move KV to host memory; `prefetch` brings it back
    receive     `movable_blocks` / `receive`: a session moves between workers with its KV
    hints       `pause_hint`: what an eviction policy should know of a paused session
    kv_state    "exact": `cached_prefix_tokens` and stats are the engine's own state;
                "estimate": derived from what the engine reported (HTTP servers)

Times are seconds on the run's clock (`now` is always passed in; an engine never reads
a clock for decisions). Every event carries the time it happened on that clock.

    submit(req) ─▶ waiting ─▶ running (prefill ─▶ decode) ─▶ RequestDone
                                  ▲          │ out of KV
                                  └──────────┘ Preempted (recompute later)
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Literal, Protocol, runtime_checkable

from agentrt.kvcache.prefix import TokenChain
from agentrt.runtime.core.messages import EngineEvent, EngineStats, LLMRequest, RequestDone
from agentrt.runtime.core.retention.decision import PauseHint, PinDecision


class EngineRefused(ValueError):
    """The engine can never serve this request: its prompt plus `max_tokens` exceeds
    the engine's KV capacity or context limit (`limit_tokens`), or `max_tokens` < 1.
    The message names the request, the limit and the fix."""

    def __init__(self, request_id: str, message: str, limit_tokens: int | None = None) -> None:
        super().__init__(message)
        self.request_id = request_id
        self.limit_tokens = limit_tokens


def failed_call(request: LLMRequest, worker_id: str, now: float, error: str) -> RequestDone:
    """The RequestDone of a call that could not be served: finish reason "error", the
    reason, no tokens."""
    return RequestDone(
        request.request_id, request.session_id, request.program_id, worker_id,
        finished_at=now, prompt_tokens=0, cached_tokens=0, prefilled_tokens=0,
        output_tokens=0, finish_reason="error", error=error, dispatched_at=now,
        first_scheduled_at=now, first_token_at=now)


def submit_or_refuse(engine: "Engine", request: LLMRequest, now: float) -> RequestDone | None:
    """Submit `request`; if the engine refuses it, the RequestDone that tells its caller
    why (finish reason "error", the refusal's message, no tokens) instead of an
    exception, so a refused call ends like any other and frees its place."""
    try:
        engine.submit(request, now)
    except EngineRefused as refused:
        return failed_call(request, engine.worker_id, now, f"refused: {refused}")
    return None


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What an engine offers beyond submit / abort / release / stats."""

    clock: Literal["stepped", "realtime"] = "stepped"
    retain: bool = False
    host_tier: bool = False
    receive: bool = False
    hints: bool = False
    kv_state: Literal["exact", "estimate"] = "estimate"


@dataclass(frozen=True, slots=True)
class EngineInfo:
    """What the core learns about a worker when it joins: its identity, its KV
    geometry (`kv_capacity_blocks` None when the engine does not know it) and its
    capabilities."""

    worker_id: str
    model: str
    block_size: int
    kv_capacity_blocks: int | None
    max_context: int | None
    capabilities: Capabilities = field(default_factory=Capabilities)

    @property
    def kv_capacity_tokens(self) -> int | None:
        cap = self.kv_capacity_blocks
        return None if cap is None else cap * self.block_size


@dataclass(slots=True)
class StepResult:
    """What one engine step did. `duration` is the modeled time of the step; events
    carry timestamps at `now + duration` (PinExpired: at `now`). An idle step has
    duration 0, no events but expired pins, and 0 iterations. A fused step (see
    `SteppedEngine.step`) covers `iterations` batch iterations; `duration` and the
    token counts are their sums."""

    duration: float
    events: list[EngineEvent] = field(default_factory=list)
    prefill_tokens: int = 0
    decode_tokens: int = 0
    num_running: int = 0
    iterations: int = 1


@dataclass(frozen=True, slots=True)
class RetainResult:
    """What `retain` did: blocks held (pin, soft) or moved to host memory (offload),
    and the hold status ("held", "trimmed", "refused", "nothing_cached",
    "offloaded", or "" for a drop)."""

    blocks: int = 0
    status: str = ""


@runtime_checkable
class Engine(Protocol):
    """The contract every engine keeps.

    - `submit` queues a request; it raises `EngineRefused` (before queueing anything)
      when the request can never be served here. Each `request_id` is submitted once.
    - `abort` drops a queued or running request and frees what it held; it returns
      whether the request was here. An aborted request yields no RequestDone; an abort
      of an unknown id is a no-op.
    - `release` forgets a session: whatever the engine keeps for it (pins, pending
      holds, prefetches) goes; its blocks may stay cached and evictable.
    - `stats` is a snapshot, valid when taken. `check_integrity` raises AssertionError
      when the engine's accounting is inconsistent.
    """

    worker_id: str
    model: str

    @property
    def info(self) -> EngineInfo: ...

    def submit(self, request: LLMRequest, now: float) -> None: ...

    def abort(self, request_id: str, now: float) -> bool: ...

    def release(self, session_id: str, now: float) -> None: ...

    def cached_prefix_tokens(self, prefix: TokenChain) -> int:
        """How many leading tokens of `prefix` this engine holds now (exact or
        estimated, as `capabilities.kv_state` says). Reads only."""
        ...

    def stats(self) -> EngineStats: ...

    def check_integrity(self) -> None: ...


@runtime_checkable
class SteppedEngine(Engine, Protocol):
    def has_work(self) -> bool:
        """True while any request is waiting or running."""
        ...

    def step(self, now: float, horizon: float | None = None) -> StepResult:
        """Run one batch iteration starting at `now`.

        With `horizon` (the driver's next event: nothing reaches this engine before
        it), an engine may run several consecutive pure-decode iterations in one call,
        each starting before `horizon` and none but the last finishing a request. The
        result then equals that of calling `step` once per iteration at the successive
        start times: the same events at the same times, the same state afterwards.
        Engines that cannot fuse ignore `horizon`."""
        ...


EventSink = Callable[[list[EngineEvent]], None]


@runtime_checkable
class RealtimeEngine(Engine, Protocol):
    async def start(self, emit: EventSink) -> None:
        """Begin serving on the running event loop. From now on every event (a
        RequestDone with usage and finish reason, a Preempted, ...) is handed to
        `emit` as it happens, in the order it happened, from this loop. `submit`,
        `abort` and `release` are called from the same loop."""
        ...

    async def stop(self) -> None:
        """Stop serving: requests in flight are aborted (no RequestDone), connections
        closed. Idempotent."""
        ...


@runtime_checkable
class Retaining(Protocol):
    """capabilities.retain"""

    def retain(self, session_id: str, prefix: TokenChain, decision: PinDecision,
               now: float, program_id: str | None = None) -> RetainResult:
        """Carry out a TTL decision for the session's context `prefix` (prompt plus
        reply of its last call): "pin"/"soft" hold its cached blocks until
        `decision.until` (within the engine's pin cap; a pin passes to the session's
        next request when that is admitted, and gives way before running work is
        preempted), "offload" moves them to host memory (dropped without a host tier),
        "drop" holds nothing. Replaces any earlier pin of the session."""
        ...


@runtime_checkable
class HostTier(Protocol):
    """capabilities.host_tier"""

    def prefetch(self, session_id: str, prefix: TokenChain, now: float) -> int:
        """Start copying the host-memory blocks of `prefix` back to the GPU; the
        session's next admission waits until they land. Returns the blocks moved."""
        ...


@runtime_checkable
class KVReceiver(Protocol):
    """capabilities.receive"""

    def movable_blocks(self, prefix: TokenChain) -> int:
        """Leading full blocks of `prefix` held here (any tier): what a session moving
        to another worker can take along."""
        ...

    def receive(self, session_id: str, prefix: TokenChain, blocks: int, now: float,
                link: str = "nvlink") -> int:
        """A session moves here: copy in the first `blocks` full blocks of `prefix`
        from a peer over `link`; its next admission waits for the copy. Returns the
        tokens received (fewer when free blocks run short)."""
        ...


@runtime_checkable
class EvictionHints(Protocol):
    """capabilities.hints"""

    def pause_hint(self, session_id: str, prefix: TokenChain, hint: PauseHint,
                   now: float) -> None:
        """The session waits on a tool: what its blocks are worth to the eviction
        policy (see `PauseHint`)."""
        ...

    def resume_hint(self, session_id: str, prefix: TokenChain, now: float) -> None:
        """The session's next call is on its way here: its blocks are needed next."""
        ...
