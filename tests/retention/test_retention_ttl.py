"""The TTL policy registry, the simple policies, and agentrt's soft pin."""
from __future__ import annotations

import math

import pytest

from agentrt.runtime.core.retention import ttl
from agentrt.runtime.core.retention.agentrt import AgentRTTTL
from agentrt.runtime.core.retention.decision import PinDecision, SurvivalWeight
from agentrt.runtime.core.retention.ttl import (
    FixedPin,
    NoRetention,
    make_ttl_policy,
    register_ttl_policy,
    ttl_policy_names,
)

from .builders import make_durations, make_request

ONE_TO_TEN = {"pytest": [float(i) for i in range(1, 11)]}  # 10 samples, 1..10 s


def test_every_policy_is_registered_by_name():
    assert ttl_policy_names() == ["agentrt", "agentrt-admission", "continuum", "fixed",
                                  "infercept", "none",
                                  "thunderagent"]
    assert all(make_ttl_policy(n).name == n for n in ttl_policy_names())


def test_unknown_policy_names_the_valid_ones():
    with pytest.raises(ValueError, match=r"unknown TTL policy 'lru'.*agentrt, agentrt-admission, continuum"):
        make_ttl_policy("lru")


def test_registering_returns_the_class_and_refuses_duplicates(monkeypatch):
    monkeypatch.setattr(ttl, "_POLICIES", dict(ttl._POLICIES))

    @register_ttl_policy("always-drop")
    class AlwaysDrop(NoRetention):
        pass

    assert isinstance(make_ttl_policy("always-drop"), AlwaysDrop)
    with pytest.raises(ValueError, match="already registered"):
        register_ttl_policy("always-drop")(AlwaysDrop)


def test_none_never_pins():
    decision = NoRetention().decide(make_request(), make_durations())
    assert decision == PinDecision.drop(10.0, "no retention")


@pytest.mark.parametrize("samples, pinned", [
    ({}, True),  # unseen: counts as 0 s
    ({"pytest": [1.0, 2.0]}, True),  # mean 1.5 s
    ({"pytest": [1.0, 5.0]}, False),  # mean 3 s
])
def test_fixed_pins_two_seconds_when_the_observed_mean_is_short(samples, pinned):
    decision = FixedPin().decide(make_request(now=4.0), make_durations(samples))
    assert (decision.action, decision.until) == (("pin", 6.0) if pinned else ("drop", 4.0))


def test_fixed_ignores_priors_and_never_pins_a_last_step():
    durations = make_durations(pytest=30.0)  # a prior, no observation
    assert FixedPin().decide(make_request(), durations).action == "pin"
    assert FixedPin().decide(make_request(last_step=True), durations).action == "drop"


# -- agentrt ------------------------------------------------------------------------------


def test_agentrt_soft_pin_is_full_until_the_median_then_follows_survival():
    durations = make_durations(ONE_TO_TEN, min_samples=10)
    decision = AgentRTTTL().decide(make_request(now=100.0), durations)
    assert (decision.action, decision.until) == ("soft", 110.0)  # the 0.95 quantile: 10 s
    w = decision.weight
    assert [w(t) for t in (100.0, 104.9, 105.0, 107.0, 109.5, 110.0)] == \
        pytest.approx([1.0, 1.0, 0.5, 0.3, 0.1, 0.0])


def test_agentrt_values_a_pin_by_the_rebuild_it_saves_per_token():
    durations = make_durations(ONE_TO_TEN, min_samples=10)
    recompute = AgentRTTTL().decide(make_request(context=1000, recompute_s=2.0), durations)
    reload = AgentRTTTL().decide(make_request(context=1000, recompute_s=2.0, reload_s=0.1,
                                              batch_tokens=100_000), durations)
    assert (recompute.value, reload.value) == pytest.approx((2e-3, 1e-4))


def test_agentrt_offloads_tools_predicted_to_outlast_any_pin_when_reload_is_cheaper():
    durations = make_durations({"build": [900.0] * 10}, min_samples=10)
    policy = AgentRTTTL(max_pin_s=300.0)
    with_host = policy.decide(make_request("build", reload_s=0.1), durations)
    without = policy.decide(make_request("build"), durations)
    assert (with_host.action, without.action) == ("offload", "drop")


