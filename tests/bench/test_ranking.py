"""Pair-by-pair rank agreement (runtime/bench/ranking.py): a pair is ordered on the
measured side only when its paired interval excludes zero, on the modelled side only when
the re-fits keep the order, and the rankings agree when no pair both sides order is
reversed."""
from __future__ import annotations

import math

import pytest

from agentrt.runtime.bench import ranking


def test_student_t_quantiles():
    assert ranking.t975(1) == pytest.approx(12.706)
    assert ranking.t975(4) == pytest.approx(2.776)
    assert ranking.t975(30) == pytest.approx(2.042)
    assert ranking.t975(31) == pytest.approx(1.960)
    with pytest.raises(ValueError, match="degree of freedom"):
        ranking.t975(0)


def test_pairing_orders_a_small_steady_difference_that_run_to_run_drift_would_hide():
    # Each round is 2 s slower than the one before (the machine's drift); `a` is 0.2-0.3
    # s faster than `b` in every round. Unpaired, the means differ by 0.23 s against a
    # spread of 2 s; paired, the difference is clear.
    a = [5.0, 7.0, 9.0]
    b = [5.2, 7.2, 9.3]
    d = ranking.paired_order(a, b)
    assert d.mean == pytest.approx(-0.2333, abs=1e-3)
    assert d.half_width == pytest.approx(4.303 * (0.0577 / math.sqrt(3)), rel=1e-2)
    assert d.order == -1
    assert ranking.paired_order(b, a).order == +1


def test_a_difference_within_its_interval_leaves_the_pair_unordered():
    d = ranking.paired_order([5.0, 6.0, 5.5], [5.4, 5.5, 5.8])
    assert abs(d.mean) <= d.half_width and d.order == 0


def test_one_round_orders_nothing_and_mismatched_rounds_are_refused():
    d = ranking.paired_order([1.0], [2.0])
    assert d.order == 0 and d.half_width == math.inf
    with pytest.raises(ValueError, match="same number"):
        ranking.paired_order([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="same number"):
        ranking.paired_order([], [])


def test_the_modelled_order_holds_only_when_enough_refits_keep_it():
    central = {"a": 1.0, "b": 2.0}
    keep9 = [{"a": 1.0, "b": 2.0}] * 9 + [{"a": 3.0, "b": 2.0}]
    keep8 = [{"a": 1.0, "b": 2.0}] * 8 + [{"a": 3.0, "b": 2.0}] * 2
    assert ranking.stable_order(central, keep9, "a", "b", agree=0.9) == -1
    assert ranking.stable_order(central, keep9, "b", "a", agree=0.9) == +1
    assert ranking.stable_order(central, keep8, "a", "b", agree=0.9) == 0
    assert ranking.stable_order(central, keep8, "a", "b", agree=0.8) == -1
    # A tie refits cannot break counts as a tie (refits that all disagree do not flip it).
    assert ranking.stable_order({"a": 2.0, "b": 2.0}, keep9, "a", "b") == 0
    assert ranking.stable_order(central, [], "a", "b") == -1  # no refits: the central order


def test_agreement_counts_pairs_and_takes_unordered_ones_as_ties():
    keys = ranking.pairs(["w", "x", "y", "z"])
    assert keys == [("w", "x"), ("w", "y"), ("w", "z"), ("x", "y"), ("x", "z"), ("y", "z")]
    measured = dict(zip(keys, [-1, -1, 0, -1, 1, 0]))
    modelled = dict(zip(keys, [-1, -1, -1, 0, 1, 1]))
    result = ranking.agreement(measured, modelled)
    assert (result.concordant, result.discordant) == (3, 0)
    assert (result.unordered_x, result.unordered_y) == (2, 1)
    assert result.tau_b == pytest.approx(3 / math.sqrt(4 * 5))
    assert result.agrees


def test_one_reversed_pair_means_the_rankings_do_not_agree():
    keys = ranking.pairs(["x", "y", "z"])
    result = ranking.agreement(dict(zip(keys, [-1, -1, -1])), dict(zip(keys, [-1, -1, 1])))
    assert (result.concordant, result.discordant) == (2, 1)
    assert result.tau_b == pytest.approx(1 / 3)
    assert not result.agrees


def test_sides_that_order_nothing_do_not_agree_and_different_pairs_are_refused():
    keys = ranking.pairs(["x", "y"])
    result = ranking.agreement({keys[0]: 0}, {keys[0]: -1})
    assert math.isnan(result.tau_b) and not result.agrees
    with pytest.raises(ValueError, match="same pairs"):
        ranking.agreement({("x", "y"): 1}, {("x", "z"): 1})
