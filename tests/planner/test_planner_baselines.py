import pytest

from agentrt.runtime.core.planner import BASELINES, PLANNERS, Option, make_planner
from tests.planner.builders import make_problem, make_state, rng


def test_unknown_planner_names_the_valid_ones():
    with pytest.raises(ValueError, match="unknown planner 'best'; valid: \\['cheapest', "
                                         "'fixed-k', 'greedy', 'knapsack', 'mcpp', "
                                         "'open-loop-mc', 'strongest'\\]"):
        make_planner("best")


def test_every_baseline_is_registered():
    assert set(BASELINES) == set(PLANNERS) - {"mcpp"}
    assert all(make_planner(n).name == n for n in PLANNERS)


@pytest.mark.parametrize("name, expected", [
    ("cheapest", Option("cheap", 1)),
    ("strongest", Option("strong", 1)),
    ("fixed-k", Option("cheap", 4)),  # cheap has the best success per cost
    ("greedy", Option("cheap", 1)),
])
def test_rule_baselines_choose_as_named(name, expected):
    state = make_state(make_problem(), budget=1.0, deadline=100.0)
    assert make_planner(name).plan(state, rng()).choices == {"a": expected}


def test_knapsack_buys_the_best_product_of_successes_that_fits_expected_cost():
    problem = make_problem({"a": (), "b": ("a",)})
    st = problem.stats()
    cheap8, strong1 = (problem.option_index(Option(*o)) for o in (("cheap", 8), ("strong", 1)))
    budget = 2 * st.exp_cost[0, cheap8] * 1.01  # both on cheap x 8, not one on strong
    plan = make_planner("knapsack").plan(make_state(problem, budget=budget,
                                                    deadline=100.0), rng())
    assert plan.choices == {"a": Option("cheap", 8)}
    assert st.exp_cost[0, strong1] > budget / 2


@pytest.mark.parametrize("name", ["open-loop-mc", "knapsack"])
def test_planned_once_baselines_ignore_observations(name):
    problem = make_problem(strength=4.0)
    state = make_state(problem, budget=0.05, deadline=100.0)
    planner = make_planner(name)
    first = planner.plan(state, rng(1)).choices
    problem.observe("a", first["a"].model, 0, 20, [200] * 20)
    assert planner.plan(state, rng(2)).choices == first
    planner.reset()  # a new program plans afresh
    assert planner.plan(state, rng(2)).choices != first


def test_greedy_replans_on_observations():
    problem = make_problem(p={"cheap": 0.5, "strong": 0.9}, strength=4.0)
    state = make_state(problem, budget=1.0, deadline=100.0)
    greedy = make_planner("greedy")
    assert greedy.plan(state, rng()).choices["a"].model == "cheap"
    problem.observe("a", "cheap", 0, 200, [200] * 200)
    assert greedy.plan(state, rng()).choices["a"].model == "strong"
