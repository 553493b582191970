"""Plays program traces: turns become LLM requests, replies become pauses.

A `ProgramPlayer` is the simulator's stand-in for the program runners of the Ray
runtime: it keeps each running step's conversation as a `SessionChain` and extends it
exactly as a client would (shared prefix, then each turn's input, then the engine's
output; a compacted turn restarts it from a summary; a subagent forks its parent's),
so the engine's prefix cache sees what it would see in production. The Ray runtime
replays traces through the same `SessionChain`, request ids and pauses
(`runtime.runner.replay`), so both drivers send identical requests.

Every turn of a trace is played. What follows a reply is the turn's `Pause`
(`StepSpec.pause_after`): a tool's traced duration, a human turn's think time (the
pseudo-tool `HUMAN`: the request says so in `tool_hint`, so the engine's reply calls it
and the core's retention decides on the session's KV as for any pause), or, for a turn
that spawns subagents, until every spawned step has finished. Steps that become ready
together start in `ProgramSpec.ordered_steps()` order; spawned steps start when the
spawning reply is in, in the order the turn lists them.

    start(program) ─▶ first turn of each ready step ─▶ LLMRequest
    on_done(RequestDone) ─▶ timed pause (tool, human) ─▶ after_tool ─▶ next turn
                         ├▶ spawns: subagents' first turns; the last one to finish
                         │  resumes the parent (`DoneOutcome.resumed`) ─▶ next turn
                         └▶ last turn: step done ─▶ successors ready ─▶ program done
"""
from __future__ import annotations

from dataclasses import dataclass, field

from agentrt.programs.workloads.spec import Pause, ProgramSpec, StepSpec
from agentrt.runtime.core.messages import LLMRequest, RequestDone
from agentrt.runtime.core.session_chain import SessionChain, request_id


@dataclass(slots=True)
class StepRun:
    program: "ProgramRun"
    spec: StepSpec
    session_id: str
    chain: SessionChain
    turn: int = 0
    context_before: int = 0  # tokens in the conversation before the current turn's input
    pause: Pause | None = None  # what the step waits on after its current turn's reply
    paused_at: float = 0.0
    parent: "StepRun | None" = None  # the step whose turn spawned this one
    children_left: int = 0  # spawned steps not finished yet


@dataclass(slots=True)
class ProgramRun:
    spec: ProgramSpec
    arrival: float
    order: list[StepSpec] = field(default_factory=list)  # spec.ordered_steps()
    spawned: frozenset[str] = frozenset()  # steps started by a turn, not by readiness
    done_steps: set[str] = field(default_factory=set)
    started_steps: set[str] = field(default_factory=set)
    finished_at: float | None = None


@dataclass(slots=True)
class Resumed:
    """A step whose untimed pause (waiting on its subagents) ended now: the driver
    reports `tool` as having run `seconds` for `session_id`."""

    session_id: str
    tool: str
    seconds: float


@dataclass(slots=True)
class DoneOutcome:
    """What follows a finished LLM call: a timed pause (`tool_duration`: a tool or a
    person), or the end of its step (and maybe of its program), with the requests that
    became due: subagents' first turns, steps that became ready, the next turn of a
    parent whose subagents all finished (listed in `resumed`). `ended`: the sessions
    whose steps ended, in order (the call's own, then a parent's whose last turn waited
    on its subagents)."""

    step: StepRun
    tool_duration: float | None = None
    ended: list[str] = field(default_factory=list)
    program_finished: bool = False
    new_requests: list[LLMRequest] = field(default_factory=list)
    resumed: list[Resumed] = field(default_factory=list)

    @property
    def step_finished(self) -> bool:
        return bool(self.ended) and self.ended[0] == self.step.session_id


