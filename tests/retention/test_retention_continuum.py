"""Continuum's CDF rule: the argmax, its eta and Tq trackers, and its decisions."""
from __future__ import annotations

import numpy as np
import pytest

from agentrt.runtime.core.retention.continuum import ContinuumTTL, best_ttl
from agentrt.runtime.core.retention.decision import PinDecision
from agentrt.runtime.core.retention.trackers import EtaTracker, QueueDelayTracker

from .builders import make_durations, make_request


@pytest.mark.parametrize("samples, k, tau", [
    ([1.0, 2.0, 3.0, 10.0], 5.0, 3.0),  # scores 0.25, 0.5, 0.75; 10 >= K never wins
    ([1.0, 2.0, 3.0, 10.0], 2.0, 0.0),  # every sample scores below tau = 0
    ([2.0, 2.0, 2.0, 9.0], 4.0, 2.0),  # the last copy carries F(2) = 0.75
    ([0.0, 0.0, 5.0], 3.0, 0.0),  # tau = 0 already has F(0) = 2/3
    ([1.0, 3.0], 4.0, 1.0),  # 1 and 3 tie at 1.0: the shorter pin
    ([], 4.0, 0.0),
])
def test_best_ttl_is_the_exact_argmax(samples, k, tau):
    assert best_ttl(samples, k) == tau


def test_eta_is_one_at_cold_start_and_minus_the_correlation_after():
    eta = EtaTracker()
    assert eta.value == 1.0
    eta.program_finished(1)  # no tool call: no point
    eta.program_finished(5)  # points on a line of slope -1
    assert eta.value == pytest.approx(1.0)
    eta.program_finished(2)
    eta.program_finished(10)
    xs = [1, 2, 3, 4, 1, 1, 2, 3, 4, 5, 6, 7, 8, 9]
    ys = [4, 3, 2, 1, 1, 9, 8, 7, 6, 5, 4, 3, 2, 1]
    assert eta.value == pytest.approx(-np.corrcoef(xs, ys)[0, 1])


def test_eta_forgets_programs_beyond_its_window():
    short, long = EtaTracker(window=1), EtaTracker(window=2)
    for eta in (short, long):
        eta.program_finished(2)
        eta.program_finished(10)
    assert long.value < 0.99 and short.value == pytest.approx(1.0)  # only T = 10 left


def test_tq_is_a_sliding_mean():
    tq = QueueDelayTracker(window=2)
    assert tq.value == 0.0
    for d in (10.0, 1.0, 3.0):
        tq.record(d)
    assert tq.value == 2.0


def test_cold_start_pins_two_seconds_one_per_program():
    decision = ContinuumTTL().decide(make_request(now=1.0), make_durations())
    assert decision == PinDecision.pin(3.0, "cold start: fixed pin", exclusive=True)


def test_with_enough_samples_the_tools_cdf_sets_tau():
    durations = make_durations({"pytest": [1.0] * 50 + [20.0] * 50})
    policy = ContinuumTTL()
    # K = eta x Tq + rebuild = 1 x 0 + 1: nothing below K, no pin.
    assert policy.decide(make_request(now=5.0), durations).action == "drop"
    policy.on_queue_delay(10.0, cache_lost=True)
    policy.on_queue_delay(99.0, cache_lost=False)  # its cache survived: not Tq's business
    decision = policy.decide(make_request(now=5.0), durations)  # K = 11: tau = 1
    assert (decision.action, decision.until, decision.exclusive) == ("pin", 6.0, True)


def test_a_tool_with_few_samples_uses_the_global_cdf():
    durations = make_durations({"ls": [0.5] * 100, "pytest": [30.0] * 10})
    decision = ContinuumTTL().decide(make_request("pytest", now=0.0), durations)
    assert decision.until == 0.5 and "global" in decision.reason


def test_continuum_uses_the_cheaper_rebuild_and_skips_last_steps():
    durations = make_durations({"pytest": [1.5] * 100})
    policy = ContinuumTTL()
    assert policy.decide(make_request(recompute_s=2.0), durations).action == "pin"
    assert policy.decide(make_request(recompute_s=2.0, reload_s=0.1), durations).action == "drop"
    assert policy.decide(make_request(last_step=True, recompute_s=2.0), durations).action == "drop"


def test_eta_feedback_reaches_the_rule():
    policy = ContinuumTTL()
    policy.on_program_finished("p", 5)
    assert policy.eta.value == pytest.approx(1.0)
