"""The simulated engine's scheduler: which sequences run in each iteration, and their
KV blocks (vLLM v1 policy, over `KVCacheManager`'s check/act/free).

    schedule(now) ─▶ 1 decodes: one token per decoding sequence; one that needs a new
                       block and finds none gives up a pin or preempts (see `_make_room`)
                   ─▶ 2 running prefills: next chunk each, within the token budget
                   ─▶ 3 admit waiting requests by (priority, resumed first, submit order)
                       while seats, budget and KV allow (none after a preemption); a
                       session's pin passes to its admitted request (then unpinned)
    apply(batch, end) ─▶ prefill chunks done; sequences that sampled their last output

It knows no clock and no step time: the engine passes times in and charges the
iteration (see `SimulatedEngine`).
"""
from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Callable

from agentrt.kvcache.manager import KVCacheManager
from agentrt.kvcache.pins import PinSet
from agentrt.kvcache.pressure import PressureRule, RunningRequest, pressure_action
from agentrt.runtime.core.messages import EngineEvent, LLMRequest, PinExpired
from agentrt.runtime.engines.simulated.batch import StepBatch
from agentrt.runtime.engines.simulated.decode_batch import DecodeBatch
from agentrt.runtime.engines.simulated.responder import Response
from agentrt.runtime.engines.simulated.sequence import DECODE, PREFILL, WAITING, Seq


