"""A program's lower bound on completion time: its critical path with no queueing and a
perfect cache (every turn prefills only its new tokens, decodes alone on a GPU)."""
from __future__ import annotations

from agentrt.programs.workloads.spec import ProgramSpec, StepSpec
from agentrt.runtime.engines.simulated.perf_model import PerfModel


def step_lower_bound(step: StepSpec, perf: PerfModel) -> float:
    total, context = 0.0, step.prefix_tokens
    for k, turn in enumerate(step.turns):
        total += perf.prefill_time(turn.input_tokens, context)
        context += turn.input_tokens
        # Decoding n tokens alone: n steps at the mean context of the reply.
        total += turn.output_tokens * perf.decode_tpot(1, context + turn.output_tokens // 2)
        context += turn.output_tokens
        if k + 1 < len(step.turns):
            total += turn.tool_duration
    return total


def program_lower_bound(program: ProgramSpec, perf: PerfModel) -> float:
    """Longest dependency path of step lower bounds (steps are listed so that a step's
    dependencies may appear anywhere; resolved by memoised recursion)."""
    own = {s.step_id: step_lower_bound(s, perf) for s in program.steps}
    deps = {s.step_id: s.deps for s in program.steps}
    finish: dict[str, float] = {}

    def end(step_id: str) -> float:
        if step_id not in finish:
            finish[step_id] = own[step_id] + max((end(d) for d in deps[step_id]), default=0.0)
        return finish[step_id]

    return max(end(s) for s in own)
