import numpy as np
import pytest

from agentrt.runtime.bench.plan_tasks import problem_of
from agentrt.runtime.core.planner.estimates import (
    QUANTILES,
    LengthEstimate,
    LengthEstimates,
    SuccessEstimates,
    logit_normal_beta,
    max_of_k_weights,
)
from agentrt.programs.workloads.planning import generate_planning
from agentrt.runtime.bench.planning import default_cards
from agentrt.runtime.core.planner.model import PlanningProblem
from tests.planner.builders import make_problem, rng


def test_beta_prior_is_mean_times_strength_and_updates_add_counts():
    est = SuccessEstimates(np.array([[0.3]]), np.array([[10.0]]))
    assert (est.alpha[0, 0], est.beta[0, 0]) == pytest.approx((3.0, 7.0))
    est.update(0, 0, successes=2, failures=3)
    assert (est.alpha[0, 0], est.beta[0, 0]) == pytest.approx((5.0, 10.0))
    assert est.mean()[0, 0] == pytest.approx(1 / 3)


def test_beta_rejects_bad_priors_and_counts():
    with pytest.raises(ValueError, match="in \\(0, 1\\)"):
        SuccessEstimates(np.array([[1.0]]), np.array([[4.0]]))
    with pytest.raises(ValueError, match="positive"):
        SuccessEstimates(np.array([[0.5]]), np.array([[0.0]]))
    with pytest.raises(ValueError, match=">= 0"):
        SuccessEstimates(np.array([[0.5]]), np.array([[4.0]])).update(0, 0, -1, 0)


def test_posterior_draws_follow_the_beta():
    est = SuccessEstimates(np.array([[0.2, 0.8]]), np.array([[50.0, 50.0]]))
    draws = est.sample(rng(), np.array([0]), 20_000)
    assert draws.shape == (1, 2, 20_000)
    assert draws.mean(axis=2)[0] == pytest.approx([0.2, 0.8], abs=0.01)


def test_observations_move_the_success_estimate_and_the_option_figures():
    problem = make_problem(p={"cheap": 0.5, "strong": 0.9}, strength=4.0)
    before = problem.stats().p_success[0, 0]
    problem.observe("a", "cheap", successes=0, failures=4, lengths=[150] * 4)
    after = problem.stats()
    assert problem.success.mean()[0, 0] == pytest.approx(2 / 8)
    assert after.p_success[0, 0] == pytest.approx(0.25) and before == pytest.approx(0.5)
    k4 = problem.option_index(problem.option(2))
    assert after.p_success[0, k4] == pytest.approx(1 - 0.75**4)


def test_lengths_move_toward_observations_and_their_median_error_shrinks():
    est = LengthEstimate(prior_median=400, prior_sigma=0.5, prior_weight=4, max_tokens=2000,
                         median_sigma=0.3)
    prior_q, prior_spread = est.quantiles(), est.scale_sigma()
    est.observed.extend([100] * 40)
    assert len(est.quantiles()) == QUANTILES
    assert np.median(est.quantiles()) == pytest.approx(100)
    assert np.median(prior_q) == pytest.approx(400, rel=0.05)
    assert est.scale_sigma() < prior_spread / 3


def test_lengths_are_clipped_to_max_tokens():
    table = LengthEstimates([[LengthEstimate(900, 1.0, 4, 1000)]]).table
    assert table.max() == 1000 and table.min() >= 1


def test_expected_max_of_k_weights_are_distributions_that_favour_the_top():
    w = max_of_k_weights(np.array([1, 2, 8]))
    assert w.sum(axis=1) == pytest.approx([1, 1, 1])
    assert w[0] == pytest.approx(np.full(QUANTILES, 1 / QUANTILES))
    assert w[2, -1] > w[1, -1] > w[0, -1]


def test_logit_normal_prior_matches_the_moments_of_the_logit_error():
    rng = np.random.default_rng(0)
    for p in (0.05, 0.3, 0.5, 0.9):
        mean, strength = logit_normal_beta(p, 0.8)
        draws = 1 / (1 + np.exp(-(np.log(p / (1 - p)) + 0.8 * rng.standard_normal(200_000))))
        assert mean == pytest.approx(draws.mean(), abs=2e-3)
        beta_var = mean * (1 - mean) / (strength + 1)
        assert beta_var == pytest.approx(draws.var(), rel=0.03)
    # the same logit error is worth more samples near 0 or 1 than in the middle
    assert logit_normal_beta(0.9, 0.8)[1] > 1.5 * logit_normal_beta(0.5, 0.8)[1]
    assert logit_normal_beta(0.5, 0.0) == (0.5, 400.0)
    with pytest.raises(ValueError, match="0 < p < 1"):
        logit_normal_beta(1.0, 0.8)


def test_a_task_with_success_uncertainty_gets_matched_priors():
    task = generate_planning("codeflow", 1, 3)[0]
    assert task.success_uncertainty == 0.8
    problem = problem_of(task, default_cards())
    s, told = task.subtasks[0], task.subtasks[0].prior
    i = problem.index[s.subtask_id]
    for m, name in enumerate(problem.models):
        mean, strength = logit_normal_beta(told[name].p, 0.8)
        assert problem.success.mean()[i, m] == pytest.approx(mean)
        assert problem.success.alpha[i, m] + problem.success.beta[i, m] == pytest.approx(
            strength)
    task.success_uncertainty = None  # the told p worth prior_strength samples
    plain = problem_of(task, default_cards())
    assert plain.success.mean()[i, 0] == pytest.approx(told[problem.models[0]].p)
    assert plain.success.alpha[i, 0] + plain.success.beta[i, 0] == pytest.approx(4.0)
