"""KV retention in the simulator: the driver's side of TTL policies and eviction hooks.

The driver reports what programs do; this turns it into policy calls and mechanism
calls on the engine that holds the session's KV:

    turn ends in a tool call  ─▶ PinRequest ─▶ TTLPolicy.decide ─▶ apply_decision
                                 (engine facts: recompute / reload time, blocks, batch)
                              ─▶ workflow eviction: session_paused; Belady: expect
    prefetch time (decided)   ─▶ SimulatedEngine.prefetch, if the tool is still running
    tool returns              ─▶ DurationModel.record, step transition recorded
    next request submitted    ─▶ workflow eviction: session_resumed
    request done              ─▶ on_queue_delay(delay, cache lost); Belady: accessed
    step ends / program ends  ─▶ session_finished; on_program_finished(turns)

Everything happens at a STEP_END of the worker concerned or at an external event
(tool completion), so fused decode runs stay exact (see `runtime.sim.horizon`).
ThunderAgent admission lives in `runtime.sim.admission`.
"""
from __future__ import annotations

from agentrt.kvcache.eviction_belady import BeladyEviction
from agentrt.kvcache.eviction_workflow import WorkflowAwareEviction
from agentrt.runtime.core.messages import RequestDone
from agentrt.runtime.core.retention import (
    EngineFacts,
    PinRequest,
    ProgramFacts,
    TTLPolicy,
    apply_decision,
    make_ttl_policy,
)
from agentrt.runtime.engines.facts import engine_facts
from agentrt.runtime.engines.simulated.engine import SimulatedEngine
from agentrt.runtime.sim.player import StepRun
from agentrt.toolmgr.durations import DurationModel


class Retention:
    """One TTL policy (None: no retention) and one duration model for the cluster."""

    def __init__(self, ttl: str | None) -> None:
        self.policy: TTLPolicy | None = make_ttl_policy(ttl) if ttl is not None else None
        self.durations = DurationModel()
        self.decisions: dict[str, int] = {}  # action -> count
        self._turns: dict[str, int] = {}  # program id -> LLM calls finished
        self._paused: set[str] = set()  # sessions on a tool with a prefetch to come
        self.prefetches = 0  # prefetches that moved blocks

    def attach(self, engine: SimulatedEngine) -> None:
        """A new worker: a workflow-aware eviction policy reads this duration model."""
        if isinstance(engine.kv.pool.eviction, WorkflowAwareEviction):
            engine.kv.pool.eviction.durations = self.durations

    # -- turns -----------------------------------------------------------------------

    def tool_started(
        self, engine: SimulatedEngine, step: StepRun, tool: str, tool_duration: float,
        now: float,
    ) -> float | None:
        """`step`'s turn (its reply already added to the chain) called `tool`, which
        the trace says runs `tool_duration` seconds (only the Belady oracle reads it).
        Returns when to prefetch the session's context back (`prefetch`), if the
        decision says to."""
        chain = step.chain.chain
        tokens = chain.num_tokens
        eviction = engine.kv.pool.eviction
        if isinstance(eviction, WorkflowAwareEviction):
            eviction.session_paused(step.session_id, chain.hashes, now, tool=tool,
                                    agent=step.program.spec.agent,
                                    rebuild_cost_s=self._facts(engine, tokens).rebuild_s)
        elif isinstance(eviction, BeladyEviction):
            eviction.expect(step.session_id, chain.hashes, now + tool_duration)
        if self.policy is None:
            return None
        program = step.program
        last = step.turn + 1 == len(step.spec.turns)
        facts = ProgramFacts(program.spec.program_id, program.arrival,
                             self._turns.get(program.spec.program_id, 0), last,
                             program.spec.agent)
        request = PinRequest(step.session_id, tool, tokens, now, facts,
                             self._facts(engine, tokens))
        decision = self.policy.decide(request, self.durations)
        self.decisions[decision.action] = self.decisions.get(decision.action, 0) + 1
        apply_decision(decision, engine.pins, step.session_id, chain, now,
                       program.spec.program_id)
        if decision.prefetch_at is None or engine.kv.host is None:
            return None
        self._paused.add(step.session_id)
        return max(now, decision.prefetch_at)

    def awaits_prefetch(self, session_id: str) -> bool:
        """Whether the session is still on the tool its prefetch was planned for."""
        return session_id in self._paused

    def prefetch(self, engine: SimulatedEngine | None, step: StepRun, now: float) -> None:
        """The prefetch time of `step`'s session came while it waits on its tool: copy
        its host blocks back (a turn already back reloads on admission instead)."""
        self._paused.discard(step.session_id)
        if engine is None:
            return
        if engine.prefetch(step.session_id, step.chain.chain, now):
            self.prefetches += 1

    def tool_finished(
        self, engine: SimulatedEngine | None, step: StepRun, tool: str, seconds: float,
        next_turn: bool,
    ) -> None:
        self.durations.record(tool, seconds)
        self._paused.discard(step.session_id)
        if engine is None:
            return
        eviction = engine.kv.pool.eviction
        if isinstance(eviction, WorkflowAwareEviction):
            eviction.transitions.record(step.program.spec.agent, tool,
                                        "turn" if next_turn else "end")

    def submitted(self, engine: SimulatedEngine | None, step: StepRun, now: float) -> None:
        """`step`'s next request (not its first) was submitted to `engine`."""
        if engine is not None and isinstance(engine.kv.pool.eviction, WorkflowAwareEviction):
            engine.kv.pool.eviction.session_resumed(step.session_id, step.chain.chain.hashes,
                                                    now)

    def request_done(
        self, engine: SimulatedEngine, done: RequestDone, context_before: int, arrival: float
    ) -> None:
        """A call finished; `context_before`: its session's tokens before this turn."""
        self._turns[done.program_id] = self._turns.get(done.program_id, 0) + 1
        eviction = engine.kv.pool.eviction
        if isinstance(eviction, BeladyEviction):
            eviction.accessed(done.session_id)
        if self.policy is not None and done.first_scheduled_at is not None:
            lost = context_before > 0 and done.cached_tokens < context_before - 1
            self.policy.on_queue_delay(done.first_scheduled_at - arrival, lost)

    def step_finished(self, engine: SimulatedEngine | None, session_id: str) -> None:
        if engine is not None and isinstance(engine.kv.pool.eviction, WorkflowAwareEviction):
            engine.kv.pool.eviction.session_finished(session_id)

    def program_finished(self, program_id: str) -> None:
        turns = self._turns.pop(program_id, 0)
        if self.policy is not None:
            self.policy.on_program_finished(program_id, turns)

    @staticmethod
    def _facts(engine: SimulatedEngine, tokens: int) -> EngineFacts:
        return engine_facts(engine, tokens)
