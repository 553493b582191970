"""The simulated GPU worker: vLLM-v1-style continuous batching over real KV accounting,
with step times from the calibrated `PerfModel`.

One `step(now)`::

    expire pins ─▶ 1 decodes: one token per decoding sequence; one that needs a new
                     block and finds none preempts the most recently admitted sequence
                 ─▶ 2 running prefills: next chunk each, within the token budget
                 ─▶ 3 admit waiting requests by (priority, resumed first, submit order)
                     while seats, budget and KV allow (none after a preemption)
                 ─▶ duration from running sums ─▶ apply: prefill chunks, finishes

Decoding costs no per-sequence Python work: each decoding sequence is filed under the
step (tick) at which it next needs a KV block and the tick at which it finishes, and
the context sum of the decode batch is a running total.

What a sequence's KV holds (block size 16, synthetic output of n tokens)::

    | prompt: P tokens, committed when prefill ends | output run: n - 1 tokens |
    the last sampled token is never fed back, so at finish the engine commits
    prefix + extend_synthetic(key, n - 1), whose full blocks equal those of the
    client's prefix + extend_synthetic(key, n).
"""
from __future__ import annotations

import heapq
import random
from dataclasses import dataclass, field

from kvcache.manager import KVCacheManager
from kvcache.prefix import TokenChain, stable_hash
from runtime.core.messages import (
    EngineEvent, EngineStats, LLMRequest, PinExpired, Preempted, RequestDone,
)
from runtime.engines.base import StepResult
from runtime.engines.perf_model import EFFICIENCIES, Efficiencies, PerfModel, attention_pairs
from runtime.engines.responder import FillerResponder, Responder, Response

_WAITING, _PREFILL, _DECODE = "waiting", "prefill", "decode"


@dataclass(slots=True, eq=False)
class _Seq:
    """One request inside the engine, across admissions and preemptions."""

    req: LLMRequest
    order: int  # submit order
    submitted_at: float
    chain: TokenChain  # what the current admission computes: prompt + outputs so far
    state: str = _WAITING
    resumed: bool = False
    response: Response | None = None
    admit_idx: int = 0
    computed: int = 0  # leading tokens of `chain` with KV
    out_done: int = 0  # output tokens sampled (set when leaving decode)
    synced: int = 0  # tokens the KV manager holds for it (lags by < 1 block in decode)
    # Decode clock: first decode tick, and KV tokens then. Before tick t the sequence
    # holds kv0 + t - d0 tokens and has sampled out0 + t - d0 outputs.
    d0: int = 0
    out0: int = 0
    kv0: int = 0
    grow_tick: int = -1
    finish_tick: int = -1
    # Usage: `covered` is how far into the prompt it ever had KV.
    covered: int = 0
    cached: int = 0
    prefilled: int = 0
    recomputed: int = 0
    preemptions: int = 0
    first_scheduled_at: float | None = None
    first_token_at: float | None = None

    @property
    def rid(self) -> str:
        return self.req.request_id

    @property
    def n_out(self) -> int:
        return self.response.output_tokens if self.response else 0

    def add_cached(self, tokens: int) -> None:
        got = min(tokens, self.req.prompt_tokens)
        self.cached += max(0, got - self.covered)
        self.covered = max(self.covered, got)

    def add_prefilled(self, start: int, n: int) -> None:
        """Count a chunk [start, start + n); what lies below `covered` or past the
        prompt (outputs recomputed after a preemption) is recomputation."""
        end = min(start + n, self.req.prompt_tokens)
        new = max(0, end - max(start, self.covered))
        self.prefilled += n
        self.recomputed += n - new
        self.covered = max(self.covered, end)


@dataclass(slots=True)
class _Batch:
    """Prefill chunks of one step, with the sums the perf model needs."""

    chunks: list[tuple[_Seq, int]] = field(default_factory=list)
    tokens: int = 0
    pairs: int = 0
    preempted: list[_Seq] = field(default_factory=list)

    def add(self, seq: _Seq, n: int) -> None:
        self.chunks.append((seq, n))
        self.tokens += n
        self.pairs += attention_pairs(n, seq.computed)


