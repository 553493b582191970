"""One core, two drivers: replaying a small trace on the Ray runtime makes the same
scheduling decisions as simulating it (every request to the same worker, in the same
order).

The Ray runtime runs on the real clock, so the trace is spaced out: no two decisions,
and no decision for a new session and a completion, fall within `MARGIN_S` of each
other in the simulation; closer together, real-clock jitter could legitimately flip a
least-loaded tie. `test_the_trace_leaves_room_for_clock_jitter` keeps that true.
"""
from __future__ import annotations

import pytest

from agentrt.programs.workloads import ProgramSpec, StepSpec, TurnSpec
from agentrt.runtime.cluster.driver import Runtime
from agentrt.runtime.config import RuntimeConfig
from agentrt.runtime.core.messages import RequestDone
from agentrt.runtime.core.scheduler import Dispatch
from agentrt.runtime.sim.driver import Simulation
from tests.sim.builders import PLAIN, plain_config

pytestmark = [pytest.mark.ray, pytest.mark.timeout(240)]

MARGIN_S = 0.1


def solo(program_id: str, arrival: float, *turns: tuple) -> ProgramSpec:
    return ProgramSpec(program_id, [agent("solve", *turns)], arrival=arrival)


def agent(step_id: str, *turns: tuple, deps: tuple[str, ...] = ()) -> StepSpec:
    """(input tokens, output tokens[, tool, tool seconds]) per turn."""
    return StepSpec(step_id, [TurnSpec(*t) for t in turns], deps=deps, prefix_id="sys",
                    prefix_tokens=512)


def make_trace() -> list[ProgramSpec]:
    return [
        solo("p0", 0.0, (1200, 60, "bash", 0.2), (200, 30, "bash", 0.5), (150, 20)),
        solo("p1", 0.3, (600, 40, "grep", 0.25), (300, 20)),  # p0 busy on w0: w1
        ProgramSpec("p2", [  # plan, then two steps in parallel (one per worker)
            agent("plan", (900, 40)),
            agent("left", (300, 30, "grep", 0.3), (100, 15), deps=("plan",)),
            agent("right", (400, 25, "bash", 0.2), (120, 15), deps=("plan",)),
        ], arrival=2.0),
        solo("p3", 3.1, (1500, 50, "bash", 0.45), (200, 20)),
        solo("p4", 3.35, (700, 30, "bash", 0.25), (250, 25)),  # p3 busy on w0: w1
    ]


def simulate(trace: list[ProgramSpec]) -> tuple[list[Dispatch], list[tuple]]:
    """The simulator's decisions, and its timeline of (time, "submit"/"done", id)."""
    sim = Simulation(trace, plain_config(workers=2, arrival="trace", record_decisions=True,
                                         fuse_decode=False))
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
    return sim.scheduler.dispatch_log, timeline


def too_close(timeline: list[tuple]) -> list[tuple]:
    """Pairs of events whose real-clock order could differ from the simulated one and
    change a decision; events at the very same instant are one event's consequences."""
    submits = [(t, r) for t, kind, r in timeline if kind == "submit"]
    dones = [(t, r) for t, kind, r in timeline if kind == "done"]
    close = lambda a, b: 1e-9 < abs(a - b) < MARGIN_S
    pairs = [(r, r2) for i, (t, r) in enumerate(submits) for t2, r2 in submits[i + 1:]
             if close(t, t2)]
    pairs += [(r, r2) for t, r in submits if r.endswith("#0")  # a new session: by load
              for t2, r2 in dones if close(t, t2)]
    return pairs


@pytest.fixture(scope="module")
def runtime(ray_cluster, tmp_path_factory):
    config = RuntimeConfig(**PLAIN, workers=2, time_scale=1.0, runners=1,
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
    log, timeline = simulate(make_trace())
    assert too_close(timeline) == []
    # and it exercises the decisions: both workers, sticky turns, a split fan-out
    assert {d.worker_id for d in log} == {"w0", "w1"}
    workers = dict((d.request_id, d.worker_id) for d in log)
    assert workers["p1/solve#0"] == workers["p1/solve#1"] == "w1"
    assert {workers["p2/left#0"], workers["p2/right#0"]} == {"w0", "w1"}


def test_ray_runtime_and_simulator_make_the_same_decisions(runtime):
    expected, _ = simulate(make_trace())
    before = len(runtime.dispatch_log())
    report = runtime.replay(make_trace())
    assert [(r.program_id, r.status) for r in report.results] == [
        (p, "succeeded") for p in ("p0", "p1", "p2", "p3", "p4")]
    assert sum(r.llm_calls for r in report.results) == len(expected) == 14
    assert runtime.dispatch_log()[before:] == expected


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
