"""KV retention in the simulator: the driver's side of TTL policies and eviction hooks.

The driver reports what programs do; this turns it into policy calls and mechanism
calls on the engine that holds the session's KV:

    turn ends in a tool call  ─▶ PinRequest ─▶ TTLPolicy.decide ─▶ apply_decision
                                 (engine facts: recompute / reload time, blocks, batch)
                              ─▶ workflow eviction: session_paused; Belady: expect
    tool returns              ─▶ DurationModel.record, step transition recorded
    next request submitted    ─▶ workflow eviction: session_resumed
    request done              ─▶ on_queue_delay(delay, cache lost); Belady: accessed
    step ends / program ends  ─▶ session_finished; on_program_finished(turns)

Everything happens at a STEP_END of the worker concerned or at an external event
(tool completion), so fused decode runs stay exact (see `runtime.sim.horizon`).
ThunderAgent admission lives in `runtime.sim.admission`.
"""
from __future__ import annotations

from kvcache.eviction_belady import BeladyEviction
from kvcache.eviction_workflow import WorkflowAwareEviction
from runtime.core.messages import RequestDone
from runtime.core.retention import (
    EngineFacts,
    PinRequest,
    ProgramFacts,
    TTLPolicy,
    apply_decision,
    make_ttl_policy,
)
from runtime.engines.facts import engine_facts
from runtime.engines.simulated import SimulatedEngine
from runtime.sim.player import StepRun
from toolmgr.durations import DurationModel


class Retention:
    """One TTL policy (None: no retention) and one duration model for the cluster."""

    def __init__(self, ttl: str | None) -> None:
        self.policy: TTLPolicy | None = make_ttl_policy(ttl) if ttl is not None else None
        self.durations = DurationModel()
        self.decisions: dict[str, int] = {}  # action -> count
        self._turns: dict[str, int] = {}  # program id -> LLM calls finished

    def attach(self, engine: SimulatedEngine) -> None:
        """A new worker: a workflow-aware eviction policy reads this duration model."""
        if isinstance(engine.kv.pool.eviction, WorkflowAwareEviction):
            engine.kv.pool.eviction.durations = self.durations

    # -- turns -----------------------------------------------------------------------

    def tool_started(
        self, engine: SimulatedEngine, step: StepRun, tool: str, tool_duration: float,
        now: float,
    ) -> None:
        """`step`'s turn (its reply already added to the chain) called `tool`, which
        the trace says runs `tool_duration` seconds (only the Belady oracle reads it)."""
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
            return
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

    def tool_finished(
        self, engine: SimulatedEngine | None, step: StepRun, tool: str, seconds: float,
        next_turn: bool,
    ) -> None:
        self.durations.record(tool, seconds)
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
