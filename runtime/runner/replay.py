"""Trace replay on the real runtime: a recorded trace becomes a runnable `@program`.

`trace_program(spec)` builds a program whose steps are the trace's steps (step name =
step id, so sessions are `{program_id}/{step_id}` as in the simulator; dependencies are
handles). Each step replays its turns: a counted LLM call (`ctx.chat_tokens`) with the
turn's input and output tokens, whose reply calls the turn's tool, then a wait of the
tool's traced duration (`ctx.wait_tool`, which reports that duration to the scheduler
as the simulator's player does). A reply to a turn without a tool ends the step, and steps that become
ready together start in `ProgramSpec.ordered_steps()` order: both as the simulator's
`ProgramPlayer` plays the trace, so the two drivers send the same requests.

    Runtime.replay(specs)          each program starts at its arrival offset
      └─ trace_program(spec)       @program: one @step per trace step
           └─ step body            chat_tokens(in, out, tool) ─▶ wait_tool(tool, s) ─▶ …
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from agentrt.programs import ProgramDef, StepHandle, program, step
from agentrt.programs.step_def import Step
from agentrt.programs.workloads.spec import ProgramSpec, StepSpec
from agentrt.toolmgr.spec import TOOL_NAME_PATTERN


@dataclass(slots=True)
class _Progress:
    """Steps of one program run finished so far (the simulator's `last_call` rule:
    the last turn of the step that finishes the program)."""

    total: int
    done: int = 0


def trace_program(spec: ProgramSpec) -> ProgramDef:
    """A `@program` (no arguments) that replays `spec`. Tool waits last the traced
    duration in run seconds (times the runtime's time scale in wall seconds). Its
    output maps each step id to the output tokens its calls produced. Raises
    ValueError when a step id cannot name a step or the steps form a cycle."""
    order = spec.ordered_steps()
    for s in order:
        if not re.match(TOOL_NAME_PATTERN, s.step_id):
            raise ValueError(f"program {spec.program_id!r}: step id {s.step_id!r} cannot "
                             f"name a step (must match {TOOL_NAME_PATTERN}); rename it "
                             "in the trace to replay it")

    def replay() -> dict[str, StepHandle]:
        # A fresh progress per build: each run counts its own finished steps.
        progress = _Progress(total=len(order))
        handles: dict[str, StepHandle] = {}
        for s in order:
            handles[s.step_id] = _replay_step(s, progress)(
                *(handles[d] for d in s.deps))
        return handles

    return program(replay, name=spec.agent, tenant=spec.tenant)


def _replay_step(spec: StepSpec, progress: _Progress) -> Step:
    async def body(ctx: Any, *_upstream: Any) -> int:
        produced = 0
        for k, turn in enumerate(spec.turns):
            first = k == 0
            last_turn = k + 1 == len(spec.turns)
            last = last_turn and progress.done + 1 == progress.total
            reply = await ctx.chat_tokens(
                turn.input_tokens, turn.output_tokens,
                prefix_id=spec.prefix_id if first else None,
                prefix_tokens=spec.prefix_tokens if first else 0, last_call=last,
                last_turn=last_turn, tool=turn.tool,
                tool_s=turn.tool_duration if turn.tool is not None else None)
            produced += reply.usage.completion_tokens
            if turn.tool is None:
                break  # the reply called no tool: the step is over
            await ctx.wait_tool(turn.tool, turn.tool_duration)
        progress.done += 1
        return produced

    return step(body, name=spec.step_id)
