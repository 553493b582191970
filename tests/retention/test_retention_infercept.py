"""InferCept's min-waste rule and its per-step swap budget."""
from __future__ import annotations

import math

import pytest

from agentrt.runtime.core.retention.infercept import InferCeptTTL, Waste, waste_of

from .builders import make_durations, make_request

# Context 1,000 tokens, running batch 3,000, recompute 0.5 s, reload 0.05 s.
ENGINE = {"recompute_s": 0.5, "batch_tokens": 3000, "reload_s": 0.05}


def test_waste_of_each_choice():
    request = make_request(context=1000, **ENGINE)
    assert waste_of(request, 10.0) == Waste(preserve=10_000.0, discard=2_000.0, swap=400.0)
    no_host = make_request(context=1000, recompute_s=0.5, batch_tokens=3000)
    assert waste_of(no_host, 10.0).swap == math.inf


@pytest.mark.parametrize("tool_mean, engine, action", [
    (10.0, ENGINE, "offload"),  # swap 400 < discard 2,000 < preserve 10,000
    (10.0, {"recompute_s": 0.5, "batch_tokens": 3000}, "drop"),  # no host: discard
    (0.1, ENGINE, "pin"),  # preserve 100 wastes least
])
def test_the_least_wasteful_choice_wins(tool_mean, engine, action):
    decision = InferCeptTTL().decide(make_request(context=1000, **engine),
                                     make_durations(pytest=tool_mean))
    assert decision.action == action
    if action == "pin":
        assert decision.until == math.inf  # preserved until the next turn


def test_the_swap_budget_goes_to_the_sessions_that_would_waste_most():
    # One forward pass of 0.05 s moves 1,000 tokens: one free swap per step.
    step = {**ENGINE, "step_s": 0.05}
    cheap = make_request(context=1000, session="cheap", now=1.0, **step)
    costly = make_request(context=1000, session="costly", now=1.0,
                          **{**step, "recompute_s": 2.0})  # discard wastes 8,000
    policy = InferCeptTTL()
    decisions = policy.decide_many([cheap, costly], make_durations(pytest=10.0))
    assert [d.reason for d in decisions] == ["swap wastes least (400)",
                                             "swap within the step's budget: free"]
    again = policy.decide(make_request(context=1000, now=2.0, **step),
                          make_durations(pytest=10.0))
    assert again.reason == "swap within the step's budget: free"  # a new step, new budget


def test_a_last_step_is_dropped_without_using_the_budget():
    policy = InferCeptTTL()
    step = {**ENGINE, "step_s": 0.05}
    durations = make_durations(pytest=10.0)
    assert policy.decide(make_request(last_step=True, **step), durations).action == "drop"
    assert "free" in policy.decide(make_request(context=1000, **step), durations).reason
