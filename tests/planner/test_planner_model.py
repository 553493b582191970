import pytest

from agentrt.runtime.core.planner import KS, Option, PlanningProblem, Prior, SubtaskSpec
from tests.planner.builders import call_cost, make_cards, make_problem


def test_options_are_every_model_times_k():
    problem = make_problem()
    assert [problem.option(o) for o in range(problem.num_options)] == [
        Option(m, k) for m in ("cheap", "strong") for k in KS]
    for o in range(problem.num_options):
        assert problem.option_index(problem.option(o)) == o


def test_unknown_options_name_the_valid_ones():
    with pytest.raises(ValueError, match="models \\['cheap', 'strong'\\], k in \\[1, 2, 4, 8\\]"):
        make_problem().option_index(Option("cheap", 3))


@pytest.mark.parametrize("k", KS)
def test_success_cost_and_time_of_k_samples(k):
    problem = make_problem(p={"cheap": 0.3, "strong": 0.9}, sigma=0.0)
    st, o = problem.stats(), problem.option_index(Option("cheap", k))
    assert st.p_success[0, o] == pytest.approx(1 - (1 - 0.3) ** k)
    assert st.exp_cost[0, o] == pytest.approx(k * call_cost(problem, "cheap"))
    assert st.worst_cost[0, o] == pytest.approx(k * call_cost(problem, "cheap", 400))
    assert st.exp_time[0, o] == pytest.approx(0.1 + 200 * 0.010)  # no spread: max = one


def test_more_samples_take_longer_when_lengths_vary():
    st = make_problem(sigma=0.5).stats()
    assert st.exp_time[0, 0] < st.exp_time[0, 1] < st.exp_time[0, 2] < st.exp_time[0, 3]


def test_options_above_max_samples_are_invalid():
    cards = make_cards()
    priors = {("a", c.name): Prior(0.5) for c in cards}
    problem = PlanningProblem([SubtaskSpec("a", max_samples=2)], cards, priors)
    assert problem.stats().valid[0].tolist() == [True, True, False, False] * 2


def test_subtasks_are_ordered_dependencies_first_and_cycles_raise():
    problem = make_problem({"c": ("a", "b"), "a": (), "b": ("a",)})
    assert problem.ids == ["a", "b", "c"]
    assert problem.deps == [(), (0,), (0, 1)]
    with pytest.raises(ValueError, match="cycle"):
        make_problem({"a": ("b",), "b": ("a",)})
    with pytest.raises(ValueError, match="unknown subtasks \\['z'\\]"):
        make_problem({"a": ("z",)})


def test_a_missing_prior_is_named():
    cards = make_cards()
    with pytest.raises(ValueError, match="no prior.*\\('a', 'strong'\\)"):
        PlanningProblem([SubtaskSpec("a")], cards, {("a", "cheap"): Prior(0.5)})
