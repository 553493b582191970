"""Plays program traces: turns become LLM requests, replies become tool waits.

A `ProgramPlayer` is the simulator's stand-in for the program runners of the Ray
runtime: it keeps each running step's conversation as a `SessionChain` and extends it
exactly as a client would (shared prefix, then each turn's input, then the engine's
output), so the engine's prefix cache sees what it would see in production. The Ray
runtime replays traces through the same `SessionChain` and request ids
(`runtime.replay`), so both drivers send identical requests.

A reply to a turn without a tool ends its step (later turns of a trace are not played);
steps that become ready together start in `ProgramSpec.ordered_steps()` order.

    start(program) ─▶ first turn of each ready step ─▶ LLMRequest
    on_done(RequestDone) ─▶ tool wait (duration from the trace) ─▶ after_tool ─▶ next turn
                          └▶ no tool: step done ─▶ successors ready ─▶ program done
"""
from __future__ import annotations

from dataclasses import dataclass, field

from agentrt.programs.workloads.spec import ProgramSpec, StepSpec
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


@dataclass(slots=True)
class ProgramRun:
    spec: ProgramSpec
    arrival: float
    order: list[StepSpec] = field(default_factory=list)  # spec.ordered_steps()
    done_steps: set[str] = field(default_factory=set)
    started_steps: set[str] = field(default_factory=set)
    finished_at: float | None = None


@dataclass(slots=True)
class DoneOutcome:
    """What follows a finished LLM call: a tool wait, or the end of its step (and
    maybe of its program), with the requests of steps that became ready."""

    step: StepRun
    tool_duration: float | None
    step_finished: bool
    program_finished: bool
    new_requests: list[LLMRequest]


class ProgramPlayer:
    def __init__(self, model: str, block_size: int = 16) -> None:
        self.model = model
        self.block_size = block_size
        self._steps: dict[str, StepRun] = {}  # session id -> running step

    def start(self, spec: ProgramSpec, now: float) -> tuple[ProgramRun, list[LLMRequest]]:
        run = ProgramRun(spec, arrival=now, order=spec.ordered_steps())
        return run, self._start_ready(run, now)

    def on_done(self, done: RequestDone, now: float) -> DoneOutcome:
        """The reply is in: wait for its tool, or end the step."""
        step = self._steps[done.session_id]
        step.chain.add_output(done)
        turn = step.spec.turns[step.turn]
        if turn.tool is not None:
            return DoneOutcome(step, turn.tool_duration, False, False, [])
        return self._finish_step(step, now)

    def after_tool(self, session_id: str, now: float) -> DoneOutcome:
        """The tool returned: the next turn's request, or (after a last-turn tool such
        as a final submit) the end of the step."""
        step = self._steps[session_id]
        if step.turn + 1 == len(step.spec.turns):
            return self._finish_step(step, now)
        step.turn += 1
        return DoneOutcome(step, None, False, False, [self._request(step, now)])

    def _finish_step(self, step: StepRun, now: float) -> DoneOutcome:
        del self._steps[step.session_id]
        run = step.program
        run.done_steps.add(step.spec.step_id)
        new = self._start_ready(run, now)
        finished = len(run.done_steps) == len(run.spec.steps)
        if finished:
            run.finished_at = now
        return DoneOutcome(step, None, True, finished, new)

    def _start_ready(self, run: ProgramRun, now: float) -> list[LLMRequest]:
        out = []
        for spec in run.order:
            sid = spec.step_id
            if sid in run.started_steps or not all(d in run.done_steps for d in spec.deps):
                continue
            run.started_steps.add(sid)
            session_id = f"{run.spec.program_id}/{sid}"
            chain = SessionChain(session_id, self.block_size, spec.prefix_id,
                                 spec.prefix_tokens)
            step = StepRun(run, spec, session_id, chain)
            self._steps[session_id] = step
            out.append(self._request(step, now))
        return out

    def _request(self, step: StepRun, now: float) -> LLMRequest:
        turn = step.spec.turns[step.turn]
        step.context_before = step.chain.num_tokens
        prompt = step.chain.add_input(step.turn, turn.input_tokens)
        run = step.program
        last = step.turn + 1 == len(step.spec.turns) and len(run.done_steps) + 1 == len(
            run.spec.steps)
        return LLMRequest(
            request_id=request_id(step.session_id, step.turn), program_id=run.spec.program_id,
            session_id=step.session_id, model=self.model, prefix=prompt,
            max_tokens=turn.output_tokens, arrival=now, program_arrival=run.arrival,
            tenant=run.spec.tenant, output_tokens_hint=turn.output_tokens, last_call=last,
            last_turn=step.turn + 1 == len(step.spec.turns), agent=run.spec.agent,
            context_before=step.context_before, tool_hint=turn.tool,
            tool_hint_s=turn.tool_duration if turn.tool is not None else None)

    def step_of(self, session_id: str) -> StepRun:
        return self._steps[session_id]

    @property
    def active_sessions(self) -> int:
        return len(self._steps)