class SimulatedEngine:
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
        eviction: str = "lru",
        mem_util: float = 0.9,
    ) -> None:
        if not 1 <= max_num_seqs < max_batched_tokens:
            raise ValueError(
                f"need 1 <= max_num_seqs < max_batched_tokens, got {max_num_seqs}, "
                f"{max_batched_tokens}"
            )
        self.worker_id = worker_id
        self.model = perf.model.name
        self.perf = perf
        self.responder = responder if responder is not None else FillerResponder()
        self.block_size = block_size
        self.max_num_seqs = max_num_seqs
        self.max_batched_tokens = max_batched_tokens
        self.seed = seed
        if kv_blocks is None:
            kv_blocks = perf.kv_capacity_tokens(mem_util) // block_size
        self.kv = KVCacheManager(kv_blocks, block_size, eviction)
        # Admission keeps 1% of the blocks free for running decodes (vLLM v0 watermark).
        self._watermark = max(1, kv_blocks // 100) * block_size
        self._seqs: dict[str, _Seq] = {}  # queued or running, by request id
        self._waiting: list[tuple] = []  # heap of (priority, 0 if resumed else 1, order, id)
        self._running: dict[str, _Seq] = {}  # admission order
        self._prefilling: dict[str, _Seq] = {}  # admission order
        self._grow_at: dict[int, list[_Seq]] = {}
        self._finish_at: dict[int, list[_Seq]] = {}
        self._num_decode = 0
        self._ctx_base = 0  # sum over decoding sequences of their KV tokens before `_tick`
        self._pins: dict[str, float] = {}
        self._pin_heap: list[tuple[float, str]] = []
        self._tick = self._order = self._admits = 0
        self.busy_time = 0.0
        self.steps = 0

    @classmethod
    def from_names(
        cls, worker_id: str, model: str = "Llama-3.1-8B", gpu: str = "H100-SXM", tp: int = 1,
        efficiencies: Efficiencies = EFFICIENCIES, **kwargs,
    ) -> SimulatedEngine:
        """An engine for `model` on `tp` x `gpu`, by registry names (see hardware.py)."""
        return cls(worker_id, PerfModel(model, gpu, tp, efficiencies), **kwargs)

    # -- requests ------------------------------------------------------------------------

    def submit(self, request: LLMRequest, now: float) -> None:
        rid, prefix = request.request_id, request.prefix
        if rid in self._seqs:
            raise ValueError(f"request {rid!r} is already queued or running")
        if prefix.block_size != self.block_size:
            raise ValueError(
                f"request {rid!r}: block size {prefix.block_size} != {self.block_size}"
            )
        need = request.prompt_tokens + request.max_tokens
        limit = min(self.kv.capacity_blocks * self.block_size, self.perf.model.max_context)
        if request.max_tokens < 1 or need > limit:
            raise ValueError(
                f"request {rid!r} can never fit worker {self.worker_id!r}: prompt "
                f"{request.prompt_tokens} + max_tokens {request.max_tokens} must be <= {limit} "
                f"(KV capacity and context limit of {self.model}), max_tokens >= 1"
            )
        seq = _Seq(request, self._order, now, prefix)
        self._order += 1
        self._seqs[rid] = seq
        self._enqueue(seq)

    def abort(self, request_id: str, now: float) -> bool:
        seq = self._seqs.pop(request_id, None)
        if seq is None:
            return False
        if seq.state == _WAITING:
            self._waiting = [e for e in self._waiting if e[-1] != request_id]
            heapq.heapify(self._waiting)
        else:
            self._stop(seq, now)
        return True

    def has_work(self) -> bool:
        return bool(self._running or self._waiting)

    # -- the step ------------------------------------------------------------------------

    def step(self, now: float) -> StepResult:
        events: list[EngineEvent] = self.expire_pins(now)
        if not self.has_work():
            return StepResult(0.0, events)
        batch = _Batch()
        self._grow_decodes(now, batch, events)
        budget = self._continue_prefills(batch, self.max_batched_tokens - self._num_decode)
        if not batch.preempted:
            self._admit(now, budget, batch, events)
        num_decode = self._num_decode
        self._ctx_base += num_decode
        duration = self.perf.step_time_totals(
            batch.tokens, batch.pairs, num_decode, self._ctx_base, num_decode + len(batch.chunks)
        )
        end = now + duration
        events += [Preempted(s.rid, s.req.session_id, self.worker_id, end, "kv_full")
                   for s in batch.preempted]
        tick, self._tick = self._tick, self._tick + 1
        for seq, n in batch.chunks:
            self._apply_prefill(seq, n, end, events)
        for seq in self._finish_at.pop(tick, ()):
            self._finish(seq, end, events)
        self.busy_time += duration
        self.steps += 1
        return StepResult(duration, events, batch.tokens, num_decode, len(self._running))

    def _grow_decodes(self, now: float, batch: _Batch, events: list[EngineEvent]) -> None:
        """Give a block to each decoding sequence whose next token starts one."""
        due = self._grow_at.pop(self._tick, None)
        if not due:
            return
        for seq in sorted(due, key=lambda s: s.admit_idx):
            if seq.state != _DECODE:
                continue  # preempted for an earlier one
            need = seq.kv0 + self._tick - seq.d0 + 1
            if self._make_room(seq, need - seq.synced, now, batch, events):
                self.kv.append(seq.rid, need - seq.synced, now)
                seq.synced = need
                self._file_growth(seq)

    def _make_room(
        self, seq: _Seq, tokens: int, now: float, batch: _Batch, events: list[EngineEvent]
    ) -> bool:
        """Free blocks until `seq` can grow by `tokens`: drop pins while at most one
        sequence runs (Continuum's rule), else preempt the most recently admitted.
        False if `seq` itself was preempted."""
        while not self.kv.can_append(seq.rid, tokens):
            if len(self._running) <= 1 and self._drop_latest_pin(now, events):
                continue
            victim = next(reversed(self._running.values()))
            self._preempt(victim, now)
            batch.preempted.append(victim)
            if victim is seq:
                return False
        return True

    def _continue_prefills(self, batch: _Batch, budget: int) -> int:
        for seq in self._prefilling.values():
            if budget <= 0:
                break
            n = min(seq.chain.num_tokens - seq.computed, budget)
            batch.add(seq, n)
            budget -= n
        return budget

    def _admit(self, now: float, budget: int, batch: _Batch, events: list[EngineEvent]) -> None:
        while self._waiting and budget > 0 and len(self._running) < self.max_num_seqs:
            seq = self._seqs[self._waiting[0][-1]]
            extra = self._watermark if self._running else 0
            if not self.kv.can_allocate(seq.chain, extra):
                if self._running or not self._drop_latest_pin(now, events):
                    break
                continue
            heapq.heappop(self._waiting)
            self._start(seq, self.kv.allocate(seq.rid, seq.chain, now).cached_tokens, now)
            n = min(seq.chain.num_tokens - seq.computed, budget)
            batch.add(seq, n)
            budget -= n

    def _start(self, seq: _Seq, cached: int, now: float) -> None:
        if seq.response is None:
            seq.first_scheduled_at = now
            seq.response = self._respond(seq.req)
        seq.state, seq.admit_idx = _PREFILL, self._admits
        self._admits += 1
        seq.computed, seq.synced = cached, seq.chain.num_tokens
        seq.add_cached(cached)
        self._running[seq.rid] = seq
        self._prefilling[seq.rid] = seq

    def _respond(self, req: LLMRequest) -> Response:
        """Ask the responder once, with an rng that depends only on (seed, request)."""
        rng = random.Random(stable_hash(self.seed, req.request_id))
        r = self.responder.respond(req, rng)
        if not 1 <= r.output_tokens <= req.max_tokens or (
            r.token_ids is not None and len(r.token_ids) != r.output_tokens
        ):
            raise ValueError(
                f"responder {type(self.responder).__name__} broke its contract on "
                f"{req.request_id!r}: output_tokens={r.output_tokens} (max_tokens "
                f"{req.max_tokens}), token_ids of length "
                f"{None if r.token_ids is None else len(r.token_ids)}"
            )
        return r

    # -- applying a step -------------------------------------------------------------------

    def _apply_prefill(self, seq: _Seq, n: int, end: float, events: list[EngineEvent]) -> None:
        seq.add_prefilled(seq.computed, n)
        seq.computed += n
        if seq.computed < seq.chain.num_tokens:
            return
        del self._prefilling[seq.rid]
        self.kv.commit(seq.rid, seq.chain, end)
        seq.out_done += 1  # the last chunk samples the next token
        if seq.first_token_at is None:
            seq.first_token_at = end
        if seq.out_done >= seq.n_out:
            self._finish(seq, end, events)
            return
        seq.state, seq.d0, seq.out0, seq.kv0 = _DECODE, self._tick, seq.out_done, seq.synced
        seq.finish_tick = seq.d0 + seq.n_out - seq.out0 - 1
        self._finish_at.setdefault(seq.finish_tick, []).append(seq)
        self._file_growth(seq)
        self._num_decode += 1
        self._ctx_base += seq.kv0

    def _file_growth(self, seq: _Seq) -> None:
        """File `seq` under the first tick whose token overflows its blocks."""
        bs = self.block_size
        slots = -(-seq.synced // bs) * bs
        seq.grow_tick = seq.d0 + slots - seq.kv0
        if seq.grow_tick <= seq.finish_tick:
            self._grow_at.setdefault(seq.grow_tick, []).append(seq)

    def _finish(self, seq: _Seq, end: float, events: list[EngineEvent]) -> None:
        n = seq.n_out
        chain = self.output_chain(seq, n - 1)
        self.kv.append(seq.rid, chain.num_tokens - seq.synced, end)  # within its blocks
        seq.synced = chain.num_tokens
        self.kv.commit(seq.rid, chain, end)
        self._stop(seq, end)
        del self._seqs[seq.rid]
        r = seq.response
        events.append(RequestDone(
            request_id=seq.rid, session_id=seq.req.session_id,
            program_id=seq.req.program_id, worker_id=self.worker_id, finished_at=end,
            prompt_tokens=seq.req.prompt_tokens, cached_tokens=seq.cached,
            prefilled_tokens=seq.prefilled, output_tokens=n, text=r.text,
            tool_calls=list(r.tool_calls), finish_reason=r.finish_reason,
            output_token_ids=r.token_ids,
            output_synthetic_key=None if r.token_ids is not None else self.output_key(seq.rid),
            dispatched_at=seq.submitted_at, first_scheduled_at=seq.first_scheduled_at,
            first_token_at=seq.first_token_at, preemptions=seq.preemptions,
            recomputed_tokens=seq.recomputed,
        ))

    def output_chain(self, seq: _Seq, outputs: int) -> TokenChain:
        """The request's prefix extended by its first `outputs` output tokens."""
        if outputs == 0:
            return seq.req.prefix
        chain = seq.req.prefix.copy()
        ids = seq.response.token_ids
        if ids is not None:
            chain.extend_tokens(ids[:outputs])
        else:
            chain.extend_synthetic(self.output_key(seq.rid), outputs)
        return chain

    @staticmethod
    def output_key(request_id: str) -> int:
        """The synthetic run key of a request's output (RequestDone.output_synthetic_key)."""
        return stable_hash("out", request_id)

    # -- leaving the batch -----------------------------------------------------------------

    def _stop(self, seq: _Seq, now: float) -> None:
        """Take a running sequence out of every running structure and free its blocks."""
        del self._running[seq.rid]
        if seq.state == _PREFILL:
            self._prefilling.pop(seq.rid, None)
        elif seq.state == _DECODE:
            seq.out_done = seq.out0 + self._tick - seq.d0
            self._num_decode -= 1
            self._ctx_base -= seq.kv0 + self._tick - seq.d0
            _unfile(self._grow_at, seq.grow_tick, seq)
            _unfile(self._finish_at, seq.finish_tick, seq)
        self.kv.free(seq.rid, now)
        seq.state = _WAITING

    def _preempt(self, seq: _Seq, now: float) -> None:
        """Free `seq` and requeue it first in its priority class; its next admission
        recomputes whatever of prompt + outputs is no longer cached."""
        self._stop(seq, now)
        seq.preemptions += 1
        seq.resumed = True
        seq.chain = self.output_chain(seq, seq.out_done)
        self._enqueue(seq)

    def _enqueue(self, seq: _Seq) -> None:
        key = (seq.req.priority, 0 if seq.resumed else 1, seq.order, seq.rid)
        heapq.heappush(self._waiting, key)

    # -- pins -------------------------------------------------------------------------

    def pin(self, session_id: str, prefix: TokenChain, until: float, now: float) -> int:
        held = self.kv.hold(session_id, prefix, now)
        if held:
            self._pins[session_id] = until
            heapq.heappush(self._pin_heap, (until, session_id))
        else:
            self._pins.pop(session_id, None)
        return held

    def unpin(self, session_id: str, now: float) -> None:
        self._pins.pop(session_id, None)
        self.kv.unhold(session_id, now)

    def release(self, session_id: str, now: float) -> None:
        self.unpin(session_id, now)

    def expire_pins(self, now: float) -> list[EngineEvent]:
        """Drop pins whose deadline is <= now (step calls this first); one PinExpired
        (at `now`) per pin dropped."""
        heap, out = self._pin_heap, []
        while heap and heap[0][0] <= now:
            until, session = heapq.heappop(heap)
            if self._pins.get(session) == until:
                self.unpin(session, now)
                out.append(PinExpired(session, self.worker_id, now))
        return out

    def _drop_latest_pin(self, now: float, events: list[EngineEvent]) -> bool:
        if not self._pins:
            return False
        session = max(self._pins, key=lambda s: (self._pins[s], s))
        self.unpin(session, now)
        events.append(PinExpired(session, self.worker_id, now))
        return True

    # -- reading ------------------------------------------------------------------------

    def cached_prefix_tokens(self, prefix: TokenChain) -> int:
        return self.kv.match(prefix).tokens

    def stats(self) -> EngineStats:
        kv = self.kv
        hits = kv.stats
        return EngineStats(
            self.worker_id, len(self._running), len(self._waiting), kv.capacity_blocks,
            kv.num_used_blocks, kv.num_held_blocks, kv.num_cached_blocks, self.block_size,
            hits.hit_tokens, hits.miss_tokens, self.busy_time, self.steps,
        )

    def check_integrity(self) -> None:
        self.kv.check_integrity()
        self.check_bookkeeping()

    def check_bookkeeping(self) -> None:
        """The engine's own invariants, without the KV pool walk (cheap enough to run
        after every step of a long test)."""
        waiting = {e[-1] for e in self._waiting}
        assert len(waiting) == len(self._waiting), "a request is queued twice"
        assert waiting.isdisjoint(self._running), "a request is both waiting and running"
        assert waiting | self._running.keys() == self._seqs.keys(), "lost or stray request"
        decode = [s for s in self._running.values() if s.state == _DECODE]
        assert self._num_decode == len(decode), "decode count drifted"
        assert self._ctx_base == sum(s.kv0 + self._tick - s.d0 for s in decode), "context sum"
        assert all(self._running[r].state == _PREFILL for r in self._prefilling)
        for rid, seq in self._running.items():
            assert self.kv.seq_num_tokens(rid) == seq.synced, f"{rid}: KV tokens out of sync"
            held = seq.kv0 + self._tick - seq.d0 if seq.state == _DECODE else seq.synced
            blocks = -(-held // self.block_size)
            assert self.kv.seq_num_blocks(rid) == blocks, f"{rid}: {held} tokens in wrong blocks"
        for rid in waiting:
            assert not self.kv.has_seq(rid), f"waiting {rid} still holds KV"
        for session in self._pins:
            assert self.kv.held_blocks(session) > 0, f"pin of {session} holds nothing"


def _unfile(index: dict[int, list[_Seq]], tick: int, seq: _Seq) -> None:
    bucket = index.get(tick)
    if bucket and seq in bucket:
        bucket.remove(seq)
        if not bucket:
            del index[tick]
