"""ThunderAgent-style admission: pause on overload, decay acting tokens, resume."""
from __future__ import annotations

import pytest

from agentrt.runtime.core.retention.thunderagent import (
    AdmissionPlan,
    ThunderAgentAdmission,
    ThunderAgentTTL,
)

from .builders import make_durations, make_request


def two_workers() -> ThunderAgentAdmission:
    admission = ThunderAgentAdmission()
    admission.add_worker("w0", 10_000)
    admission.add_worker("w1", 10_000)
    return admission


def admitted() -> ThunderAgentAdmission:
    """p3 (9,000 tokens) on w0; p2 (5,000) and p1 (3,000) on w1, all reasoning at t=0."""
    admission = two_workers()
    for pid, tokens in (("p1", 3000), ("p2", 5000), ("p3", 9000)):
        admission.arrived(pid, tokens, 0.0)
    plan = admission.tick(0.0)
    assert plan == AdmissionPlan(resume=(("p3", "w0"), ("p2", "w1"), ("p1", "w1")))
    for pid, tokens in (("p1", 3000), ("p2", 5000), ("p3", 9000)):
        admission.reasoning(pid, tokens, 0.0)
    return admission


def test_new_programs_are_admitted_smallest_first_and_placed_largest_first():
    admission = admitted()
    assert [admission.worker_of(p) for p in ("p1", "p2", "p3")] == ["w1", "w1", "w0"]
    assert all(admission.may_submit(p) for p in ("p1", "p2", "p3"))


def test_overload_pauses_acting_programs_smallest_first():
    admission = admitted()
    admission.acting("p2", 5000, 0.0)
    admission.reasoning("p1", 6000, 0.0)  # w1: 6,100 + 5,100 > 10,000
    plan = admission.tick(0.0)
    assert plan.pause == ("p2",) and not admission.may_submit("p2")
    assert admission.request_pending("p2", 0.5) is False  # its next turn waits


def test_acting_tokens_decay_so_an_old_tool_call_does_not_cause_a_pause():
    admission = admitted()
    admission.acting("p2", 5000, 0.0)
    admission.reasoning("p1", 6000, 0.0)
    assert admission.load("w1", 1.0) == pytest.approx(6100 + 2600)
    assert admission.tick(1.0).pause == ()


def test_reasoning_overload_marks_programs_to_pause_when_their_turn_ends():
    admission = admitted()
    admission.reasoning("p3", 12_000, 0.0)
    plan = admission.tick(0.0)
    assert (plan.pause, plan.pause_after_turn) == ((), ("p3",))
    assert admission.may_submit("p3")
    admission.acting("p3", 12_000, 1.0)
    assert not admission.may_submit("p3")


def test_a_paused_program_with_a_pending_request_resumes_first_on_its_origin():
    admission = admitted()
    admission.acting("p2", 5000, 0.0)
    admission.reasoning("p1", 6000, 0.0)
    admission.tick(0.0)  # pauses p2
    admission.request_pending("p2", 1.0)
    admission.arrived("p4", 1000, 1.0)
    admission.finished("p1")  # w1 has room again
    plan = admission.tick(2.0)
    assert plan.resume == (("p2", "w1"), ("p4", "w1"))  # largest first; p2 back home
    assert admission.may_submit("p2")


def test_the_ttl_policy_never_pins_and_carries_the_admission():
    policy = ThunderAgentTTL()
    assert policy.decide(make_request(), make_durations()).action == "drop"
    assert isinstance(policy.admission, ThunderAgentAdmission)
