"""A program's lower bound on completion time: its critical path with no queueing and a
perfect cache (every turn prefills only its new tokens in one step, decodes alone on a
GPU).

Every pause the players wait through is on the path: tool durations (a last turn's
too: its step ends when the tool returns), human think time, and, after a turn that
spawns subagents, the longest of their own bounds (each starts from a fork of the
parent's conversation, which a perfect cache holds). A compacted turn prefills its
summary as well as its input, against the shared prefix alone.
"""
from __future__ import annotations

from agentrt.programs.workloads.spec import ProgramSpec, StepSpec
from agentrt.runtime.engines.simulated.perf_model import PerfModel


def step_lower_bound(step: StepSpec, perf: PerfModel, program: ProgramSpec | None = None,
                     opening: int | None = None, prefix: int | None = None) -> float:
    """The step alone, from its start to its end. `program` resolves the steps its
    turns spawn (required when any turn spawns); `opening` and `prefix` are as in
    `StepSpec.prompts` (a subagent opens with its parent's conversation)."""
    prefix = step.prefix_tokens if prefix is None else prefix
    total = 0.0
    for k, (turn, prompt) in enumerate(zip(step.turns, step.prompts(opening, prefix))):
        # The prefill step samples the first output token (as the engine does); the
        # other n - 1 decode alone, at about the mean context of the reply.
        total += perf.prefill_time(prompt.new, prompt.cached)
        total += (turn.output_tokens - 1) * perf.decode_tpot(
            1, prompt.tokens + turn.output_tokens // 2)
        pause = step.pause_after(k)
        if pause is None:
            continue
        if pause.spawns:
            if program is None:
                raise ValueError(f"step {step.step_id!r} spawns {list(pause.spawns)}; pass "
                                 "its program to resolve them")
            fork = prompt.tokens + turn.output_tokens
            total += max(step_lower_bound(program.step(sid), perf, program, fork, prefix)
                         for sid in pause.spawns)
        else:
            total += pause.seconds
    return total


def program_lower_bound(program: ProgramSpec, perf: PerfModel) -> float:
    """Longest dependency path of step lower bounds (steps are listed so that a step's
    dependencies may appear anywhere; resolved by memoised recursion). Spawned steps
    count inside the bound of the step that spawns them."""
    spawned = program.spawned()
    own = {s.step_id: step_lower_bound(s, perf, program) for s in program.steps
           if s.step_id not in spawned}
    deps = {s.step_id: s.deps for s in program.steps}
    finish: dict[str, float] = {}

    def end(step_id: str) -> float:
        if step_id not in finish:
            finish[step_id] = own[step_id] + max((end(d) for d in deps[step_id]), default=0.0)
        return finish[step_id]

    return max(end(s) for s in own)
