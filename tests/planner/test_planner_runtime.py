"""The planner in the runtime, without Ray: declared choices become the planner's problem,
a program is admitted or rejected, each attempt's k samples go out as one fork group
reserved in the ledger, and outcomes feed the planner's estimates."""
from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

import agentrt
from agentrt.programs.errors import ChoiceDeclarationError
from agentrt.runtime.runner.choices import check_declared_models, planning_problem
from agentrt.runtime.core.budget import BudgetLedger
from agentrt.runtime.core.planner import make_planner
from agentrt.runtime.runner.portfolio import PortfolioSession
from tests.planner.runtime_builders import (
    LARGE, SMALL, FakeBackend, candidates, planned_step, run_local, settings,
)

a, b = planned_step("a"), planned_step("b", candidates=candidates(0.3, 1.0))


@agentrt.step
async def relay(ctx, value: dict) -> dict:
    return value


def make_program(budget_usd=0.01, deadline_s=60.0):
    @agentrt.program(budget_usd=budget_usd, deadline_s=deadline_s)
    def chain():
        return b(relay(a()))

    return chain


def run(program, backend=None, **plan):
    backend = backend or FakeBackend()
    return asyncio.run(run_local(program, backend, settings(**plan))), backend


# -- declared choices -> the planner's problem -------------------------------------------

def test_planned_steps_become_subtasks_that_depend_through_unplanned_ones():
    problem = planning_problem(make_program().build(), settings())
    assert problem.ids == ["a", "b"]
    assert [tuple(problem.ids[d] for d in deps) for deps in problem.deps] == [(), ("a",)]
    assert problem.models == [SMALL, LARGE]
    assert problem.max_samples.tolist() == [4, 4]
    assert problem.prompt.tolist() == [50, 50] and problem.max_tokens.tolist() == [200, 200]
    # declared p of 1 is read as nearly 1 (a Beta prior needs p < 1)
    assert problem.success.mean()[1].round(3).tolist() == [0.3, 0.999]


def test_prices_come_from_the_config_and_latency_from_the_scaled_perf_model():
    graph = make_program().build()
    slow = planning_problem(graph, settings(time_scale=1.0, call_overhead_s=0.0))
    fast = planning_problem(graph, settings(time_scale=0.1, call_overhead_s=0.0))
    assert slow.price_in.tolist() == pytest.approx([0.10e-6, 0.60e-6])
    assert slow.price_out.tolist() == pytest.approx([0.20e-6, 0.80e-6])
    assert fast.tpot == pytest.approx(slow.tpot * 0.1)
    padded = planning_problem(graph, settings(time_scale=0.1, call_overhead_s=0.5))
    assert padded.prefill == pytest.approx(fast.prefill + 0.5)


@pytest.mark.parametrize("plan, message", [
    ({"prices": {SMALL: settings().prices[SMALL]}}, "has no price"),
    ({"stand_ins": {}}, r"not served; served: \['llama-3.1-8b'\]"),
])
def test_models_must_be_priced_and_served(plan, message):
    with pytest.raises(ChoiceDeclarationError, match=message):
        check_declared_models(make_program().build(), settings(**plan))


# -- admission ---------------------------------------------------------------------------

def test_a_budget_below_the_cheapest_plan_is_rejected_before_any_call():
    result, backend = run(make_program(budget_usd=1e-6))
    assert result.status == "rejected" and result.success_estimate == 0.0
    assert "cheapest plan" in result.error and "raise budget_usd" in result.error
    assert backend.groups == [] and result.llm_calls == 0 and result.steps_done == []


def test_an_impossible_deadline_is_rejected_with_the_planners_estimate():
    result, _ = run(make_program(deadline_s=1e-3), time_scale=1.0)
    assert result.status == "rejected" and result.success_estimate == 0.0
    assert result.error.startswith(("the mcpp planner gives up at admission",
                                    "estimated success probability 0.0% is below"))


