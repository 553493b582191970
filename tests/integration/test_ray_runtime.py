"""The Ray runtime end to end: programs run on simulated workers, spans form one tree
per program, budgets and deadlines stop programs, bad programs fail before running."""
from __future__ import annotations

import json
from collections import defaultdict

import pytest
import ray.cloudpickle

import agentrt
from agentrt.programs.errors import ToolArgumentsError
from agentrt.runtime.cluster.driver import Runtime
from agentrt.runtime.config import RuntimeConfig
from tests.integration import programs_for_tests as progs

pytestmark = [pytest.mark.ray, pytest.mark.timeout(240)]
ray.cloudpickle.register_pickle_by_value(progs)


@pytest.fixture(scope="module")
def runtime(ray_cluster, tmp_path_factory):
    config = RuntimeConfig(workers=2, time_scale=0.2, runners=2,
                           trace_dir=tmp_path_factory.mktemp("runs"))
    with Runtime(config) as rt:
        yield rt
        rt.check_integrity()


def read_spans(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_programs_finish_and_reuse_their_cache_across_turns(runtime):
    report = runtime.run(progs.fan_in, [{"topic": t} for t in ("ray", "kv", "otel", "dag")])
    assert [r.status for r in report.results] == ["succeeded"] * 4
    for result in report.results:
        assert result.outputs["left"] == 5 and result.outputs["right"].startswith(
            result.outputs["right"].split(":")[0])
        assert sorted(result.steps_done) == ["chatty", "join", "plain"]
        assert result.llm_calls == 4 and result.tool_calls == 4 and result.tool_errors == 1
        # every prompt token is either served from cache or prefilled
        assert result.prompt_tokens == result.cached_tokens + result.prefilled_tokens
    assert report.totals()["cached_tokens"] > 0.5 * report.totals()["prompt_tokens"]


def test_tool_errors_reach_the_step_as_results(runtime):
    report = runtime.run(progs.fan_in, {"topic": "errors"})
    [result] = report.results
    assert result.ok  # the step decided to carry on
    spans = read_spans(report.trace_path)
    failed = [s for s in spans if s["name"] == "execute_tool explode"]
    assert failed and all(s["status"] == "ERROR" for s in failed)


def test_spans_form_one_tree_per_program_with_genai_attributes(runtime):
    report = runtime.run(progs.fan_in, [{"topic": "a"}, {"topic": "b"}])
    ids = {r.program_id for r in report.results}
    by_trace = defaultdict(list)
    for span in read_spans(report.trace_path):
        by_trace[span["trace_id"]].append(span)
    trees = [t for t in by_trace.values()
             if any(s["attributes"].get("agentrt.program.id") in ids for s in t)]
    assert len(trees) == 2
    for spans in trees:
        by_id = {s["span_id"]: s for s in spans}
        roots = [s for s in spans if s["parent_span_id"] is None]
        assert [r["name"] for r in roots] == ["invoke_workflow fan_in"]
        assert roots[0]["resource"]["service.name"] == "agentrt-driver"
        assert all(s["parent_span_id"] in by_id for s in spans if s is not roots[0])
        names = sorted(s["name"] for s in spans)
        assert names.count("invoke_agent chatty") == 1 and names.count("chat llama-3.1-8b") == 4
        assert names.count("execute_tool add") == 3
        steps = [s for s in spans if s["name"].startswith("invoke_agent")]
        assert {s["resource"]["service.name"] for s in steps} == {"agentrt-runner"}
        assert all(by_id[s["parent_span_id"]] is roots[0] for s in steps)
        for chat in (s for s in spans if s["name"].startswith("chat ")):
            attrs = chat["attributes"]
            assert attrs["gen_ai.operation.name"] == "chat"
            assert attrs["gen_ai.request.model"] == "llama-3.1-8b"
            for key in ("gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens",
                        "gen_ai.usage.cache_read.input_tokens", "agentrt.queue_wait_s"):
                assert key in attrs
            assert by_id[chat["parent_span_id"]]["name"].startswith("invoke_agent")
            assert any(e["name"] == "kv_prefix_lookup" for e in chat["events"])
        for tool in (s for s in spans if s["name"].startswith("execute_tool")):
            assert tool["attributes"]["gen_ai.tool.name"] == tool["name"].split()[1]
            assert tool["attributes"]["gen_ai.tool.call.id"]


def test_budget_is_a_hard_stop(runtime):
    report = runtime.run(progs.thrifty, {"topic": "money"})
    [result] = report.results
    assert result.status == "budget_exhausted"
    assert "raise the program's budget" in result.error
    assert result.prompt_tokens + result.output_tokens <= 600


def test_deadline_cancels_the_program(runtime):
    report = runtime.run(progs.hurried, {"seconds": 5.0})
    [result] = report.results
    assert result.status == "deadline_missed"
    assert result.completion_time < 3.0
    assert result.steps_done == ["quick"]  # what finished before the deadline


def test_an_undeclared_tool_comes_back_to_the_step_as_an_error_result(runtime):
    report = runtime.run(progs.sloppy, {})
    [result] = report.results
    assert result.status == "succeeded" and result.tool_errors == 1
    assert result.outputs == {
        "ok": False, "error_type": "UnknownToolError",
        "error": "there is no tool 'not_a_tool' here; the tools you can call are: add. "
                 "Call one of those, with arguments that fit its parameters."}


def test_invalid_programs_fail_before_anything_runs(runtime):
    @agentrt.program
    def bad(x):
        return progs.add(a=x, b="three")  # b is an int in the tool's schema

    launched = runtime._launched
    with pytest.raises(ToolArgumentsError, match="b"):
        runtime.run(bad, [{"x": 1}, {"x": 2}])
    assert runtime._launched == launched  # nothing started


def test_runs_can_be_named_and_started_at_given_offsets(runtime):
    report = runtime.run(progs.fan_in, [{"topic": "a"}, {"topic": "b"}],
                         program_ids=["second", "first"], arrivals=[1.0, 0.0])
    first, second = sorted(report.results, key=lambda r: r.arrival)
    assert (first.program_id, second.program_id) == ("first", "second")
    assert second.arrival - first.arrival == pytest.approx(1.0, abs=0.2)


def test_program_ids_must_be_unique_and_one_per_input(runtime):
    launched = runtime._launched
    with pytest.raises(ValueError, match="repeated: \\['x'\\]"):
        runtime.run(progs.fan_in, [{"topic": "a"}, {"topic": "b"}], program_ids=["x", "x"])
    with pytest.raises(ValueError, match="2 inputs"):
        runtime.run(progs.fan_in, [{"topic": "a"}, {"topic": "b"}], program_ids=["x"])
    assert runtime._launched == launched
