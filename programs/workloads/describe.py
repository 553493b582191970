"""A workload's shape in the figures published traffic studies report, so a generator
can be checked against its sources (`describe(generate("longhorizon", 2000))`).

    turns         LLM calls per session (all steps) and of its first step
    contexts      prompt tokens at the first step's 30th call; the largest prompt
    tokens        input:output (every call's whole prompt over its reply), the median
                  reply, new tokens per turn (its input, after a compaction also the
                  summary)
    tools         duration quantiles per tool name; tool calls per call, where the
                  program's `meta["tool_calls"]` counts them (a turn names one tool)
    sessions      shares with a compaction (a prompt 64K or more below the context
                  before it), with subagents; think time quantiles and its share of
                  the sessions' lower-bound time (when a bound function is given)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from agentrt.programs.workloads.spec import ProgramSpec

COMPACTION_DROP = 64_000  # TraceLab's definition of a compaction


@dataclass(frozen=True, slots=True)
class WorkloadStats:
    programs: int
    calls_median: float
    first_step_turns_median: float
    context_at_turn_30_median: float
    context_max: int
    input_output_ratio: float
    output_median: float
    new_tokens_p10_p50_p90: tuple[float, float, float]
    tool_quantiles: dict[str, tuple[float, float]]
    """Tool name -> (p50, p99) seconds."""
    tool_calls_per_call: float | None
    compaction_share: float
    subagent_share: float
    think_p50_p90: tuple[float, float]
    think_share: float | None
    """Think time over the sessions' lower-bound time (None without a bound)."""


def describe(programs: Sequence[ProgramSpec],
             lower_bound: Callable[[ProgramSpec], float] | None = None) -> WorkloadStats:
    """The figures above for `programs`. Raises ValueError when there are none."""
    if not programs:
        raise ValueError("describe needs at least one program")
    prompts = [p.step_prompts() for p in programs]
    calls = [t for ps in prompts for step in ps.values() for t in step]
    outputs = np.array([t.output_tokens for p in programs for s in p.steps for t in s.turns])
    at_30 = [ps[p.steps[0].step_id][29].tokens for p, ps in zip(programs, prompts)
             if len(p.steps[0].turns) >= 30]
    thinks = np.array([t.think_s for p in programs for s in p.steps for t in s.turns
                       if t.think_s > 0])
    counted = [p.meta["tool_calls"] for p in programs if "tool_calls" in p.meta]
    q = lambda a, p: float(np.percentile(a, p)) if len(a) else float("nan")
    return WorkloadStats(
        programs=len(programs),
        calls_median=float(np.median([p.num_calls for p in programs])),
        first_step_turns_median=float(np.median([len(p.steps[0].turns) for p in programs])),
        context_at_turn_30_median=q(at_30, 50),
        context_max=max(t.tokens for t in calls),
        input_output_ratio=sum(t.tokens for t in calls) / float(outputs.sum()),
        output_median=float(np.median(outputs)),
        new_tokens_p10_p50_p90=tuple(q([t.new for t in calls], p) for p in (10, 50, 90)),
        tool_quantiles=_tools(programs),
        tool_calls_per_call=(sum(counted) / sum(p.num_calls for p in programs
                                                 if "tool_calls" in p.meta)
                             if counted else None),
        compaction_share=float(np.mean([_compacts(p, ps) for p, ps in zip(programs, prompts)])),
        subagent_share=float(np.mean([bool(p.spawned()) for p in programs])),
        think_p50_p90=(q(thinks, 50), q(thinks, 90)),
        think_share=(float(thinks.sum()) / sum(lower_bound(p) for p in programs)
                     if lower_bound is not None else None))


def _tools(programs: Sequence[ProgramSpec]) -> dict[str, tuple[float, float]]:
    by_name: dict[str, list[float]] = {}
    for p in programs:
        for s in p.steps:
            for t in s.turns:
                if t.tool is not None and not t.spawns:
                    by_name.setdefault(t.tool, []).append(t.tool_duration)
    return {name: (float(np.percentile(d, 50)), float(np.percentile(d, 99)))
            for name, d in sorted(by_name.items())}


def _compacts(program: ProgramSpec, step_prompts: dict) -> bool:
    """Some call's prompt keeps 64K fewer tokens than the conversation held before it."""
    for step in program.steps:
        prompts = step_prompts[step.step_id]
        for k in range(1, len(prompts)):
            held = prompts[k - 1].tokens + step.turns[k - 1].output_tokens
            if held - prompts[k].cached >= COMPACTION_DROP:
                return True
    return False
