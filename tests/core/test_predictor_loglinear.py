"""The log-linear size predictor: cold start, what its regression learns, when it
refits; and the predictor registry."""
import math

import pytest

from agentrt.runtime.core.prediction.gittins_index import attained_index
from agentrt.runtime.core.prediction.loglinear import LogLinearPredictor
from agentrt.runtime.core.prediction.registry import make_predictor


def learn(p: LogLinearPredictor, features: dict, *sizes: int, agent: str = "coder"):
    row = p.keys(agent, features)
    for size in sizes:
        p.observe(row, size)
    return row


def test_cold_start_orders_by_attained_service():
    p = LogLinearPredictor(min_samples=4)
    row = learn(p, {"task_kind": "fix"}, 5, 5, 5)
    assert p.predict(row, 2) == p.predict(row, 2)
    assert p.predict(row, 2).level == -1 and p.predict(row, 2).index == attained_index(2)


def test_categories_shift_the_predicted_size():
    p = LogLinearPredictor(min_samples=4, ridge=1e-6)
    short = learn(p, {"task_kind": "question"}, *[2] * 8)
    long = learn(p, {"task_kind": "refactor"}, *[32] * 8)
    assert p.predict(short, 0).index == pytest.approx(1 / 2, rel=0.06)
    assert p.predict(long, 0).index == pytest.approx(1 / 32, rel=0.06)
    assert p.predict(short, 0).level == 0 and p.predict(short, 0).samples == 16


def test_a_size_feature_is_a_slope_in_log_space():
    # size = 2 x repository size: log(size) = log 2 + log2(1 + repo) x ln 2, nearly.
    p = LogLinearPredictor(min_samples=4, ridge=1e-9)
    for repo in [7, 15, 31, 63] * 4:
        learn(p, {"repo_tokens": repo}, 2 * (repo + 1))
    unseen = p.keys("coder", {"repo_tokens": 127})  # a size it never saw
    assert p.predict(unseen, 0).index == pytest.approx(1 / 256, rel=0.06)


def test_an_unseen_category_predicts_what_the_rest_share():
    p = LogLinearPredictor(min_samples=4, ridge=1e-6)
    learn(p, {"task_kind": "fix"}, *[10] * 8)
    new = p.keys("coder", {"task_kind": "never-seen"})
    assert p.predict(new, 0).index == pytest.approx(1 / 10, rel=0.06)


def test_it_refits_after_a_sixteenth_of_the_window_is_new():
    p = LogLinearPredictor(min_samples=2, ridge=1e-6, window=64)
    row = learn(p, {}, *[8] * 32)
    before = p.predict(row, 0).index
    learn(p, {}, 1)  # 1 new < 32 // 16: the last fit stands
    assert p.predict(row, 0).index == before
    learn(p, {}, 1)  # 2 new: refitted, sizes now shorter on average
    assert p.predict(row, 0).index > before


def test_the_registry_names_predictors_and_refuses_unknown_ones_and_options():
    assert isinstance(make_predictor("loglinear", window=100), LogLinearPredictor)
    with pytest.raises(ValueError, match="unknown size predictor 'oracle'; valid: "
                                         "buckets, loglinear"):
        make_predictor("oracle")
    with pytest.raises(ValueError, match="size predictor 'buckets': .*'ridge'"):
        make_predictor("buckets", ridge=1.0)
    with pytest.raises(ValueError, match="need min_samples >= 2"):
        LogLinearPredictor(min_samples=1)