class BatchScheduler:
    def __init__(
        self, kv: KVCacheManager, pins: PinSet, respond: Callable[[LLMRequest], Response],
        max_num_seqs: int, max_batched_tokens: int, worker_id: str = "",
        pressure_rule: PressureRule | None = None,
    ) -> None:
        self.kv = kv
        self.pins = pins
        self.worker_id = worker_id
        # None: the engine's own rule (drop the latest pin while at most one sequence
        # runs, else preempt the most recently admitted); else a kvcache.pressure rule.
        self.pressure_rule = pressure_rule
        self.waiting_sessions: Counter[str] = Counter()  # sessions with a queued request
        self.respond = respond  # called once per request, at its first admission
        self.max_num_seqs = max_num_seqs
        self.max_batched_tokens = max_batched_tokens
        # Admission keeps 1% of the blocks free for running decodes (vLLM v0 watermark).
        self.watermark = max(1, kv.capacity_blocks // 100) * kv.block_size
        self.seqs: dict[str, Seq] = {}  # queued or running, by request id
        self.waiting: list[tuple] = []  # heap of Seq.queue_key()
        self.running: dict[str, Seq] = {}  # admission order
        self.prefilling: dict[str, Seq] = {}  # admission order
        self.decode = DecodeBatch(kv.block_size)
        self._admits = 0
        # session -> when its prefetched blocks finish arriving over the host link
        # (`SimulatedEngine.prefetch`); its next admission waits for that.
        self.prefetch_ready: dict[str, float] = {}

    # -- the queue ---------------------------------------------------------------------

    def add(self, seq: Seq) -> None:
        self.seqs[seq.rid] = seq
        self._enqueue(seq)

    def _enqueue(self, seq: Seq) -> None:
        heapq.heappush(self.waiting, seq.queue_key())
        self.waiting_sessions[seq.req.session_id] += 1

    def _dequeued(self, seq: Seq) -> None:
        sessions, sid = self.waiting_sessions, seq.req.session_id
        sessions[sid] -= 1
        if not sessions[sid]:
            del sessions[sid]

    def abort(self, request_id: str, now: float) -> bool:
        seq = self.seqs.pop(request_id, None)
        if seq is None:
            return False
        if seq.state == WAITING:
            self.waiting = [e for e in self.waiting if e[-1] != request_id]
            heapq.heapify(self.waiting)
            self._dequeued(seq)
        else:
            self.stop(seq, now)
        return True

    def has_work(self) -> bool:
        return bool(self.running or self.waiting)

    # -- scheduling an iteration -------------------------------------------------------

    def schedule(self, now: float, events: list[EngineEvent]) -> StepBatch:
        """Decide the iteration starting at `now`; pins dropped for room go to `events`."""
        batch = StepBatch()
        self.grow_decodes(now, batch, events)
        budget = self._continue_prefills(batch, self.max_batched_tokens - self.decode.size)
        if not batch.preempted:
            self._admit(now, budget, batch, events)
        return batch

    def grow_decodes(self, now: float, batch: StepBatch, events: list[EngineEvent]) -> None:
        """Give a block to each decoding sequence whose next token starts one."""
        decode = self.decode
        for seq in decode.due_growth():
            if seq.state != DECODE:
                continue  # preempted for an earlier one
            need = seq.kv_tokens(decode.tick) + 1
            if self._make_room(seq, need - seq.synced, now, batch, events):
                self.kv.append(seq.rid, need - seq.synced, now)
                seq.synced = need
                decode.file_growth(seq)

    def grow_decodes_in_room(self, now: float) -> None:
        """`grow_decodes` when the caller has checked that the free blocks cover every
        growth (`DecodeBatch.iterations_within`): no preemption, no pin dropped.
        Raises KVCacheFullError if they do not."""
        decode, append = self.decode, self.kv.append
        for seq in decode.due_growth():
            need = seq.kv_tokens(decode.tick) + 1
            append(seq.rid, need - seq.synced, now)
            seq.synced = need
            decode.file_growth(seq)

    def _make_room(
        self, seq: Seq, tokens: int, now: float, batch: StepBatch, events: list[EngineEvent]
    ) -> bool:
        """Free blocks until `seq` can grow by `tokens`: give up a pin or preempt, by
        the pressure rule (see `_give_up`). False if `seq` itself was preempted."""
        while not self.kv.can_append(seq.rid, tokens):
            victim = self._give_up(now, events)
            if victim is None:
                continue
            self.preempt(victim, now)
            batch.preempted.append(victim)
            if victim is seq:
                return False
        return True

    def _give_up(self, now: float, events: list[EngineEvent]) -> Seq | None:
        """Release one pin (None) or name the running sequence to preempt. Without a
        pressure rule: the latest-expiring pin while at most one sequence runs, else
        the most recently admitted sequence; with one, `kvcache.pressure`'s choice."""
        if self.pressure_rule is None:
            if len(self.running) <= 1 and self._drop_pin(self.pins.latest(), now, events):
                return None
            return next(reversed(self.running.values()))
        running = [RunningRequest(s.rid, s.req.program_arrival, s.admit_idx, s.req.last_call)
                   for s in self.running.values()]
        action = pressure_action(self.pins, running, now, self.pressure_rule)
        if action.kind == "release_pin":
            self._drop_pin(action.target, now, events)
            return None
        return self.running[action.target]

    def _continue_prefills(self, batch: StepBatch, budget: int) -> int:
        for seq in self.prefilling.values():
            if budget <= 0:
                break
            n = min(seq.chain.num_tokens - seq.computed, budget)
            batch.add(seq, n)
            budget -= n
        return budget

    def _admit(
        self, now: float, budget: int, batch: StepBatch, events: list[EngineEvent]
    ) -> None:
        deferred: list[tuple] = []  # forks whose parent has not prefilled yet
        while self.waiting and budget > 0 and len(self.running) < self.max_num_seqs:
            seq = self.seqs[self.waiting[0][-1]]
            if self._parent_prefilling(seq):
                deferred.append(heapq.heappop(self.waiting))
                continue
            extra = self.watermark if self.running else 0
            if not self.kv.can_allocate(seq.chain, extra):
                if self.running or not self._drop_pin(self._pin_to_drop(now), now, events):
                    break
                continue
            heapq.heappop(self.waiting)
            self._dequeued(seq)
            alloc = self.kv.allocate(seq.rid, seq.chain, now)
            # The new sequence now references the pinned prefix: unpinning costs nothing.
            self.pins.unpin(seq.req.session_id, now)
            self._start(seq, alloc.cached_tokens + alloc.reloaded_tokens, now)
            batch.reloaded += alloc.reloaded_tokens
            ready = self.prefetch_ready.pop(seq.req.session_id, None)
            if ready is not None and ready > now:
                batch.prefetch_wait = max(batch.prefetch_wait, ready - now)
            n = min(seq.chain.num_tokens - seq.computed, budget)
            batch.add(seq, n)
            budget -= n
        for key in deferred:
            heapq.heappush(self.waiting, key)

    def _parent_prefilling(self, seq: Seq) -> bool:
        """A fork waits while the request it forks from is waiting or prefilling: once
        that one's prompt blocks are committed, the fork finds them cached (SGLang's
        in-batch prefix sharing, instead of prefilling the same prompt k times)."""
        parent = self.seqs.get(seq.req.fork_of) if seq.req.fork_of else None
        return parent is not None and parent.state in (WAITING, PREFILL)

    def could_admit(self) -> bool:
        """Whether admission would take the head of the queue now (read-only)."""
        if not self.waiting or len(self.running) >= self.max_num_seqs:
            return False
        head = self.seqs[self.waiting[0][-1]]
        return self.kv.can_allocate(head.chain, self.watermark if self.running else 0)

    def _start(self, seq: Seq, cached: int, now: float) -> None:
        if seq.response is None:
            seq.first_scheduled_at = now
            seq.response = self.respond(seq.req)
        seq.state, seq.admit_idx = PREFILL, self._admits
        self._admits += 1
        seq.computed, seq.synced = cached, seq.chain.num_tokens
        seq.add_cached(cached)
        self.running[seq.rid] = seq
        self.prefilling[seq.rid] = seq

    def _pin_to_drop(self, now: float) -> str | None:
        if self.pressure_rule == "pins_first":
            return self.pins.weakest(now)
        return self.pins.latest()

    def _drop_pin(self, session_id: str | None, now: float, events: list[EngineEvent]) -> bool:
        if session_id is None:
            return False
        self.pins.unpin(session_id, now, "pressure")
        events.append(PinExpired(session_id, self.worker_id, now))
        return True

    # -- applying an iteration ---------------------------------------------------------

    def apply(self, batch: StepBatch, end: float) -> list[Seq]:
        """The iteration ended at `end` (the decode tick has advanced): take in its
        prefill chunks and retire the sequences that sampled their last output.
        Returns those, in order (prefills in batch order, then decodes)."""
        if not batch.chunks:
            return self.finish_decodes(end)
        finished = [seq for seq, n in batch.chunks if self._apply_prefill(seq, n, end)]
        return finished + self.finish_decodes(end)

    def finish_decodes(self, end: float) -> list[Seq]:
        """Retire the decodes whose last output the iteration ending at `end` sampled."""
        finished = self.decode.finishing(self.decode.tick - 1)
        for seq in finished:
            self._finish(seq, end)
        return finished

    def _apply_prefill(self, seq: Seq, n: int, end: float) -> bool:
        """True if the chunk completed the prompt and sampled the only output."""
        seq.add_prefilled(seq.computed, n)
        seq.computed += n
        if seq.computed < seq.chain.num_tokens:
            return False
        del self.prefilling[seq.rid]
        self.kv.commit(seq.rid, seq.chain, end)
        seq.out_done += 1  # the last chunk samples the next token
        if seq.first_token_at is None:
            seq.first_token_at = end
        if seq.out_done < seq.n_out:
            self.decode.add(seq)
            return False
        self._finish(seq, end)
        return True

    def _finish(self, seq: Seq, end: float) -> None:
        """Commit the output to the cache (all but the last token, never fed back)
        and retire the sequence."""
        chain = seq.output_chain(seq.n_out - 1)
        self.kv.append(seq.rid, chain.num_tokens - seq.synced, end)  # within its blocks
        seq.synced = chain.num_tokens
        self.kv.commit(seq.rid, chain, end)
        self.stop(seq, end)
        del self.seqs[seq.rid]

    # -- leaving the batch -------------------------------------------------------------

    def stop(self, seq: Seq, now: float) -> None:
        """Take a running sequence out of every running structure and free its blocks."""
        del self.running[seq.rid]
        if seq.state == PREFILL:
            self.prefilling.pop(seq.rid, None)
        elif seq.state == DECODE:
            self.decode.remove(seq)
        self.kv.free(seq.rid, now)
        seq.state = WAITING

    def preempt(self, seq: Seq, now: float) -> None:
        """Free `seq` and requeue it first in its priority class; its next admission
        recomputes whatever of prompt + outputs is no longer cached."""
        self.stop(seq, now)
        seq.preemptions += 1
        seq.resumed = True
        seq.chain = seq.output_chain(seq.out_done)
        self._enqueue(seq)

    # -- checks ------------------------------------------------------------------------

    def violations(self) -> list[str]:
        """Broken invariants of the queues against the KV manager (no pool walk)."""
        waiting = {e[-1] for e in self.waiting}
        sessions = Counter(self.seqs[r].req.session_id for r in waiting if r in self.seqs)
        out = [m for bad, m in (
            (len(waiting) != len(self.waiting), "a request is queued twice"),
            (not waiting.isdisjoint(self.running), "a request is both waiting and running"),
            (waiting | self.running.keys() != self.seqs.keys(), "lost or stray request"),
            (any(self.running[r].state != PREFILL for r in self.prefilling), "prefill state"),
            (sessions != self.waiting_sessions, "waiting sessions out of sync"),
        ) if bad]
        out += self.decode.violations([s for s in self.running.values() if s.state == DECODE])
        tick, bs = self.decode.tick, self.kv.block_size
        for rid, seq in self.running.items():
            held = seq.kv_tokens(tick) if seq.state == DECODE else seq.synced
            if self.kv.seq_num_tokens(rid) != seq.synced:
                out.append(f"{rid}: KV tokens out of sync")
            if self.kv.seq_num_blocks(rid) != -(-held // bs):
                out.append(f"{rid}: {held} tokens in wrong blocks")
        out += [f"waiting {rid} still holds KV" for rid in waiting if self.kv.has_seq(rid)]
        return out
