"""Duration models: the empirical CDF and which source answers for a tool when."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agentrt.toolmgr import DurationModel, EmpiricalCDF, Exponential, Mixture, PointMass


def make_cdf(*samples: float, max_samples: int = 10_000) -> EmpiricalCDF:
    cdf = EmpiricalCDF(max_samples)
    for x in samples:
        cdf.add(x)
    return cdf


def test_empirical_cdf_survival_quantile_mean():
    cdf = make_cdf(4.0, 1.0, 3.0, 2.0)
    assert [cdf.cdf(x) for x in (0.5, 1.0, 2.5, 4.0, 9.0)] == [0.0, 0.25, 0.5, 1.0, 1.0]
    assert [cdf.survival(x) for x in (0.5, 2.0, 4.0)] == [1.0, 0.5, 0.0]
    assert [cdf.quantile(q) for q in (0.0, 0.25, 0.26, 0.5, 0.75, 1.0)] == [1.0, 1.0, 2.0, 2.0, 3.0, 4.0]
    assert (cdf.mean, cdf.count) == (2.5, 4)


def test_quantile_is_exact_despite_float_rounding():
    cdf = make_cdf(*range(1, 11))
    assert cdf.quantile(0.7) == 7  # 0.7 * 10 == 7.000000000000001


def test_memory_is_bounded_to_the_most_recent_samples():
    cdf = make_cdf(100.0, 1.0, 2.0, 3.0, max_samples=3)
    assert (cdf.count, cdf.mean, cdf.quantile(1.0)) == (3, 2.0, 3.0)


def test_empty_cdf_raises_with_a_fix_and_rejects_bad_input():
    cdf = EmpiricalCDF()
    assert (cdf.mean, cdf.count) == (0.0, 0)
    with pytest.raises(ValueError, match="add"):
        cdf.cdf(1.0)
    with pytest.raises(ValueError, match=r"within \[0, 1\]"):
        make_cdf(1.0).quantile(1.5)
    with pytest.raises(ValueError, match="finite"):
        cdf.add(math.nan)


@given(st.lists(st.floats(0, 1e6), min_size=1, max_size=50), st.floats(0, 1))
def test_quantile_is_the_smallest_sample_reaching_q(samples, q):
    cdf = make_cdf(*samples)
    x = cdf.quantile(q)
    assert cdf.cdf(x) >= q - 1e-9
    smaller = [s for s in samples if s < x]
    assert not smaller or cdf.cdf(max(smaller)) < q


def test_exponential_prior():
    prior = Exponential(2.0)
    assert prior.cdf(2.0) == pytest.approx(1 - math.exp(-1))
    assert prior.quantile(0.5) == pytest.approx(2.0 * math.log(2))
    assert prior.quantile(1.0) == math.inf and prior.cdf(-1) == 0.0


def test_mixture_quantile_is_the_smallest_x_reaching_q():
    mix = Mixture(((0.3, make_cdf(1.0, 2.0)), (0.7, Exponential(5.0))))
    assert mix.cdf(mix.quantile(0.1)) == pytest.approx(0.1, abs=1e-9)  # continuous part
    assert mix.quantile(0.5) == pytest.approx(2.0)  # the cdf jumps over 0.5 at sample 2.0
    assert mix.cdf(1.999) < 0.5 <= mix.cdf(2.0)
    assert mix.mean == pytest.approx(0.3 * 1.5 + 0.7 * 5.0)


def record(model: DurationModel, tool: str, seconds: float, times: int) -> None:
    for _ in range(times):
        model.record(tool, seconds)


def test_unseen_tool_without_prior_or_data_is_a_point_mass_at_zero():
    model = DurationModel()
    assert model.source("grep") == "none"
    assert (model.mean("grep"), model.cdf("grep", 0.0), model.survival("grep", 0.0)) == (0.0, 1.0, 0.0)
    assert model.quantile("grep", 0.99) == 0.0
    assert model.distribution("grep") == PointMass(0.0)


def test_prior_answers_until_the_first_sample():
    model = DurationModel(priors={"compile": 10.0})
    record(model, "grep", 1.0, 5)
    assert model.source("compile") == "prior"
    assert model.mean("compile") == 10.0
    assert model.survival("compile", 10.0) == pytest.approx(math.exp(-1))


def test_observations_blend_with_the_prior_then_replace_it_at_min_samples():
    model = DurationModel(priors={"compile": 10.0}, min_samples=4)
    record(model, "compile", 2.0, 1)
    assert model.source("compile") == "blended"
    assert model.mean("compile") == pytest.approx(0.25 * 2.0 + 0.75 * 10.0)
    assert model.cdf("compile", 2.0) == pytest.approx(0.25 + 0.75 * (1 - math.exp(-0.2)))
    record(model, "compile", 2.0, 3)
    assert model.source("compile") == "observed"
    assert (model.mean("compile"), model.cdf("compile", 2.0), model.quantile("compile", 0.99)) == (2.0, 1.0, 2.0)


def test_global_cdf_stands_in_for_tools_without_a_prior():
    model = DurationModel(min_samples=2)
    record(model, "grep", 1.0, 2)
    record(model, "ls", 3.0, 2)
    assert model.source("new_tool") == "global"
    assert model.mean("new_tool") == 2.0
    assert model.cdf("new_tool", 1.0) == 0.5
    record(model, "new_tool", 7.0, 1)  # blended with the global CDF, which now holds it too
    assert model.source("new_tool") == "blended"
    assert model.mean("new_tool") == pytest.approx(0.5 * 7.0 + 0.5 * (1 + 1 + 3 + 3 + 7) / 5)


def test_counts_tools_and_argument_checks():
    model = DurationModel(priors={"b": 1.0})
    record(model, "a", 1.0, 3)
    assert (model.count("a"), model.count("b"), model.tools()) == (3, 0, ["a", "b"])
    with pytest.raises(ValueError, match=">= 0 seconds"):
        model.record("a", -1.0)
    with pytest.raises(ValueError, match="mean > 0"):
        model.set_prior("a", 0.0)
    with pytest.raises(ValueError, match="min_samples"):
        DurationModel(min_samples=10, max_samples=5)
