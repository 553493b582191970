"""Every turn of a trace is played, and no program finishes below its lower bound.

A turn without a tool followed by more turns is a human turn (think time, then the
next request), not the end of its step; subagents and compacted turns are played too.
The bound (`runtime.sim.bounds`) counts every pause the player waits through.
"""
from __future__ import annotations

import numpy as np
import pytest

from agentrt.programs.workloads import (
    GENERATORS, ProgramSpec, StepSpec, TurnSpec, dump_trace, generate, load_trace,
)
from agentrt.runtime.bench.policies import policy_set
from agentrt.runtime.sim.config import SimConfig
from agentrt.runtime.sim.driver import Simulation

pytestmark = pytest.mark.timeout(300)


def converted_session(program_id: str, arrival: float) -> ProgramSpec:
    """A coding session as a converter writes one: the model answers in text twice and
    a person replies (19 turns in all, 3 of them in a subagent)."""
    main = [TurnSpec(3000, 200, "shell", 0.8), TurnSpec(900, 150, "read", 0.04),
            TurnSpec(400, 300, think_s=95.0),  # answered in text; a person replies
            TurnSpec(600, 120, "task", spawns=("explore",)),
            TurnSpec(1500, 200, "shell", 2.5), TurnSpec(700, 90, "edit", 0.05),
            TurnSpec(300, 400, think_s=600.0),
            TurnSpec(250, 100, "shell", 12.0, summary_tokens=2000),
            *[TurnSpec(500, 80, "shell", 0.5) for _ in range(7)], TurnSpec(200, 60)]
    explore = [TurnSpec(150, 40, "grep", 0.2), TurnSpec(800, 50, "read", 0.03),
               TurnSpec(300, 250)]
    return ProgramSpec(program_id, [StepSpec("main", main, prefix_id="sys",
                                             prefix_tokens=1500),
                                    StepSpec("explore", explore)], arrival=arrival)


def test_every_turn_of_a_trace_file_becomes_an_llm_call(tmp_path):
    dump_trace([converted_session("a", 0.0), converted_session("b", 1.0)],
               tmp_path / "sessions.jsonl")
    programs = load_trace(tmp_path / "sessions.jsonl")
    turns = sum(len(s.turns) for p in programs for s in p.steps)
    assert turns == 2 * 19
    result = Simulation(programs, SimConfig(workers=2, arrival="trace")).run()
    assert result.unfinished == 0
    assert result.requests["arrival"].size == turns
    ratio = result.jct / result.programs["lower_bound"]
    assert (ratio >= 1.0).all() and (result.jct > 600 + 95).all()


def sizes(name: str) -> dict:
    return {"context_tokens": 4000} if name == "oversub" else {}


@pytest.mark.parametrize("name", sorted(GENERATORS))
@pytest.mark.parametrize("policy", ["agentrt-sched", "vllm-sticky"])
def test_no_program_finishes_below_its_lower_bound(name, policy):
    programs = generate(name, 12, seed=5, **sizes(name))
    config = SimConfig(**{**policy_set(policy), "workers": 2, "concurrency": 8,
                          "ramp_s": 0.0})
    result = Simulation(programs, config).run()
    assert result.unfinished == 0
    assert result.requests["arrival"].size == sum(p.num_calls for p in programs)
    slack = result.jct - result.programs["lower_bound"]
    assert slack.min() >= -1e-6 * result.programs["lower_bound"].max(), (
        np.argmin(slack), slack.min())
