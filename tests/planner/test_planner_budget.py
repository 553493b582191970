"""Spend never exceeds the budget, whatever the planner and however tight the budget."""
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from agentrt.runtime.bench.plan_tasks import problem_of
from agentrt.programs.workloads.planning import codeflow, proofflow
from agentrt.runtime.bench.planning import reference_scale, run_program
from agentrt.runtime.core.planner import PlanningProblem, make_planner
from tests.planner.builders import make_cards

CARDS = make_cards({"llama-3.1-8b": (0.1, 0.2, 0.011), "llama-3.1-70b": (0.6, 0.8, 0.020),
                    "frontier": (3.0, 15.0, 0.025)})
TASKS = codeflow(60, seed=11) + proofflow(40, seed=12)
SCALES = [reference_scale(problem_of(t, CARDS)) for t in TASKS]
CHEAP = ("cheapest", "strongest", "fixed-k", "greedy", "knapsack")


def _run(planner, i, budget_x, deadline_x, seed):
    task, (cost, span) = TASKS[i % len(TASKS)], SCALES[i % len(TASKS)]
    out = run_program(task, planner, CARDS, budget_x * cost, deadline_x * span, seed, i)
    assert out.spent_usd <= out.budget_usd, (task.task_id, out.spent_usd, out.budget_usd)
    return out


def test_budget_is_never_exceeded_across_10000_programs():
    rng = np.random.default_rng(2024)
    planners = [make_planner(n) for n in CHEAP]
    budgets = np.exp(rng.uniform(np.log(0.05), np.log(10), 10_000))
    deadlines = np.exp(rng.uniform(np.log(0.5), np.log(10), 10_000))
    statuses = {}
    for i in range(10_000):
        out = _run(planners[i % len(planners)], i, budgets[i], deadlines[i], 7)
        statuses[out.status] = statuses.get(out.status, 0) + 1
    assert statuses["budget"] > 1000 and statuses["success"] > 1000  # both regimes hit


@settings(max_examples=25, deadline=None)
@given(i=st.integers(0, len(TASKS) - 1), budget_x=st.floats(0.02, 6.0),
       deadline_x=st.floats(0.3, 6.0), seed=st.integers(0, 2**16))
def test_mcpp_never_exceeds_the_budget(i, budget_x, deadline_x, seed):
    _run(make_planner("mcpp"), i, budget_x, deadline_x, seed)
