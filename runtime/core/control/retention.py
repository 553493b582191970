"""KV retention across tool calls, once for the cluster: the glue between the TTL
policy, the duration model and the workers that hold each session's KV.

    a call finishes        turns +1; queue delay and "cache lost" to the policy
      its reply calls a tool
                          ─▶ pause hint (eviction policies: reuse odds, gap, rebuild cost)
                          ─▶ PinRequest (ProgramFacts, EngineFacts from the worker's last
                             stats and its cost model) ─▶ TTLPolicy.decide
                          ─▶ transport.retain on the worker that ran the call
                          ─▶ PinNote on the RequestDone (what the trace shows)
                          ─▶ with a host tier: a prefetch timer before the tool's end
    the tool returns       duration model records it (model seconds)
    the session calls again   step transition "turn"; resume hint; prefetch cancelled
    the session ends       step transition "end" if it was on a tool
    the program ends       the policy learns its number of calls (Continuum's eta)

There is one duration model, one set of step transitions and one policy instance for
the whole cluster, in whichever driver runs the control; decisions read only what the
control was told, so both drivers decide alike.
"""
from __future__ import annotations

import heapq
import math
from dataclasses import dataclass
from typing import Protocol

from agentrt.kvcache.eviction_workflow import StepTransitions
from agentrt.kvcache.prefix import TokenChain
from agentrt.runtime.core.decisions import Decision, Retained
from agentrt.runtime.core.messages import EngineStats, LLMRequest, PinNote, RequestDone
from agentrt.runtime.core.retention import (
    EngineFacts, PauseHint, PinDecision, PinRequest, ProgramFacts, TTLPolicy,
    make_ttl_policy,
)
from agentrt.runtime.core.session_chain import reply_chain
from agentrt.runtime.core.control.transport import Transport
from agentrt.runtime.engines.base import EngineInfo
from agentrt.toolmgr.durations import DurationModel


def _step_time(cost, stats: EngineStats) -> float:
    """One decode iteration of the worker's running batch, from its model's cost."""
    step = getattr(cost, "decode_step_time", None)
    return step(stats.decoding, stats.running_context_tokens) if step is not None else 0.0


class RebuildCost(Protocol):
    """What rebuilding a context costs on a worker (a PerfModel has all three)."""

    def recompute_time(self, tokens: int) -> float: ...
    def reload_time(self, tokens: int) -> float: ...
    @property
    def kv_bytes_per_token(self) -> float: ...


@dataclass(slots=True)
class _Paused:
    """A session waiting on a tool, as last decided."""

    worker_id: str
    tool: str
    agent: str
    prefix: TokenChain
    prefetch: bool = False  # a prefetch timer is set for it