def test_agentrt_leaves_a_long_wait_to_the_host_tier_when_holding_costs_more():
    durations = make_durations(ONE_TO_TEN, min_samples=10)  # median 5 s
    # holding 1000 tokens for 5 s (5000) vs a 0.1 s reload stalling 1000 + 9000 tokens
    # twice (2000): swap is cheaper; with a 100x larger batch, holding is.
    small = AgentRTTTL().decide(make_request(reload_s=0.1, batch_tokens=9000), durations)
    large = AgentRTTTL().decide(make_request(reload_s=0.1, batch_tokens=900_000), durations)
    assert (small.action, large.action) == ("drop", "soft")
    assert "host reload" in small.reason


def test_agentrt_prefetches_what_went_to_host_memory_one_reload_before_the_tool_ends():
    durations = make_durations(ONE_TO_TEN, min_samples=10)  # median 5 s
    swap = AgentRTTTL().decide(make_request(reload_s=0.1, batch_tokens=9000), durations)
    assert swap.action == "drop" and swap.prefetch_at == pytest.approx(10.0 + 5.0 - 0.1)
    long = make_durations({"build": [900.0] * 10}, min_samples=10)
    offload = AgentRTTTL().decide(make_request("build", reload_s=0.1), long)
    assert offload.action == "offload" and offload.prefetch_at == pytest.approx(909.9)
    # a pin needs no prefetch; nor does anything without a host tier, or with it off
    pin = AgentRTTTL().decide(make_request(reload_s=0.1, batch_tokens=900_000), durations)
    assert pin.action == "soft" and pin.prefetch_at is None
    assert AgentRTTTL().decide(make_request("build"), long).prefetch_at is None
    off = AgentRTTTL(prefetch=False).decide(make_request("build", reload_s=0.1), long)
    assert off.action == "offload" and off.prefetch_at is None


def test_agentrt_drops_on_the_last_step_and_cold_pins_an_unknown_tool():
    policy = AgentRTTTL()
    assert policy.decide(make_request(last_step=True), make_durations()).action == "drop"
    cold = policy.decide(make_request(now=1.0), make_durations())
    assert (cold.action, cold.until, cold.weight(2.9)) == ("soft", 3.0, 1.0)


def test_agentrt_knobs_for_the_mechanism():
    policy = make_ttl_policy("agentrt", cap_fraction=0.4)
    assert (policy.pin_cap_fraction, policy.pressure_rule) == (0.4, "pins_first")
    with pytest.raises(ValueError, match="cap_fraction"):
        AgentRTTTL(cap_fraction=0.0)


def test_survival_weight_is_zero_from_its_deadline_and_on_nan():
    w = SurvivalWeight.sampled(0.0, 1.0, 5.0, lambda t: math.nan)
    assert (w(0.5), w(2.0), w(5.0)) == (1.0, 0.0, 0.0)


def test_survival_weight_samples_the_fading_part_and_interpolates_between_points():
    # S(t) = 1 - t / 10 sampled at 5 points over [2, 10] s after the start.
    w = SurvivalWeight.sampled(100.0, 102.0, 110.0, lambda t: 1.0 - t / 10.0, points=5)
    assert [x for x, _ in w.curve] == [2.0, 4.0, 6.0, 8.0, 10.0]
    assert w(101.9) == 1.0 and w(110.0) == 0.0
    assert w(104.0) == pytest.approx(0.6) and w(105.0) == pytest.approx(0.5)
    # A step-shaped survival is only known at the points: between them it is linear.
    step = SurvivalWeight.sampled(0.0, 0.0, 4.0, lambda t: 1.0 if t < 1.5 else 0.2, points=3)
    assert step.curve == ((0.0, 1.0), (2.0, 0.2), (4.0, 0.2))
    assert step(1.0) == pytest.approx(0.6)


def test_a_soft_pin_decision_means_the_same_after_the_wire():
    from agentrt.runtime import wire

    weight = SurvivalWeight.sampled(3.0, 5.0, 30.0, lambda t: math.exp(-t / 7.0))
    decision = PinDecision.soft(30.0, weight, 0.002, "soft pin").with_prefetch(20.0)
    back = wire.decode(wire.encode(decision))
    assert back == decision
    assert [back.weight(t) for t in (4.0, 9.0, 17.5, 29.9)] == \
        [decision.weight(t) for t in (4.0, 9.0, 17.5, 29.9)]
