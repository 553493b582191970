import pytest

from agentrt.runtime.core.planner import MCPPConfig, MCPPPlanner, Option, Running
from agentrt.runtime.core.planner.mcpp import shortlist
from tests.planner.builders import make_problem, make_state, rng


def test_a_tight_budget_buys_the_cheap_model():
    # One strong call (p = 0.9) just fits; cheap calls (p = 0.5) fit twenty times over.
    problem = make_problem()
    worst_strong = problem.stats().worst_cost[0, problem.option_index(Option("strong", 1))]
    plan = MCPPPlanner().plan(make_state(problem, budget=worst_strong * 1.01,
                                         deadline=100.0), rng())
    assert plan.choices == {"a": Option("cheap", 1)} and plan.score > 0.95


def test_a_tight_deadline_and_a_loose_budget_buy_parallel_samples():
    # One cheap attempt (about 2.2 s) fits before the deadline; the strong model does not.
    plan = MCPPPlanner().plan(make_state(make_problem(), budget=1.0, deadline=3.0), rng())
    assert plan.choices["a"].model == "cheap" and plan.choices["a"].k > 1
    assert plan.score > 0.9


def test_every_ready_subtask_gets_an_option_and_nothing_else():
    problem = make_problem({"a": (), "b": (), "c": ("a", "b")})
    plan = MCPPPlanner().plan(make_state(problem, budget=1.0, deadline=30.0), rng())
    assert set(plan.choices) == {"a", "b"}


def test_running_subtasks_are_not_replanned():
    problem = make_problem({"a": (), "b": ()})
    state = make_state(problem, budget=1.0, deadline=30.0)
    state.running["a"] = Running(Option("cheap", 2), started_at=0.0)
    assert set(MCPPPlanner().plan(state, rng()).choices) == {"b"}


def test_a_program_out_of_reach_stops_with_the_reason():
    # Every call takes at least its 0.1 s prefill; the deadline is 0.05 s away.
    plan = MCPPPlanner().plan(make_state(make_problem(), budget=1.0, deadline=0.05), rng())
    assert plan.stop and not plan.choices and plan.score == 0.0
    assert "even the fastest calls need" in plan.reason and "left before the deadline" in plan.reason


def test_a_zero_estimate_stops_with_the_reason():
    # No rollout finishes: a sample takes about 2.1 s and 1 s is left.
    plan = MCPPPlanner().plan(make_state(make_problem(), budget=1.0, deadline=1.0), rng())
    assert plan.stop and not plan.choices
    assert "0.0% of 256 rollouts" in plan.reason


def test_without_min_score_a_zero_estimate_still_makes_a_try():
    # A short answer can still pass in time, so the deadline is not out of reach.
    problem = make_problem({"a": (), "b": ("a",)})
    plan = MCPPPlanner(MCPPConfig(min_score=None)).plan(
        make_state(problem, budget=1.0, deadline=1.0), rng())
    assert not plan.stop and plan.score == 0.0 and set(plan.choices) == {"a"}


def test_nothing_reservable_stops_unless_calls_are_in_flight():
    problem = make_problem({"a": (), "b": ()})
    state = make_state(problem, budget=1e-6, deadline=30.0)
    plan = MCPPPlanner().plan(state, rng())
    assert plan.stop and "can reserve its worst case" in plan.reason
    state.running["a"] = Running(Option("cheap", 1), 0.0)
    waiting = MCPPPlanner().plan(state, rng())
    assert not waiting.stop and not waiting.choices


def test_min_score_stops_plans_below_it():
    state = make_state(make_problem(p={"cheap": 0.05, "strong": 0.1}), budget=0.01,
                       deadline=3.0)
    plan = MCPPPlanner(MCPPConfig(min_score=0.5)).plan(state, rng())
    assert plan.stop and plan.score <= 0.5 and "<= 50%" in plan.reason


def test_shortlist_keeps_top_m_reservable_options():
    problem = make_problem()
    state = make_state(problem, budget=0.02, deadline=100.0)  # 8 cheap calls, no strong
    opts = [problem.option(int(o)) for o in shortlist(state, "a", 4)]
    assert len(opts) == 4 and all(o.model == "cheap" for o in opts)  # strong cannot fit
    assert opts[0] == Option("cheap", 1)  # time to spare: one sample at a time


@pytest.mark.parametrize("n", [64, 256])
def test_rollout_count_is_a_parameter(n):
    plan = MCPPPlanner(MCPPConfig(rollouts=n)).plan(
        make_state(make_problem(), budget=1.0, deadline=3.0), rng())
    assert "of the beam" in plan.reason and 0 < plan.score <= 1
