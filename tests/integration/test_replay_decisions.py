"""One core, two drivers: replaying a small trace on the Ray runtime makes the same
decisions as simulating it, with retention and work stealing on: every dispatch (each
request to the same worker, in the same order), every TTL decision, every steal and
every session that moves with its KV.

The Ray runtime runs on the real clock, so the trace is spaced out: no two submissions,
no submission and completion, and no two completions fall within `MARGIN_S` of each
other in the simulation; closer together, real-clock jitter could legitimately flip a
least-loaded tie or the order of two calls. `test_the_trace_leaves_room_for_clock_jitter`
keeps that true and checks that the trace exercises every kind of decision.
"""
from __future__ import annotations

import pytest

from agentrt.programs.workloads import ProgramSpec, StepSpec, TurnSpec
from agentrt.runtime.cluster.driver import Runtime
from agentrt.runtime.config import RuntimeConfig
from agentrt.runtime.core.messages import RequestDone
from agentrt.runtime.core import decisions as log
from agentrt.runtime.sim.driver import Simulation
from tests.sim.builders import PLAIN, plain_config

pytestmark = [pytest.mark.ray, pytest.mark.timeout(240)]

MARGIN_S = 0.1


# Retention (agentrt's soft pins; no host tier, so decisions follow the traced tool
# times alone) and stealing that copies a stolen session's KV; one call running per
# worker and one more sent ahead, so calls queue in the scheduler and idle workers steal.
SETTINGS = {**PLAIN, "ttl": "agentrt", "stealing": True, "max_num_seqs": 1,
            "dispatch_window": 1,
            "steal_options": {"high_mark": 0, "kv_move": "transfer", "link": "network"}}


def solo(program_id: str, arrival: float, *turns: tuple) -> ProgramSpec:
    return ProgramSpec(program_id, [agent("solve", *turns)], arrival=arrival)


def agent(step_id: str, *turns: tuple, deps: tuple[str, ...] = ()) -> StepSpec:
    """(input tokens, output tokens[, tool, tool seconds]) per turn."""
    return StepSpec(step_id, [TurnSpec(*t) for t in turns], deps=deps, prefix_id="sys",
                    prefix_tokens=512)


def make_trace() -> list[ProgramSpec]:
    """Arrivals and tool times chosen so that no two events the decisions depend on fall
    within MARGIN_S of each other under the simulated engine's step times
    (test_the_trace_leaves_room_for_clock_jitter checks it)."""
    return [
        solo("p0", 0.0, (400, 300, "grep", 0.3), (400, 40)),
        solo("p1", 0.12, (1200, 300, "grep", 0.7), (800, 300, "bash", 0.6), (200, 20)),
        solo("p2", 0.43, (800, 150, "grep", 0.1), (200, 300, "bash", 0.3), (1200, 20)),
        solo("p3", 0.95, (200, 40, "grep", 0.3), (200, 40)),
        solo("p4", 1.09, (800, 150, "bash", 0.5), (800, 150)),
        solo("p5", 1.52, (400, 300, "grep", 0.4), (800, 150)),
    ]


def simulate(trace: list[ProgramSpec]) -> tuple[list[log.Decision], list[tuple]]:
    """The simulator's decisions, and its timeline of (time, "submit"/"done", id)."""
    sim = Simulation(trace, plain_config(**SETTINGS, workers=2, arrival="trace",
                                         record_decisions=True, fuse_decode=False))
    timeline: list[tuple] = []
    submit, on_event = sim.scheduler.submit, sim.scheduler.on_event

    def spy_submit(request, now):
        timeline.append((now, "submit", request.request_id))
        return submit(request, now)

    def spy_event(event, now):
        if isinstance(event, RequestDone):
            timeline.append((now, "done", event.request_id))
        return on_event(event, now)

    sim.scheduler.submit, sim.scheduler.on_event = spy_submit, spy_event
    assert sim.run().unfinished == 0
    return list(sim.scheduler.decisions), timeline