def test_an_estimate_below_the_threshold_is_rejected():
    result, _ = run(make_program(deadline_s=1.5), time_scale=1.0, min_success=0.999)
    assert result.status == "rejected" and 0 < result.success_estimate < 0.999
    assert "below the admission threshold 99.9%" in result.error


# -- running -----------------------------------------------------------------------------

def test_each_attempt_is_one_fork_group_on_the_prompt():
    result, backend = run(make_program(), FakeBackend(verdicts=[False, False, True]),
                          planner="fixed-k")
    assert result.status == "succeeded" and result.steps_done == ["a", "b", "relay"]
    for group in backend.groups:
        first = group[0]
        assert len(group) == 4 and first.fork_of is None
        assert all(r.fork_of == first.request_id for r in group[1:])
        assert all(r.prefix == first.prefix for r in group)  # one prompt
    a0 = backend.groups[0]
    assert [r.request_id for r in a0] == [f"chain-0/a~{j}#0" for j in range(4)]
    assert sorted(backend.released) == sorted(
        ["chain-0/a", "chain-0/relay", "chain-0/b"]
        + [f"chain-0/{s}~{j}" for s in "ab" for j in range(4)])
    assert result.attempts[0] | {"estimate": None, "seconds": 0} == {
        "step": "a", "attempt": 0, "model": SMALL, "k": 4, "passed": 1, "workers": ["w0"],
        "cached_tokens": [0] + [a0[0].prompt_tokens - 1] * 3, "estimate": None,
        "seconds": 0}
    assert result.outputs == {"text": "PASS", "model": SMALL, "k": 4}


def test_the_planner_is_chosen_by_name():
    result, backend = run(make_program(), planner="cheapest")
    assert [(g[0].model, len(g)) for g in backend.groups] == [(SMALL, 1), (SMALL, 1)]
    assert result.ok


@pytest.mark.parametrize("budget", [2e-5, 5e-5, 1e-4, 3e-4])
def test_spend_never_exceeds_the_budget_when_every_sample_fails(budget):
    for planner in ("mcpp", "fixed-k", "strongest"):
        result, backend = run(make_program(budget_usd=budget), FakeBackend(verdicts=[False]),
                              planner=planner)
        assert result.status in ("budget_exhausted", "stopped", "rejected"), result.error
        assert result.spent_usd <= budget
        assert all(len(g) in (1, 2, 4) for g in backend.groups)


def test_a_step_that_samples_without_declaring_choices_fails_with_the_fix():
    @agentrt.step
    async def undeclared(ctx):
        return await ctx.sample([{"role": "user", "content": "hi"}])

    @agentrt.program(budget_usd=0.01)
    def prog():
        return a(), undeclared()

    result, _ = run(prog)
    assert result.status == "failed" and result.failed_step == "undeclared"
    assert "add @step(candidates=[...], verifier=...)" in result.error


# -- the session: outcomes update the estimates, and it replans ----------------------------

def test_outcomes_update_the_estimates_and_every_choice_replans():
    graph = make_program().build()
    problem = planning_problem(graph, settings())
    ledger = BudgetLedger(usd_limit=0.01, prices=dict(settings().prices))
    session = PortfolioSession(problem, make_planner("mcpp"), ledger, 0.01,
                               time.time() + 60, time.time, np.random.default_rng(0))
    assert session.admit(0.05).admitted
    before = problem.success.alpha.copy(), problem.success.beta.copy()

    async def attempt():
        plan = await session.choose("a")
        session.dispatched("a", plan.model, plan.k)
        session.observe("a", plan.model, [False] * plan.k, [100] * plan.k)
        return plan

    plan = asyncio.run(attempt())
    m = problem.model_index[plan.model]
    assert problem.success.beta[0, m] == before[1][0, m] + plan.k
    assert problem.success.alpha[0, m] == before[0][0, m]
    assert len(session.plan_seconds) == 2 and session.attempts == {"a": 1}
    assert "a" not in session.state.done and not session.state.running
