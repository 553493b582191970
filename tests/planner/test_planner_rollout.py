"""Common random numbers: every candidate of a plan call is scored on the same draws."""
import numpy as np

from agentrt.runtime.core.planner import MCPPPlanner, Option
from agentrt.runtime.core.planner.rollout import GreedyRollout, build_tables, rollout, simulate
from tests.planner.builders import make_problem, make_state, rng


def _score(state, firsts, seed=0, n=256):
    problem = state.problem
    rows = np.asarray(state.remaining())
    tables = build_tables(problem, rows, rng(seed), n, attempts=2)
    return simulate(problem, state, tables, GreedyRollout(problem, rows), np.array(firsts))


def _state():
    problem = make_problem({"a": (), "b": ("a",)}, strength=4.0, sigma=0.4)
    return make_state(problem, budget=0.02, deadline=8.0)


def test_same_seed_same_draws_and_scores():
    problem = make_problem(strength=4.0)
    rows = np.array([0])
    t1 = build_tables(problem, rows, rng(7), 64, 2)
    t2 = build_tables(problem, rows, rng(7), 64, 2)
    assert np.array_equal(t1.outcomes, t2.outcomes)
    assert np.array_equal(_score(_state(), [[0, -1], [3, -1]], seed=3),
                          _score(_state(), [[0, -1], [3, -1]], seed=3))


def test_candidates_share_draws_so_a_candidate_scores_the_same_in_any_batch():
    alone = _score(_state(), [[2, -1]])
    batch = _score(_state(), [[0, -1], [2, -1], [5, -1], [2, -1]])
    assert np.array_equal(batch[1], alone[0]) and np.array_equal(batch[3], alone[0])


def test_more_samples_win_on_the_same_draws_when_time_allows_one_attempt():
    state = make_state(make_problem(strength=50.0), budget=1.0, deadline=3.0)
    k1, k8 = _score(state, [[0], [3]])
    assert k8.mean() > 0.95 > 0.6 > k1.mean()
    assert not np.any(k1 & ~k8)  # wherever one sample passes, the first of eight does


def test_a_rollout_dies_when_the_worst_case_cannot_be_reserved():
    problem = make_problem()
    worst = problem.stats().worst_cost[0, problem.option_index(Option("strong", 1))]
    state = make_state(problem, budget=worst * 0.99, deadline=100.0)
    assert not _score(state, [[4]]).any()


def test_mcpp_is_deterministic_given_the_seed():
    plans = [MCPPPlanner().plan(_state(), rng(11)) for _ in range(2)]
    assert plans[0] == plans[1]


def test_rollouts_count_the_subtasks_passed_before_they_finish_or_die():
    state = _state()  # a then b, a budget for a few cheap calls
    rows = np.asarray(state.remaining())
    tables = build_tables(state.problem, rows, rng(0), 256, attempts=2)
    result = rollout(state.problem, state, tables, GreedyRollout(state.problem, rows),
                     np.array([[0, -1]]))
    assert np.all(result.passed[result.finished] == 2)
    assert set(np.unique(result.passed[~result.finished])) <= {0.0, 1.0}
    assert result.passed.max() == 2 and (result.passed == 1).any()