class RetentionControl:
    """See the module doc. `ttl` None: no TTL decisions (eviction hints still go)."""

    def __init__(self, ttl: str | None, cost: RebuildCost | None, transport: Transport,
                 min_samples: int = 100, decisions: list[Decision] | None = None) -> None:
        self.policy: TTLPolicy | None = make_ttl_policy(ttl) if ttl is not None else None
        self.durations = DurationModel(min_samples=min_samples)
        self.transitions = StepTransitions()
        self.cost = cost
        self.transport = transport
        self.decided: dict[str, int] = {}  # action -> count
        self.prefetches = 0  # prefetches sent
        self._log = decisions  # None: not recording
        self._workers: dict[str, EngineInfo] = {}
        self._costs: dict[str, RebuildCost] = {}  # per worker, where models differ
        self._turns: dict[str, int] = {}  # program id -> its calls finished
        self._context: dict[str, int] = {}  # session -> tokens after its last call
        self._ran_on: dict[str, str] = {}  # session -> worker that ran its last call
        self._paused: dict[str, _Paused] = {}
        self._primed: set[str] = set()
        self._timers: list[tuple[float, int, str]] = []  # (time, seq, session) prefetches
        self._seq = 0

    def attach(self, info: EngineInfo, cost: RebuildCost | None = None) -> None:
        """A worker joins; `cost`: its model's rebuild costs (default: the control's)."""
        self._workers[info.worker_id] = info
        if cost is not None:
            self._costs[info.worker_id] = cost

    def detach(self, worker_id: str) -> None:
        self._workers.pop(worker_id, None)
        self._costs.pop(worker_id, None)
        for session, paused in list(self._paused.items()):
            if paused.worker_id == worker_id:
                del self._paused[session]
        for session, worker in list(self._ran_on.items()):
            if worker == worker_id:
                del self._ran_on[session]

    # -- calls ---------------------------------------------------------------------
    def submitted(self, request: LLMRequest) -> None:
        """The session's next call arrived: the worker that ran its last call keeps its
        blocks for it."""
        paused = self._paused.pop(request.session_id, None)
        if paused is not None:
            self.transitions.record(paused.agent, paused.tool, "turn")
        home = self._ran_on.get(request.session_id)
        if home is not None and self._can(home, "hints"):
            self.transport.resume_hint(home, request.session_id, request.prefix)

    def finished(self, request: LLMRequest, done: RequestDone, stats: EngineStats | None,
                 now: float) -> None:
        """A call finished on `done.worker_id`; `stats`: that worker's snapshot after the
        step. Sets `done.kv_pin` when the reply calls a tool and a policy decides."""
        pid, session = done.program_id, done.session_id
        self._turns[pid] = turns = self._turns.get(pid, 0) + 1
        before = request.context_before
        if before is None:
            before = self._context.get(session, 0)
        self._context[session] = done.prompt_tokens + done.output_tokens
        self._ran_on[session] = done.worker_id
        if self.policy is not None and done.first_scheduled_at is not None:
            # A surviving context is cached in whole blocks of what the engine stored:
            # all of it but the reply's last token (never fed back).
            block = request.prefix.block_size
            lost = before > 0 and done.cached_tokens < (before - 1) // block * block
            self.policy.on_queue_delay(max(0.0, done.first_scheduled_at - done.queued_at), lost)
        if done.tool_calls and done.finish_reason != "aborted":
            self._paused_on_tool(request, done, stats, turns, now)

    def _paused_on_tool(self, request: LLMRequest, done: RequestDone,
                        stats: EngineStats | None, turns: int, now: float) -> None:
        """The turn waits on its first tool call's tool."""
        worker, session, tool = done.worker_id, done.session_id, done.tool_calls[0].name
        hints, decides = self._can(worker, "hints"), (self.policy is not None
                                                      and self._can(worker, "retain"))
        if not (hints or decides):
            self._paused[session] = _Paused(worker, tool, request.agent, request.prefix)
            return  # nobody needs the context's blocks: skip building its chain
        chain = reply_chain(request.prefix, done)
        tokens = chain.num_tokens
        paused = _Paused(worker, tool, request.agent, chain)
        self._paused[session] = paused
        facts = self._facts(worker, stats, tokens)
        if hints:
            resume = None if request.tool_hint_s is None else now + request.tool_hint_s
            hint = PauseHint(tool, request.agent,
                             self.transitions.probability(request.agent, tool, "turn"),
                             self.durations.mean(tool), facts.rebuild_s, resume)
            self.transport.pause_hint(worker, session, chain, hint)
        if not decides:
            return  # nothing to decide, or an engine that cannot keep blocks
        program = ProgramFacts(pid := done.program_id, request.program_arrival, turns,
                               request.last_turn or request.last_call, request.agent)
        decision = self.policy.decide(PinRequest(session, tool, tokens, now, program, facts),
                                      self.durations)
        self.decided[decision.action] = self.decided.get(decision.action, 0) + 1
        if self._log is not None:
            self._log.append(Retained(worker, session, tool, decision.action, decision.reason))
        self.transport.retain(worker, session, chain, decision, pid)
        if decision.prefetch_at is not None and self._can(worker, "host_tier"):
            paused.prefetch = True
            self._seq += 1
            heapq.heappush(self._timers, (max(now, decision.prefetch_at), self._seq, session))
            self.transport.wake_at(max(now, decision.prefetch_at))
        blocks = 0 if decision.action == "drop" else tokens // chain.block_size
        done.kv_pin = self._note(decision, tool, blocks, worker, now)

    # -- tools, sessions, programs ------------------------------------------------------
    def tool_finished(self, session_id: str, tool: str, seconds: float,
                      prior_s: float | None = None) -> None:
        """A call of `tool` by the session ran `seconds` (run-clock seconds); `prior_s`:
        the tool's declared prior mean, used until it has observations. A prefetch
        planned for the session's pause is no longer needed."""
        paused = self._paused.get(session_id)
        if paused is not None:
            paused.prefetch = False
        if prior_s is not None and tool not in self._primed:
            self._primed.add(tool)
            self.durations.set_prior(tool, prior_s)
        self.durations.record(tool, max(0.0, seconds))

    def session_ended(self, session_id: str) -> None:
        paused = self._paused.pop(session_id, None)
        if paused is not None:
            self.transitions.record(paused.agent, paused.tool, "end")
        self._context.pop(session_id, None)
        self._ran_on.pop(session_id, None)

    def program_ended(self, program_id: str) -> None:
        turns = self._turns.pop(program_id, 0)
        if self.policy is not None:
            self.policy.on_program_finished(program_id, turns)

    # -- prefetch timers -----------------------------------------------------------
    def next_timer(self) -> float:
        return self._timers[0][0] if self._timers else math.inf

    def on_timer(self, now: float) -> None:
        """Send the prefetches due, for sessions still on the tool they were planned
        for (a session whose next call came, or whose step ended, needs none)."""
        while self._timers and self._timers[0][0] <= now:
            _, _, session = heapq.heappop(self._timers)
            paused = self._paused.get(session)
            if paused is None or not paused.prefetch:
                continue
            paused.prefetch = False
            self.prefetches += 1
            self.transport.prefetch(paused.worker_id, session, paused.prefix)

    # -- facts ---------------------------------------------------------------------
    def _can(self, worker_id: str, capability: str) -> bool:
        info = self._workers.get(worker_id)
        return info is not None and getattr(info.capabilities, capability)

    def _facts(self, worker_id: str, stats: EngineStats | None, tokens: int) -> EngineFacts:
        """The worker at decision time: its last stats, and what rebuilding `tokens` of
        context would cost there (recompute, or reload from its host tier)."""
        cost = self._costs.get(worker_id, self.cost)
        if stats is None or cost is None:
            return EngineFacts()
        return EngineFacts(
            capacity_blocks=max(1, stats.kv_capacity_blocks), used_blocks=stats.kv_used_blocks,
            pinned_blocks=stats.kv_pinned_blocks, recompute_s=cost.recompute_time(tokens),
            reload_s=cost.reload_time(tokens) if self._can(worker_id, "host_tier") else None,
            step_s=_step_time(cost, stats), batch_tokens=stats.running_context_tokens,
            kv_bytes_per_token=float(cost.kv_bytes_per_token))

    def _note(self, decision: PinDecision, tool: str, blocks: int, worker_id: str,
              now: float) -> PinNote:
        durations, source = self.durations, self.durations.source(tool)
        return PinNote(
            tool=tool, action=decision.action,
            ttl_s=decision.until - now if decision.holds else 0.0, reason=decision.reason,
            duration_source=source, duration_samples=durations.count(tool),
            predicted_s=durations.quantile(tool, 0.5) if source != "none" else 0.0,
            blocks=blocks, worker_id=worker_id, decided_at=now)
