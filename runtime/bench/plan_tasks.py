"""Planner workload tasks (`programs.workloads.planning.PlanTask`) as the planner sees
them: priors only, never the hidden truth."""
from __future__ import annotations

from typing import Sequence

from agentrt.programs.workloads.planning import PlanTask
from agentrt.runtime.core.planner import ModelCard, PlanningProblem, Prior, SubtaskSpec
from agentrt.runtime.core.planner.estimates import logit_normal_beta


def problem_of(task: PlanTask, cards: Sequence[ModelCard]) -> PlanningProblem:
    """The problem a planner sees for `task` with these model cards. Success priors are
    the task's told rates, made Beta by its `success_uncertainty` when it states one
    (else worth `prior_strength` samples)."""
    specs = [SubtaskSpec(s.subtask_id, s.deps, s.prompt_tokens, s.max_tokens,
                         s.max_samples) for s in task.subtasks]

    def success(p: float) -> tuple[float, float]:
        if task.success_uncertainty is None:
            return p, task.prior_strength
        return logit_normal_beta(p, task.success_uncertainty)

    priors = {(s.subtask_id, c.name): Prior(
        *success(s.prior[c.name].p), s.prior[c.name].len_median,
        s.prior[c.name].len_sigma, task.prior_strength, task.length_uncertainty)
        for s in task.subtasks for c in cards}
    return PlanningProblem(specs, cards, priors)
