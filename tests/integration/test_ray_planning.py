"""Planned programs on the Ray runtime: parallel samples are forks that share the
prompt's KV on one worker, spend never exceeds the budget, infeasible programs are
rejected at admission, and a deadline reports what finished."""
from __future__ import annotations

import pytest
import ray.cloudpickle

from agentrt.programs.errors import ChoiceDeclarationError
from agentrt.runtime.cluster.driver import Runtime
from agentrt.runtime.config import RuntimeConfig
from agentrt.runtime.engines.simulated.responder import ScriptedResponder
from tests.integration import planning_programs as progs

pytestmark = [pytest.mark.ray, pytest.mark.timeout(120)]
ray.cloudpickle.register_pickle_by_value(progs)


def start(planner: str, trace_dir) -> Runtime:
    config = RuntimeConfig(workers=2, time_scale=0.2, runners=1, planner=planner,
                           stand_ins={progs.LARGE: progs.SMALL}, record_decisions=True,
                           trace_dir=trace_dir)
    return Runtime(config, responder=ScriptedResponder(progs.coin))


@pytest.fixture(scope="module")
def fixed_k(ray_cluster, tmp_path_factory):
    """A runtime whose planner always draws 4 samples."""
    with start("fixed-k", tmp_path_factory.mktemp("runs")) as rt:
        yield rt
        rt.check_integrity()


@pytest.fixture(scope="module")
def mcpp(ray_cluster, tmp_path_factory):
    with start("mcpp", tmp_path_factory.mktemp("runs")) as rt:
        yield rt
        rt.check_integrity()


@pytest.mark.timeout(30)
def test_parallel_samples_are_forks_sharing_the_prompt_on_one_worker(fixed_k):
    report = fixed_k.run(progs.forked, [{"topic": t} for t in ("a", "b", "c")])
    log = fixed_k.dispatch_log()
    for result in report.results:
        assert result.status == "succeeded" and result.attempts
        for attempt in result.attempts:
            assert attempt["k"] == 4 and len(attempt["workers"]) == 1
            # the first fork prefills the prompt; the other three read its KV
            assert all(c >= 600 for c in attempt["cached_tokens"][1:]), attempt
            forks = {f"{result.program_id}/solve~{j}#{attempt['attempt']}" for j in range(4)}
            assert {d.worker_id for d in log if d.request_id in forks} == set(
                attempt["workers"])
        assert result.llm_calls == 4 * len(result.attempts)
        assert result.cached_tokens >= 3 * 600 * len(result.attempts)


@pytest.mark.timeout(30)
def test_spend_never_exceeds_the_budget(fixed_k):
    report = fixed_k.run(progs.thrifty, [{"topic": str(i)} for i in range(6)])
    budget = progs.thrifty.options.budget_usd
    for result in report.results:
        assert result.spent_usd <= budget
        assert result.status in ("succeeded", "budget_exhausted", "stopped")
    # the budget pays one attempt of 4 samples, and then fewer
    assert any(a["k"] < 4 for r in report.results for a in r.attempts[1:]) or all(
        r.ok and len(r.attempts) == 1 for r in report.results)


@pytest.mark.timeout(30)
def test_infeasible_programs_are_rejected_at_admission(mcpp):
    [result] = mcpp.run(progs.impossible, {"topic": "x"}).results
    assert result.status == "rejected"
    assert result.success_estimate == 0.0
    assert result.error.startswith(("the mcpp planner gives up at admission",
                                    "estimated success probability 0.0% is below"))
    assert result.llm_calls == 0 and result.steps_done == [] and result.spent_usd == 0


@pytest.mark.timeout(30)
def test_a_deadline_stops_sampling_and_reports_what_finished(mcpp):
    [result] = mcpp.run(progs.late, {"topic": "x", "seconds": 20.0}).results
    assert result.status == "deadline_missed"
    assert result.completion_time < 6.0
    assert result.steps_done == ["solve"]
    assert result.steps_cancelled == ["check_slowly"]
    assert result.spent_usd <= progs.late.options.budget_usd


@pytest.mark.timeout(30)
def test_unknown_candidate_models_fail_before_anything_runs(ray_cluster, tmp_path):
    config = RuntimeConfig(workers=1, runners=1, trace_dir=tmp_path)  # no stand-ins
    with Runtime(config) as rt:
        launched = rt._launched
        with pytest.raises(ChoiceDeclarationError, match="stand_ins"):
            rt.run(progs.forked, {"topic": "x"})
        assert rt._launched == launched