def too_close(timeline: list[tuple]) -> list[tuple]:
    """Pairs of events whose real-clock order could differ from the simulated one and
    change a decision; events at the very same instant are one event's consequences."""
    submits = [(t, r) for t, kind, r in timeline if kind == "submit"]
    dones = [(t, r) for t, kind, r in timeline if kind == "done"]
    close = lambda a, b: 1e-9 < abs(a - b) < MARGIN_S
    pairs = [(r, r2) for i, (t, r) in enumerate(submits) for t2, r2 in submits[i + 1:]
             if close(t, t2)]
    pairs += [(r, r2) for t, r in submits for t2, r2 in dones if close(t, t2)]
    pairs += [(r, r2) for i, (t, r) in enumerate(dones) for t2, r2 in dones[i + 1:]
              if close(t, t2)]
    return pairs


@pytest.fixture(scope="module")
def runtime(ray_cluster, tmp_path_factory):
    config = RuntimeConfig(**SETTINGS, workers=2, time_scale=1.0, runners=1,
                           record_decisions=True, trace_dir=tmp_path_factory.mktemp("runs"))
    with Runtime(config) as rt:
        # The first program on fresh actors pays one-off costs (lazy imports, first
        # calls); a warm-up on both workers keeps them out of the timed trace.
        warm = ProgramSpec("warmup", [StepSpec("a", [TurnSpec(200, 10)]),
                                      StepSpec("b", [TurnSpec(200, 10)])])
        rt.replay([warm])
        yield rt
        rt.check_integrity()


def test_the_trace_leaves_room_for_clock_jitter():
    decisions, timeline = simulate(make_trace())
    assert too_close(timeline) == []
    kinds = [type(d).__name__ for d in decisions]
    # and it exercises every kind of decision the drivers share
    assert {k: kinds.count(k) for k in set(kinds)} == {
        "Dispatch": 14, "Retained": 8, "Steal": 4, "Moved": 4}
    assert {d.worker_id for d in decisions if type(d) is log.Dispatch} == {"w0", "w1"}
    assert all(m.kv == "network" for m in decisions if type(m) is log.Moved)


def test_ray_runtime_and_simulator_make_the_same_decisions(runtime):
    expected, _ = simulate(make_trace())
    before = len(runtime.decisions())
    report = runtime.replay(make_trace())
    assert [(r.program_id, r.status) for r in report.results] == [
        (f"p{i}", "succeeded") for i in range(6)]
    assert sum(r.llm_calls for r in report.results) == 14
    assert runtime.decisions()[before:] == expected


def coding_session(program_id: str) -> ProgramSpec:
    """Every kind of pause: tools, a person's reply (think time), subagents forked from
    the conversation (the parent waits for both), a compacted turn."""
    main = StepSpec("main", [
        TurnSpec(800, 30, "bash", 0.2), TurnSpec(200, 20, think_s=0.4),
        TurnSpec(150, 15, "task", spawns=("sub_a", "sub_b")),
        TurnSpec(300, 20, "bash", 0.1, summary_tokens=400), TurnSpec(100, 10)],
        prefix_id="sys", prefix_tokens=512)
    return ProgramSpec(program_id, [
        main, StepSpec("sub_a", [TurnSpec(100, 10, "grep", 0.1), TurnSpec(50, 10)]),
        StepSpec("sub_b", [TurnSpec(120, 12)])],
        agent="coder", features={"task_kind": "bugfix"})


def test_ray_replay_runs_every_turn_of_human_turns_subagents_and_compaction(runtime):
    spec = coding_session("session-1")
    report = runtime.replay([spec])
    [result] = report.results
    assert result.status == "succeeded", result.error
    assert result.llm_calls == spec.num_calls == 8
    assert sorted(result.steps_done) == ["main", "sub_a", "sub_b"]
