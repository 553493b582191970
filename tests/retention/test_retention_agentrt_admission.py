"""agentrt's admission: ThunderAgent's rule with the tool's survival curve as the decay
of an acting program's KV, and a bounded wait for the worker that holds a paused
program's prefix."""
from __future__ import annotations

import pytest

from agentrt.runtime.core.retention import make_ttl_policy
from agentrt.runtime.core.retention.agentrt_admission import AgentRTAdmission
from agentrt.runtime.core.retention.thunderagent import ThunderAgentAdmission

from .builders import make_durations

TOKENS = 4000


def acting(admission, tool: str, since: float = 0.0):
    admission.add_worker("w0", 100_000)
    admission.arrived("p", TOKENS, since)
    admission.tick(since)
    admission.reasoning("p", TOKENS, since)
    admission.acting("p", TOKENS, since, tool)
    return admission


def test_an_acting_programs_kv_counts_in_full_until_its_tools_median_then_fades():
    admission = AgentRTAdmission()
    admission.durations = make_durations({"build": [10.0, 20.0, 30.0, 40.0]}, min_samples=4)
    acting(admission, "build")
    overhead = admission.per_program_tokens
    assert admission.load("w0", 19.0) == TOKENS + overhead  # before the median (20 s)
    # past it: P(build still runs after 35 s) = 1/4 of the observed durations
    assert admission.load("w0", 35.0) == pytest.approx(TOKENS * 0.25 + overhead)
    assert admission.load("w0", 50.0) == pytest.approx(overhead)
    # ThunderAgent would have halved it every second: nearly nothing by then
    thunder = acting(ThunderAgentAdmission(), "build")
    assert thunder.load("w0", 19.0) < overhead + 1


def test_a_tool_never_seen_decays_as_thunderagent_does():
    admission = AgentRTAdmission()
    admission.durations = make_durations()
    acting(admission, "new-tool")
    assert admission.load("w0", 2.0) == pytest.approx(TOKENS / 4 + admission.per_program_tokens)


def paused_on_w0() -> AgentRTAdmission:
    """p (3,000 tokens) runs on w0, calls a tool at t=0, and is paused at 0.5 when w0
    loses its room; w1 has 5,000 tokens of room all along."""
    admission = AgentRTAdmission(max_origin_wait_s=2.0)
    admission.add_worker("w0", 5_000)
    admission.add_worker("w1", 5_000)
    admission.arrived("p", 3_000, 0.0)
    assert dict(admission.tick(0.0).resume) == {"p": "w0"}
    admission.reasoning("p", 3_000, 0.0)
    admission.acting("p", 3_000, 0.0, "bash")
    admission.add_worker("w0", 0)
    assert admission.tick(0.5).pause == ("p",)
    return admission


def test_a_paused_program_resumes_on_the_worker_holding_its_prefix_when_it_can():
    admission = paused_on_w0()
    assert admission.tick(1.0).resume == ()  # w0 is full: p waits, w1 is not tried
    admission.add_worker("w0", 4_000)  # room again, though less than w1 has
    assert dict(admission.tick(1.5).resume) == {"p": "w0"}


def test_it_waits_for_that_worker_a_bounded_time_then_goes_elsewhere():
    admission = paused_on_w0()
    assert admission.tick(1.9).resume == ()
    assert dict(admission.tick(2.5).resume) == {"p": "w1"}  # waited 2 s: moves
    thunder = ThunderAgentAdmission()  # ThunderAgent moves at once
    thunder.add_worker("w0", 5_000)
    thunder.add_worker("w1", 5_000)
    thunder.arrived("p", 3_000, 0.0)
    thunder.tick(0.0)
    thunder.reasoning("p", 3_000, 0.0)
    thunder.acting("p", 3_000, 0.0, "bash")
    thunder.add_worker("w0", 0)
    plan = thunder.tick(0.5)
    assert plan.pause == ("p",) and dict(plan.resume) == {"p": "w1"}


def test_it_is_a_ttl_policy_by_name_that_never_pins():
    policy = make_ttl_policy("agentrt-admission", max_origin_wait_s=1.0)
    assert isinstance(policy.admission, AgentRTAdmission)
    assert policy.admission.max_origin_wait_s == 1.0
