"""The simulator is a function of its inputs: identical seeds give identical runs,
down to every scheduling decision; another seed gives another run."""
from __future__ import annotations

import math

import numpy as np

from agentrt.programs.workloads import generate
from agentrt.runtime.sim.config import SimConfig
from agentrt.runtime.sim.driver import Simulation


def simulate(seed: int):
    """40 SWE-like programs on 4 workers; the workload and the simulator share `seed`."""
    sim = Simulation(generate("swe", 40, seed=seed),
                     SimConfig(workers=4, seed=seed, record_decisions=True))
    return sim.run(), sim.scheduler.dispatch_log


def same_number(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


def test_identical_seeds_give_identical_results_and_decisions():
    first, first_log = simulate(3)
    second, second_log = simulate(3)
    assert first.unfinished == 0
    assert len(first_log) == len(first.requests["finished"]) > 0
    assert first_log == second_log
    one, two = first.metrics(), second.metrics()
    assert one.keys() == two.keys()
    assert all(same_number(one[k], two[k]) for k in one), (one, two)
    for table in ("requests", "programs", "samples"):
        mine, theirs = getattr(first, table), getattr(second, table)
        for column in mine:
            np.testing.assert_array_equal(mine[column], theirs[column], err_msg=column)
    assert first.program_ids == second.program_ids
    assert first.events == second.events


def test_a_different_seed_gives_a_different_run():
    first, first_log = simulate(3)
    other, other_log = simulate(4)
    assert first_log != other_log
    assert first.metrics()["jct_mean"] != other.metrics()["jct_mean"]


def test_decisions_are_only_kept_when_asked_for():
    sim = Simulation(generate("swe", 4, seed=0), SimConfig(workers=2))
    sim.run()
    assert sim.scheduler.dispatch_log == []
