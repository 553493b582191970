"""KV retention in the Ray runtime, end to end: the research agent example's tools run
for real, the workers decide what to keep of each session from the durations the
runners measured, the decisions show up as `kv_pin` span events, and with spare
memory almost every prompt token comes from the cache."""
from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from agentrt.runtime.workload import load_workload

pytestmark = [pytest.mark.ray, pytest.mark.timeout(120)]

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "research_agent.py"
TIME_SCALE = 0.5


@pytest.fixture(scope="module")
def example():
    load_workload(EXAMPLE)  # imports it, shipped to Ray by value
    return sys.modules["agentrt_workload_research_agent"]


def tool_durations(trace_path: Path) -> dict[str, list[float]]:
    """Measured tool durations by tool, on the model clock (wall / time_scale)."""
    out: dict[str, list[float]] = defaultdict(list)
    for line in trace_path.read_text().splitlines():
        span = json.loads(line)
        if span["name"].startswith("execute_tool "):
            attrs = span["attributes"]
            out[attrs["gen_ai.tool.name"]].append(attrs["agentrt.tool.duration_s"] / TIME_SCALE)
    return out


def test_pins_follow_measured_tool_timings_and_the_cache_serves_the_turns(
        ray_cluster, example, tmp_path):
    report, pins = example.run(8, workers=2, time_scale=TIME_SCALE, trace_dir=tmp_path,
                               host_tier="off")  # so every decision is a pin
    assert [r.status for r in report.results] == ["succeeded"] * 8
    assert example.hit_rate(report) > 0.9
    # spare memory: far from full, every pin held in full
    assert all(w["kv_used_blocks"] < w["kv_capacity_blocks"] / 2 for w in report.workers)
    # one decision per reply that called a tool, on that reply's chat span
    assert len(pins.events) == report.totals()["tool_calls"] == 8 * 6
    assert {e["span"] for e in pins.events} == {"chat llama-3.1-8b"}
    assert {e["action"] for e in pins.events} == {"soft"}
    assert {e["worker_id"] for e in pins.events} <= {w["worker_id"] for w in report.workers}
    # every decision was carried out on the worker that ran the call, in full
    assert sum(w["retained"].get("held", 0) for w in report.workers) == 8 * 6
    assert all(set(w["retained"]) <= {"held"} for w in report.workers)
    measured = tool_durations(report.trace_path)
    observed = [e for e in pins.events if e["duration_source"] == "observed"]
    assert observed, pins.by_source()
    for event in observed:
        samples = measured[event["tool"]]
        # the policy's prediction is a median of durations the runners measured
        assert event["duration_samples"] >= 4
        assert min(samples) <= event["predicted_s"] <= max(samples), (event, samples)
        # the pin lasts at least as long as the tool is predicted to run
        assert event["ttl_s"] >= event["predicted_s"]


def test_without_retention_every_decision_is_a_drop(ray_cluster, example, tmp_path):
    report, pins = example.run(2, workers=2, time_scale=TIME_SCALE, trace_dir=tmp_path,
                               ttl="none")
    assert report.done == 2
    assert pins.by_action() == {"drop": report.totals()["tool_calls"]}
    assert all(e["ttl_s"] == 0.0 and e["blocks"] == 0 for e in pins.events)
