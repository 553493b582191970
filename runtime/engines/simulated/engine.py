"""The simulated GPU worker: vLLM-v1-style continuous batching over real KV accounting,
with step times from the calibrated `PerfModel`.

    submit ─▶ BatchScheduler (batching.py): waiting ─▶ prefill chunks ─▶ DecodeBatch
    step(now) ─▶ expire pins ─▶ schedule ─▶ duration from running sums (PerfModel)
              ─▶ apply at now + duration ─▶ events (Preempted, PinExpired, RequestDone)

Pins (`kvcache.PinSet`) carry out TTL decisions (`retain`); they expire at iteration
starts, except those of sessions whose next request waits here; a session's pin passes
to its next request when that is admitted. With `pending_holds`, a finished call whose
reply calls a tool keeps its blocks held until the decision for it arrives (`retain`)
or the session is released: what bridges the hop to the core when the core runs in
another process. With a host tier (`host_blocks`), evicted
blocks go to host memory and an admission that reloads them is charged
`PerfModel.reload_time` on top of its iteration (they are not prefilled). `prefetch`
brings a paused session's host blocks back ahead of its next turn over the host link,
which copies while the GPU computes: the admission then waits only for what is still
on the link. Reloads and prefetches share one link, in order. `receive` takes in a
session moving from a peer worker with its KV (`movable_blocks` there), copied over
the peer link (NVLink or the network) with the same wait at admission.

`step(now, horizon)` may fuse a run of pure-decode iterations into one call (see
`_run_decodes`); its events and state equal those of stepping one iteration at a time.

What a sequence's KV holds (block size 16, synthetic output of n tokens)::

    | prompt: P tokens, committed when prefill ends | output run: n - 1 tokens |
    the last sampled token is never fed back, so at finish the engine commits
    prefix + extend_synthetic(key, n - 1), whose full blocks equal those of the
    client's prefix + extend_synthetic(key, n).
"""
from __future__ import annotations

import math

from agentrt.kvcache.eviction import EvictionPolicy
from agentrt.kvcache.manager import KVCacheManager
from agentrt.kvcache.pins import PinSet
from agentrt.kvcache.pressure import PressureRule
from agentrt.kvcache.prefix import TokenChain
from agentrt.runtime.core.messages import EngineEvent, EngineStats, LLMRequest, Preempted
from agentrt.runtime.engines.base import Capabilities, EngineInfo, EngineRefused, StepResult
from agentrt.runtime.engines.simulated.decode_cost import DecodeCost
from agentrt.runtime.engines.simulated.perf_model import EFFICIENCIES, Efficiencies, PerfModel
from agentrt.runtime.engines.simulated.responder import FillerResponder, Responder, Response
from agentrt.runtime.engines.simulated.batching import BatchScheduler
from agentrt.runtime.engines.simulated.keeping import SessionKeeping
from agentrt.runtime.engines.simulated.kv_moves import KVMoves
from agentrt.runtime.engines.simulated.sequence import Seq, output_key, respond_once

# The most iterations one fused call runs: bounds the time loop of a call.
MAX_FUSED_ITERATIONS = 4096