class ProgramPlayer:
    def __init__(self, model: str, block_size: int = 16) -> None:
        self.model = model
        self.block_size = block_size
        self._steps: dict[str, StepRun] = {}  # session id -> running step

    def start(self, spec: ProgramSpec, now: float) -> tuple[ProgramRun, list[LLMRequest]]:
        run = ProgramRun(spec, arrival=now, order=spec.ordered_steps(),
                         spawned=spec.spawned())
        return run, self._start_ready(run, now)

    def on_done(self, done: RequestDone, now: float) -> DoneOutcome:
        """The reply is in: pause on its tool, its person or its subagents, or end the
        step."""
        step = self._steps[done.session_id]
        step.chain.add_output(done)
        step.pause = pause = step.spec.pause_after(step.turn)
        step.paused_at = now
        if pause is None:
            return self._finish_step(step, now)
        if pause.spawns:
            step.children_left = len(pause.spawns)
            new = [self._start(step.program, step.program.spec.step(sid), now, step)
                   for sid in pause.spawns]
            return DoneOutcome(step, new_requests=new)
        return DoneOutcome(step, tool_duration=pause.seconds)

    def after_tool(self, session_id: str, now: float) -> DoneOutcome:
        """The timed pause is over: the next turn's request, or (after a last-turn tool
        such as a final submit) the end of the step."""
        return self._resume(self._steps[session_id], now)

    def _resume(self, step: StepRun, now: float) -> DoneOutcome:
        if step.turn + 1 == len(step.spec.turns):
            return self._finish_step(step, now)
        step.turn += 1
        return DoneOutcome(step, new_requests=[self._request(step, now)])

    def _finish_step(self, step: StepRun, now: float) -> DoneOutcome:
        del self._steps[step.session_id]
        run = step.program
        run.done_steps.add(step.spec.step_id)
        out = DoneOutcome(step, ended=[step.session_id],
                          new_requests=self._start_ready(run, now))
        parent = step.parent
        if parent is not None:
            parent.children_left -= 1
            if not parent.children_left:  # the last subagent: the parent goes on
                out.resumed.append(Resumed(parent.session_id, parent.pause.tool,
                                           now - parent.paused_at))
                follow = self._resume(parent, now)
                out.new_requests += follow.new_requests
                out.resumed += follow.resumed
                out.ended += follow.ended
        out.program_finished = len(run.done_steps) == len(run.spec.steps)
        if out.program_finished:
            run.finished_at = now
        return out

    def _start_ready(self, run: ProgramRun, now: float) -> list[LLMRequest]:
        out = []
        for spec in run.order:
            sid = spec.step_id
            if sid in run.started_steps or sid in run.spawned or not all(
                    d in run.done_steps for d in spec.deps):
                continue
            out.append(self._start(run, spec, now))
        return out

    def _start(self, run: ProgramRun, spec: StepSpec, now: float,
               parent: StepRun | None = None) -> LLMRequest:
        run.started_steps.add(spec.step_id)
        session_id = f"{run.spec.program_id}/{spec.step_id}"
        chain = (SessionChain(session_id, self.block_size, spec.prefix_id, spec.prefix_tokens)
                 if parent is None else SessionChain.fork(parent.chain, session_id))
        step = StepRun(run, spec, session_id, chain, parent=parent)
        self._steps[session_id] = step
        return self._request(step, now)

    def _request(self, step: StepRun, now: float) -> LLMRequest:
        turn = step.spec.turns[step.turn]
        step.context_before = step.chain.num_tokens
        prompt = step.chain.add_input(step.turn, turn.input_tokens, turn.summary_tokens)
        run = step.program
        last_turn = step.turn + 1 == len(step.spec.turns)
        pause = step.spec.pause_after(step.turn)
        return LLMRequest(
            request_id=request_id(step.session_id, step.turn), program_id=run.spec.program_id,
            session_id=step.session_id, model=self.model, prefix=prompt,
            max_tokens=turn.output_tokens, arrival=now, program_arrival=run.arrival,
            tenant=run.spec.tenant, output_tokens_hint=turn.output_tokens,
            last_call=last_turn and len(run.done_steps) + 1 == len(run.spec.steps),
            last_turn=last_turn, agent=run.spec.agent, context_before=step.context_before,
            tool_hint=pause.tool if pause is not None else None,
            tool_hint_s=pause.seconds if pause is not None and not pause.spawns else None,
            features=run.spec.features or None, program_calls_hint=run.spec.num_calls)

    def step_of(self, session_id: str) -> StepRun:
        return self._steps[session_id]

    @property
    def active_sessions(self) -> int:
        return len(self._steps)
