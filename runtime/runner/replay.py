"""Trace replay on the real runtime: a recorded trace becomes a runnable `@program`.

`trace_program(spec)` builds a program whose steps are the trace's steps (step name =
step id, so sessions are `{program_id}/{step_id}` as in the simulator; dependencies are
handles). Each step replays every one of its turns: a counted LLM call
(`ctx.chat_tokens`) with the turn's input and output tokens (a compacted turn restarts
the conversation from its summary), whose reply calls the turn's pause's tool, then
the pause (`StepSpec.pause_after`): a wait of the traced tool duration, or of a human
turn's think time under the pseudo-tool `HUMAN` (`ctx.wait_tool`, which reports that
duration to the scheduler as the simulator's player does), or, for a turn that spawns
subagents, until they finish (`ctx.wait_on`). Steps that become ready together start
in `ProgramSpec.ordered_steps()` order; spawned steps start, each a fork of the
spawning conversation (`ctx.fork_point`), when the spawning reply is in: both as the
simulator's `ProgramPlayer` plays the trace, so the two drivers send the same requests.

    Runtime.replay(specs)          each program starts at its arrival offset
      └─ trace_program(spec)       @program: one @step per trace step
           └─ step body            chat_tokens(in, out, tool) ─▶ pause ─▶ …

A spawned step is a `@step` without dependencies, so the graph starts it with the
program; its body first waits for its parent's hand-off (`_Run`), then plays.
"""
from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from typing import Any

from agentrt.programs import ProgramDef, StepHandle, program, step
from agentrt.programs.step_def import Step
from agentrt.programs.workloads.spec import ProgramSpec, StepSpec
from agentrt.programs.workloads.trace import program_from_dict, program_to_dict
from agentrt.runtime.core.session_chain import SessionChain
from agentrt.toolmgr.spec import TOOL_NAME_PATTERN


@dataclass(slots=True)
class _Run:
    """One run of a replayed program: steps finished so far (the simulator's
    `last_call` rule: the last turn of the step that finishes the program), and the
    hand-offs between a spawning step and its subagents. Events are made on first use,
    inside the running event loop."""

    total: int
    done: int = 0
    forks: dict[str, SessionChain] = field(default_factory=dict)
    _events: dict[tuple[str, str], asyncio.Event] = field(default_factory=dict)

    def event(self, kind: str, step_id: str) -> asyncio.Event:
        return self._events.setdefault((kind, step_id), asyncio.Event())

    async def spawn(self, children: tuple[str, ...], fork: SessionChain) -> None:
        """Start `children` (in order) from `fork`, and wait until all have finished."""
        for child in children:
            self.forks[child] = fork
            self.event("start", child).set()
        await asyncio.gather(*(self.event("done", c).wait() for c in children))

    async def started(self, step_id: str) -> SessionChain:
        await self.event("start", step_id).wait()
        return self.forks.pop(step_id)

    def finished(self, step_id: str) -> None:
        self.done += 1
        self.event("done", step_id).set()


def trace_program(spec: ProgramSpec) -> ProgramDef:
    """A `@program` (no arguments) that replays `spec`. Tool waits and think times last
    the traced duration in run seconds (times the runtime's time scale in wall
    seconds). Its output maps each step id to the output tokens its calls produced.
    Raises TraceError naming the field when `spec` would not load as a trace line, and
    ValueError when a step id cannot name a step."""
    # The trace loader's checks, for specs built in code: refused here with the field.
    program_from_dict(program_to_dict(spec), source=f"program {spec.program_id!r}")
    order = spec.ordered_steps()
    for s in order:
        if not re.match(TOOL_NAME_PATTERN, s.step_id):
            raise ValueError(f"program {spec.program_id!r}: step id {s.step_id!r} cannot "
                             f"name a step (must match {TOOL_NAME_PATTERN}); rename it "
                             "in the trace to replay it")
    spawned = spec.spawned()

    def replay() -> dict[str, StepHandle]:
        # A fresh run per build: each run counts its own finished steps.
        run = _Run(total=len(order))
        handles: dict[str, StepHandle] = {}
        for s in order:
            handles[s.step_id] = _replay_step(s, spec, run, s.step_id in spawned)(
                *(handles[d] for d in s.deps))
        return handles

    return program(replay, name=spec.agent, tenant=spec.tenant)


def _replay_step(spec: StepSpec, program_spec: ProgramSpec, run: _Run,
                 spawned: bool) -> Step:
    features = program_spec.features or None
    calls = program_spec.num_calls

    async def body(ctx: Any, *_upstream: Any) -> int:
        fork = await run.started(spec.step_id) if spawned else None
        produced = 0
        for k, turn in enumerate(spec.turns):
            first = k == 0
            last_turn = k + 1 == len(spec.turns)
            pause = spec.pause_after(k)
            reply = await ctx.chat_tokens(
                turn.input_tokens, turn.output_tokens,
                prefix_id=spec.prefix_id if first else None,
                prefix_tokens=spec.prefix_tokens if first else 0,
                fork_from=fork if first else None, summary_tokens=turn.summary_tokens,
                last_call=last_turn and run.done + 1 == run.total, last_turn=last_turn,
                tool=pause.tool if pause is not None else None,
                tool_s=pause.seconds if pause is not None and not pause.spawns else None,
                features=features, program_calls=calls)
            produced += reply.usage.completion_tokens
            if pause is None:
                break  # the last turn called no tool: the step is over
            if pause.spawns:
                await ctx.wait_on(pause.tool, run.spawn(pause.spawns, ctx.fork_point()))
            else:
                await ctx.wait_tool(pause.tool, pause.seconds)
        run.finished(spec.step_id)
        return produced

    return step(body, name=spec.step_id)