class SimulatedEngine(SessionKeeping, KVMoves):
    """An `Engine` (runtime.engines.base) whose GPU is a performance model."""

    def __init__(
        self,
        worker_id: str,
        perf: PerfModel,
        responder: Responder | None = None,
        *,
        block_size: int = 16,
        max_num_seqs: int = 256,
        max_batched_tokens: int = 8192,
        kv_blocks: int | None = None,
        seed: int = 0,
        eviction: str | EvictionPolicy = "lru",
        mem_util: float = 0.9,
        host_blocks: int = 0,
        pin_cap_fraction: float = 1.0,
        pressure_rule: PressureRule | None = None,
        pending_holds: bool = False,
        model_name: str | None = None,
    ) -> None:
        """`host_blocks`: a host-memory tier of that many blocks (0: none).
        `pin_cap_fraction`: pinned blocks stay within this fraction of the KV.
        `pressure_rule`: how to make room (kvcache.pressure); None keeps the engine's
        own rule (drop the latest pin while at most one request runs, else preempt the
        most recently admitted). `pending_holds`: hold a finished tool-calling
        session's blocks until its TTL decision arrives (see the module doc).
        `model_name`: the name calls use for the model (default: the registry's)."""
        if not 1 <= max_num_seqs < max_batched_tokens:
            raise ValueError(
                f"need 1 <= max_num_seqs < max_batched_tokens, got {max_num_seqs}, "
                f"{max_batched_tokens}"
            )
        self.worker_id = worker_id
        self.model = model_name or perf.model.name
        self.perf = perf
        self.responder = responder if responder is not None else FillerResponder()
        self.block_size = block_size
        self.max_num_seqs = max_num_seqs
        self.max_batched_tokens = max_batched_tokens
        self.seed = seed
        if kv_blocks is None:
            kv_blocks = perf.kv_capacity_tokens(mem_util) // block_size
        self.kv = KVCacheManager(kv_blocks, block_size, eviction, host_blocks)
        self.pins = PinSet(self.kv, pin_cap_fraction)
        self._sched = BatchScheduler(
            self.kv, self.pins, self._respond, max_num_seqs, max_batched_tokens, worker_id,
            pressure_rule,
        )
        self._decode_costs: dict[int, DecodeCost] = {}  # by batch size
        self._order = 0
        self.busy_time = 0.0
        self.steps = 0  # iterations run
        self._link_free_at = 0.0  # when the host link finishes its queued copies
        self._peer_free_at = 0.0  # when copies in from peers (`receive`) finish
        self.prefetched_tokens = 0
        self.received_tokens = 0
        self.pending_holds = pending_holds
        self.retained: dict[str, int] = {}  # hold status (or action) -> decisions
        self._info = EngineInfo(
            worker_id, self.model, block_size, kv_blocks,
            min(kv_blocks * block_size, perf.model.max_context),
            Capabilities(clock="stepped", retain=True, host_tier=host_blocks > 0,
                         receive=True, hints=self._hinted(), kv_state="exact"))

    @classmethod
    def from_names(
        cls, worker_id: str, model: str = "Llama-3.1-8B", gpu: str = "H100-SXM", tp: int = 1,
        efficiencies: Efficiencies = EFFICIENCIES, **kwargs,
    ) -> SimulatedEngine:
        """An engine for `model` on `tp` x `gpu`, by registry names (see hardware.py)."""
        return cls(worker_id, PerfModel(model, gpu, tp, efficiencies), **kwargs)

    def _hinted(self) -> bool:
        """Whether the eviction policy uses pause and resume hints (LRU does not)."""
        from agentrt.kvcache.eviction_belady import BeladyEviction
        from agentrt.kvcache.eviction_workflow import WorkflowAwareEviction

        return isinstance(self.kv.pool.eviction, (BeladyEviction, WorkflowAwareEviction))

    @property
    def info(self) -> EngineInfo:
        return self._info

    @property
    def capabilities(self) -> Capabilities:
        return self._info.capabilities

    # -- requests ------------------------------------------------------------------------

    def submit(self, request: LLMRequest, now: float) -> None:
        rid, prefix = request.request_id, request.prefix
        if rid in self._sched.seqs:
            raise ValueError(f"request {rid!r} is already queued or running")
        if prefix.block_size != self.block_size:
            raise ValueError(
                f"request {rid!r}: block size {prefix.block_size} != {self.block_size}"
            )
        need = request.prompt_tokens + request.max_tokens
        limit = min(self.kv.capacity_blocks * self.block_size, self.perf.model.max_context)
        if request.max_tokens < 1 or need > limit:
            raise EngineRefused(
                rid, f"request {rid!r} can never fit worker {self.worker_id!r}: prompt "
                f"{request.prompt_tokens} + max_tokens {request.max_tokens} must be <= {limit} "
                f"(KV capacity and context limit of {self.model}), max_tokens >= 1; "
                "shorten the conversation or lower max_tokens", limit)
        self._sched.add(Seq(request, self._order, now, prefix))
        self._order += 1

    def abort(self, request_id: str, now: float) -> bool:
        return self._sched.abort(request_id, now)

    def has_work(self) -> bool:
        return self._sched.has_work()

    def _respond(self, request: LLMRequest) -> Response:
        return respond_once(self.responder, self.seed, request)

    # -- the step ------------------------------------------------------------------------

    def step(self, now: float, horizon: float | None = None) -> StepResult:
        events = self.expire_pins(now)
        if not self._sched.has_work():
            return StepResult(0.0, events, iterations=0)
        if horizon is not None:
            # Iterations start before the next event and before the next pin deadline
            # (pins expire at iteration starts).
            stop = min(horizon, self._next_expiry(now))
            iterations = self._fusable_iterations(now, stop)
            if iterations > 1:
                return self._run_decodes(now, stop, iterations, events)
        return self._iterate(now, events)

    def _next_expiry(self, now: float) -> float:
        """When the next pin can expire. Pins already due (after `expire_pins(now)`)
        belong to sessions whose request waits here, and stay until it is admitted,
        which no pure-decode run does: skip them."""
        deadline = self.pins.next_deadline()
        if deadline > now:
            return deadline
        pins = self.pins
        return min((p.until for s in pins if (p := pins.get(s)).until > now), default=math.inf)

    def _iterate(self, now: float, events: list[EngineEvent]) -> StepResult:
        """One iteration of any kind: decodes, prefill chunks, admissions."""
        sched = self._sched
        batch = sched.schedule(now, events)
        num_decode = sched.decode.size
        duration = self.perf.step_time_totals(
            batch.tokens, batch.pairs, num_decode, sched.decode.advance(),
            num_decode + len(batch.chunks),
        )
        if batch.reloaded or batch.prefetch_wait:
            duration += self._link_stall(now, batch)
        end = now + duration
        if batch.preempted:
            events += [Preempted(s.rid, s.req.session_id, self.worker_id, end, "kv_full")
                       for s in batch.preempted]
        finished = sched.apply(batch, end)
        if finished:
            events += self._finished(finished, end)
        self.busy_time += duration
        self.steps += 1
        return StepResult(duration, events, batch.tokens, num_decode, len(sched.running))

    def _fusable_iterations(self, now: float, stop: float) -> int:
        """How many iterations a fused run from `now` may cover: 1 (an ordinary
        iteration) unless the next one is pure decode (nothing to prefill, nobody
        admissible) and the one after would start before `stop`; then as many as
        come before the first finish, fit the free blocks and MAX_FUSED_ITERATIONS.
        Growing decodes only take free blocks, so a queue head that does not fit
        before the run never fits during it."""
        sched, decode = self._sched, self._sched.decode
        size = decode.size
        if sched.prefilling or not size:
            return 1
        first = self.perf.step_time_totals(0, 0, size, decode.context + size, size)
        if now + first >= stop or sched.could_admit():
            return 1
        return int(min(
            decode.iterations_to_first_finish(),
            decode.iterations_within(self.kv.num_free_blocks),
            MAX_FUSED_ITERATIONS,
        ))

    def _run_decodes(
        self, now: float, stop: float, limit: int, events: list[EngineEvent]
    ) -> StepResult:
        """Run 1 to `limit` pure-decode iterations, each starting before `stop`.

        Iteration by iteration it does what `_iterate` would: the same block appends
        in the same order at the same times, the same step times added in the same
        order. Per iteration that is a few float operations (`DecodeBatch.run`); per
        sequence, one block append per `block_size` tokens, as in single steps."""
        sched = self._sched
        size = sched.decode.size
        cost = self._decode_costs.get(size)
        if cost is None:
            cost = self._decode_costs[size] = DecodeCost.of(self.perf, size)
        run = sched.decode.run(now, stop, limit, cost, sched.grow_decodes_in_room)
        end = run.end
        events += self._finished(sched.finish_decodes(end), end)
        self.busy_time += run.busy
        self.steps += run.iterations
        return StepResult(
            end - now, events, 0, size * run.iterations, len(sched.running), run.iterations
        )

    def iterations_to_next_finish(self) -> int | None:
        """A lower bound on the iterations (from the next one on) before this engine
        next finishes a request, if nothing is submitted meanwhile: None without work,
        1 while anything waits or prefills. With `min_iteration_time` it bounds when
        this engine's next RequestDone can come, which is what lets a driver fuse the
        decode iterations of other engines up to that time."""
        sched = self._sched
        if not sched.has_work():
            return None
        if sched.waiting or sched.prefilling or not sched.decode.size:
            return 1
        return sched.decode.iterations_to_first_finish()

    @property
    def min_iteration_time(self) -> float:
        """No iteration of this engine is shorter (one token, no context)."""
        perf = self.perf
        return min(perf.step_time_totals(0, 0, 1, 1, 1), perf.step_time_totals(1, 1, 0, 0, 1))

    @staticmethod
    def output_key(request_id: str) -> int:
        """The synthetic run key of a request's output (RequestDone.output_synthetic_key)."""
        return output_key(request_id)

    # -- reading ------------------------------------------------------------------------

    @property
    def decode_step_time(self) -> float:
        """A decode iteration of the running batch as it stands (the forward pass a
        swap can hide behind); the shortest iteration when nothing decodes."""
        decode = self._sched.decode
        return self.perf.decode_step_time(decode.size, decode.context)

    @property
    def running_context_tokens(self) -> int:
        """KV tokens of the decoding batch (what a recompute or swap would stall)."""
        return self._sched.decode.context

    def cached_prefix_tokens(self, prefix: TokenChain) -> int:
        return self.kv.match(prefix).tokens

    def stats(self) -> EngineStats:
        kv, sched = self.kv, self._sched
        hits = kv.stats
        return EngineStats(
            self.worker_id, len(sched.running), len(sched.waiting), kv.capacity_blocks,
            kv.num_used_blocks, kv.num_held_blocks, kv.num_cached_blocks, self.block_size,
            hits.hit_tokens, hits.miss_tokens, self.busy_time, self.steps,
            sched.decode.size, sched.decode.context,
        )

    def check_integrity(self) -> None:
        self.kv.check_integrity()
        self.check_bookkeeping()

    def check_bookkeeping(self) -> None:
        """The engine's own invariants, without the KV pool walk (cheap enough to run
        after every step of a long test). Raises AssertionError listing them."""
        problems = self._sched.violations() + self.pins.violations()
        assert not problems, "; ".join(problems)
