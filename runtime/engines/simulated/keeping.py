"""What a simulated engine keeps of a session between its calls: TTL decisions carried
out on its pins (`retain`), holds pending a decision, eviction hints, and pin expiry.
A mixin of `SimulatedEngine` (its `pins`, `kv`, `_sched`, `worker_id`)."""
from __future__ import annotations

import math

from agentrt.kvcache.eviction_belady import BeladyEviction
from agentrt.kvcache.eviction_workflow import WorkflowAwareEviction
from agentrt.kvcache.prefix import TokenChain
from agentrt.runtime.core.messages import EngineEvent, PinExpired, RequestDone
from agentrt.runtime.core.retention.apply import apply_decision
from agentrt.runtime.core.retention.decision import PauseHint, PinDecision
from agentrt.runtime.core.session_chain import reply_chain
from agentrt.runtime.engines.base import RetainResult


class SessionKeeping:
    """The engine's side of retention (see the module doc)."""

    def _finished(self, seqs, end: float) -> list[RequestDone]:
        """The RequestDones of sequences that just finished (their blocks freed):
        a Belady oracle learns the access ran; with pending holds, a reply that calls
        a tool keeps its session's blocks held until the decision comes."""
        dones = [s.done_event(self.worker_id, end) for s in seqs]
        eviction = self.kv.pool.eviction
        for seq, done in zip(seqs, dones):
            if isinstance(eviction, BeladyEviction):
                eviction.accessed(done.session_id)
            req = seq.req
            if (self.pending_holds and done.tool_calls and not req.last_call
                    and not req.last_turn):
                self.pins.pin(done.session_id, reply_chain(req.prefix, done), math.inf, end,
                              program_id=done.program_id)
        return dones

    # -- pins -------------------------------------------------------------------------

    def retain(self, session_id: str, prefix: TokenChain, decision: PinDecision,
               now: float, program_id: str | None = None) -> RetainResult:
        applied = apply_decision(decision, self.pins, session_id, prefix, now, program_id)
        if applied.pin is not None:
            result = RetainResult(applied.pin.blocks, str(applied.pin.status))
        elif applied.offload is not None:
            result = RetainResult(applied.offload.stored, "offloaded")
        else:
            result = RetainResult()
        key = result.status or decision.action
        self.retained[key] = self.retained.get(key, 0) + 1
        return result

    def pin(self, session_id: str, prefix: TokenChain, until: float, now: float) -> int:
        """A hard pin until `until` (a `retain` with a "pin" decision, for tests)."""
        return self.pins.pin(session_id, prefix, until, now).blocks

    def unpin(self, session_id: str, now: float) -> None:
        self.pins.unpin(session_id, now)

    def release(self, session_id: str, now: float) -> None:
        self.pins.unpin(session_id, now, "program_end")
        self._sched.prefetch_ready.pop(session_id, None)
        eviction = self.kv.pool.eviction
        if isinstance(eviction, WorkflowAwareEviction):
            eviction.session_finished(session_id)

    # -- eviction hints -----------------------------------------------------------------

    def pause_hint(self, session_id: str, prefix: TokenChain, hint: PauseHint,
                   now: float) -> None:
        eviction = self.kv.pool.eviction
        if isinstance(eviction, WorkflowAwareEviction):
            eviction.session_paused(session_id, prefix.hashes, now, p_reuse=hint.p_reuse,
                                    gap_s=hint.gap_s, rebuild_cost_s=hint.rebuild_s)
        elif isinstance(eviction, BeladyEviction) and hint.resume_at is not None:
            eviction.expect(session_id, prefix.hashes, hint.resume_at)

    def resume_hint(self, session_id: str, prefix: TokenChain, now: float) -> None:
        eviction = self.kv.pool.eviction
        if isinstance(eviction, WorkflowAwareEviction):
            eviction.session_resumed(session_id, prefix.hashes, now)

    def expire_pins(self, now: float) -> list[EngineEvent]:
        """Drop pins whose deadline is <= now (step calls this first), except those of
        sessions whose next request waits here; one PinExpired (at `now`) per pin
        dropped."""
        if not self.pins:
            return []
        released = self.pins.expire(now, self._sched.waiting_sessions)
        return [PinExpired(r.session_id, self.worker_id, now) for r in released]
