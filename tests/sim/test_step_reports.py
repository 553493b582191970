"""Ray workers report only the engine steps that can change a decision (`StepReports`):
steps with events, steps after which what the core reads of the engine changed, and
every step while `ClusterControl.step_ends_matter`. The simulator, stepping one
iteration at a time, tells the control of every step; skipping the steps a worker does
not report leaves every decision as it was. Skipping more (ignoring the watched steps,
or the steps that change the running batch) changes decisions, so the test shows each
part of the rule is needed."""
from __future__ import annotations

import math

import pytest

from agentrt.programs.workloads import generate
from agentrt.runtime.cluster.worker_actor import StepReports
from agentrt.runtime.core.messages import EngineStats
from agentrt.runtime.sim.driver import Simulation
from tests.sim.builders import plain_config

CASES = {
    "plain": {"workers": 4, "concurrency": 24, "queue": "atlas", "ttl": "agentrt",
              "kv_blocks": 6000},
    "stealing": {"workers": 4, "concurrency": 40, "stealing": True, "max_num_seqs": 2,
                 "dispatch_window": 1,
                 "steal_options": {"high_mark": 1, "kv_move": "transfer"}},
    "preemption": {"workers": 2, "concurrency": 32, "queue": "plas", "preemption": True,
                   "dispatch_window": 2, "max_num_seqs": 4},
    # one call sent ahead: the next goes when the engine starts running it (no event)
    "window": {"workers": 2, "concurrency": 32, "dispatch_window": 1, "max_num_seqs": 8},
}


def run(config: dict, skip: str | None = None) -> tuple[list, int, int]:
    """Decisions, steps told and steps skipped, with the control told of the steps
    `skip` lets through: None every step; "reports" those a Ray worker reports;
    "unwatched" those, ignoring `step_ends_matter`; "events" only steps with events."""
    sim = Simulation(generate("swe", 40, seed=11),
                     plain_config(record_decisions=True, fuse_decode=False, **config))
    control, told, skipped = sim.control, [0], [0]
    on_step, rules = control.on_step, {}

    def reported(worker_id, events, stats, now, deliver=None):
        rule = rules.setdefault(worker_id, StepReports(every_s=math.inf))
        rule.watch = skip == "reports" and control.step_ends_matter(worker_id)
        wanted = (bool(events) if skip == "events" else rule.wanted(events, stats))
        if skip is None or wanted:
            rule.sent(stats)
            told[0] += 1
            return on_step(worker_id, events, stats, now, deliver)
        skipped[0] += 1

    control.on_step = reported
    assert sim.run().unfinished == 0
    return list(sim.scheduler.decisions), told[0], skipped[0]


@pytest.mark.parametrize("case", sorted(CASES))
def test_skipping_the_steps_a_worker_does_not_report_keeps_every_decision(case):
    every, steps, _ = run(CASES[case])
    reported, told, skipped = run(CASES[case], "reports")
    assert reported == every
    assert told + skipped == steps
    assert skipped > told  # most steps change nothing the core reads


def test_each_part_of_the_rule_decides():
    preemption = CASES["preemption"]
    every, _, _ = run(preemption)
    assert run(preemption, "unwatched")[0] != every  # quanta run out between events
    window = CASES["window"]
    assert run(window, "events")[0] != run(window)[0]  # the running batch grew


def test_a_step_that_changes_nothing_is_not_reported():
    now = [0.0]
    rule = StepReports(every_s=1.0, clock=lambda: now[0])

    def stats(running=2, waiting=1, used=10, busy=0.5, steps=7):
        return EngineStats("w0", running, waiting, 100, used, 0, 5, 16, 0, 0, busy, steps)

    rule.sent(stats())
    assert not rule.wanted([], stats(used=11, busy=0.6, steps=8))  # KV grew, time passed
    assert rule.wanted(["done"], stats())  # events
    assert rule.wanted([], stats(running=3))  # the running batch changed
    assert rule.wanted([], stats(waiting=0))
    rule.watch = True
    assert rule.wanted([], stats())  # the scheduler watches every step
    rule.watch = False
    now[0] = 1.0  # a second on, the rest of the stats is refreshed, if it changed
    assert not rule.wanted([], stats())
    assert rule.wanted([], stats(used=12))
