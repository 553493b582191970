"""The Gittins index of an empirical size distribution, and the bucket predictor that
learns those distributions per feature bucket: cold start, backoff, refresh, window."""
import numpy as np
import pytest

from agentrt.runtime.core.prediction.gittins_index import attained_index, gittins_index
from agentrt.runtime.core.prediction.buckets import BucketPredictor


def sizes(*values: float) -> np.ndarray:
    return np.sort(np.asarray(values, dtype=float))


def test_the_index_is_the_best_chance_to_finish_per_unit_of_service():
    # Half the jobs need 1 call, half 10: serving one call finishes half of them
    # (0.5 / 1), serving to the end finishes all for 5.5 on average (1 / 5.5).
    assert gittins_index(sizes(1, 1, 10, 10), 0).index == pytest.approx(0.5)
    # After one call the job is a long one: 9 more for sure.
    result = gittins_index(sizes(1, 1, 10, 10), 1)
    assert result.index == pytest.approx(1 / 9) and result.mean_remaining == 9
    assert result.samples_above == 2


def test_known_sizes_reduce_to_shortest_remaining_first():
    assert gittins_index(sizes(7, 7, 7), 3).index == pytest.approx(1 / 4)


def test_attained_service_order_goes_by_power_of_two_levels():
    assert [attained_index(a) for a in (0, 1, 2, 3, 4, 7, 8)] == [
        1.0, 1 / 2, 1 / 3, 1 / 3, 1 / 5, 1 / 5, 1 / 9]


def test_a_job_past_every_sample_gets_the_attained_service_index():
    result = gittins_index(sizes(2, 3), 5)
    assert result.index == attained_index(5) == pytest.approx(1 / 5)
    assert result.mean_remaining is None
    with pytest.raises(ValueError, match="attained service must be >= 0"):
        gittins_index(sizes(2, 3), -1)


def learned(predictor: BucketPredictor, agent: str, features, *totals: int) -> tuple:
    keys = predictor.keys(agent, features)
    for total in totals:
        predictor.observe(keys, total)
    return keys


def test_cold_start_orders_by_attained_service():
    p = BucketPredictor(min_samples=4, min_tail=1)
    keys = learned(p, "coder", {"task_kind": "fix"}, 5, 5, 5)  # 3 < 4: still cold
    assert [p.predict(keys, a).level for a in (0, 2)] == [-1, -1]
    assert p.predict(keys, 0).index > p.predict(keys, 2).index  # least attained first
    learned(p, "coder", {"task_kind": "fix"}, 5)
    assert p.predict(keys, 0).level == 0


def test_the_finest_bucket_with_enough_programs_decides():
    p = BucketPredictor(min_samples=4, min_tail=1)
    short = learned(p, "coder", {"task_kind": "question"}, 2, 2, 2, 2)
    long = learned(p, "coder", {"task_kind": "refactor"}, 40, 40, 40, 40)
    assert p.predict(short, 0).index == pytest.approx(1 / 2)
    assert p.predict(long, 0).index == pytest.approx(1 / 40)
    # A task kind seen too rarely falls back on every program of the agent.
    rare = learned(p, "coder", {"task_kind": "test"}, 3)
    guess = p.predict(rare, 0)
    assert guess.level == 2 and guess.samples == 9


def test_too_few_programs_longer_than_the_attained_service_move_to_a_coarser_level():
    p = BucketPredictor(levels=(("task_kind",), ()), min_samples=4, min_tail=2)
    fix = learned(p, "a", {"task_kind": "fix"}, 3, 3, 3, 9)
    learned(p, "a", {"task_kind": "feature"}, 20, 20, 20, 20)
    assert p.predict(fix, 0).level == 0
    at_four = p.predict(fix, 4)  # one fix longer than 4 calls: ask every program
    assert at_four.level == 1 and at_four.mean_remaining == pytest.approx((5 + 16 * 4) / 5)


def test_sizes_share_buckets_by_power_of_two_and_missing_features_share_one():
    p = BucketPredictor()
    assert p.keys("a", {"repo_tokens": 300_000, "task_kind": "fix"})[0] == \
        p.keys("a", {"repo_tokens": 400_000, "task_kind": "fix"})[0]
    assert p.keys("a", {"repo_tokens": 600_000})[0] != p.keys("a", {"repo_tokens": 300_000})[0]
    assert p.keys("a", None) == p.keys("a", {}) == (("a", "-", "-", "-"), ("a", "-"), ("a",), ())


def test_a_bucket_refreshes_after_a_sixteenth_of_new_programs_and_keeps_a_window():
    p = BucketPredictor(levels=((),), min_samples=1, min_tail=1, window=40)
    keys = learned(p, "a", None, *[10] * 32)
    assert p.predict(keys, 0).index == pytest.approx(1 / 10)
    learned(p, "a", None, 1)  # 1 new < 32 / 16: the snapshot stands
    assert p.predict(keys, 0).index == pytest.approx(1 / 10)
    learned(p, "a", None, 1)  # 2 new: rebuilt
    assert p.predict(keys, 0).index > 1 / 10
    learned(p, "a", None, *[1] * 40)  # only the last 40 are kept
    assert p.predict(keys, 0).index == pytest.approx(1.0)


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="the last level must be"):
        BucketPredictor(levels=(("agent",),))
    with pytest.raises(ValueError, match="window >= min_samples"):
        BucketPredictor(min_samples=50, window=10)
