"""Work stealing in the Ray runtime: the same core rule as in the simulator, driven by
the scheduler actor after new and finished calls."""
from __future__ import annotations

import pytest

from agentrt.programs.workloads import ProgramSpec, StepSpec, TurnSpec
from agentrt.runtime.cluster.driver import Runtime
from agentrt.runtime.config import RuntimeConfig
from agentrt.runtime.sim.driver import Simulation
from tests.sim.builders import PLAIN, plain_config

pytestmark = [pytest.mark.ray, pytest.mark.timeout(300)]

STEALING = {**PLAIN, "max_num_seqs": 1, "dispatch_window": 1, "stealing": True,
            "steal_options": {"high_mark": 0}}
GAP = 0.2  # model seconds between arrivals: 0.1 wall seconds at the Ray test's time scale


def lopsided_trace() -> list[ProgramSpec]:
    """Eight sessions split evenly by load at arrival, but those on the first worker
    write 40 times longer replies: the second worker runs dry while calls queue for
    the first.

    The sessions arrive one by one, GAP model seconds apart in trace order, and every
    first reply is 300 tokens (about 2 model seconds), so all eight are placed before
    any call finishes: placement by load alternates w0, w1, ... On Ray, sessions that
    arrive at the same instant reach the scheduler in whatever order the runner's
    awaits happen to resume; with all eight at 0.0 the long sessions were split two and
    two in about one run in 25 and nothing was stolen. (With arrivals 0.01 model
    seconds apart and 100-token first replies, where the sessions landed depended on
    which short calls had finished by each arrival.)"""
    programs = []
    for i in range(8):
        tokens = 200 if i % 2 == 0 else 5
        turns = ([TurnSpec(400, 300, "bash", 0.02)]
                 + [TurnSpec(400, tokens, "bash", 0.02)] * 2 + [TurnSpec(100, tokens)])
        programs.append(ProgramSpec(f"p{i}", [StepSpec("solve", turns)], arrival=i * GAP))
    return programs


def test_the_trace_makes_the_simulator_steal():
    sim = Simulation(lopsided_trace(), plain_config(workers=2, arrival="trace", **STEALING))
    sim.run()
    # The second worker, dry, takes p6's first call (no KV to move yet), then calls of
    # hot sessions (their KV moves), and the first worker takes some back once it is
    # the one short of work.
    assert sim.scheduler.counters.stolen == 5 and sim.control.moves == 4


def test_a_transferred_session_takes_its_kv_to_the_thief():
    def run(kv_move):
        options = {**STEALING, "steal_options": {"high_mark": 0, "kv_move": kv_move}}
        sim = Simulation(lopsided_trace(), plain_config(workers=2, arrival="trace", **options))
        result = sim.run()
        assert result.unfinished == 0
        return sim, result.requests["reprefilled"].sum()

    recomputed, transferred = run("recompute"), run("transfer")
    assert recomputed[0].workers.transferred_tokens == 0 < transferred[0].workers.transferred_tokens
    assert transferred[1] < recomputed[1]  # what moved was not prefilled again


@pytest.mark.parametrize("kv_move", ["recompute", "transfer"])
def test_idle_workers_steal_queued_calls_and_every_program_finishes(ray_cluster, tmp_path,
                                                                    kv_move):
    options = {**STEALING, "steal_options": {"high_mark": 0, "kv_move": kv_move}}
    # Half a wall second per model second: at 0.2 a machine loaded by other work (load
    # average above 20 on 2 cores) stretched the actors' own overheads until the second
    # worker stole a single first-turn call (no KV to move) in one run of ten.
    config = RuntimeConfig(workers=2, time_scale=0.5, runners=1, trace_dir=tmp_path,
                           **options)
    with Runtime(config) as rt:
        report = rt.replay(lopsided_trace())
        counters = rt.scheduler_counters()
        rt.check_integrity()
    assert [r.status for r in report.results] == ["succeeded"] * 8
    assert counters["stolen"] > 0 and counters["moves"] > 0
    assert counters["completed"] == counters["submitted"] == 32
    received = sum(w["received_tokens"] for w in report.workers)
    assert (received > 0) == (kv_move == "transfer")  # the KV went with the session


def test_bad_steal_options_are_named_before_anything_starts():
    with pytest.raises(ValueError, match="high_marks"):
        RuntimeConfig(stealing=True, steal_options={"high_marks": 1})
