"""The scheduler's load on Ray: workers report the engine steps that change something,
not every iteration, and a session's prompt state, kept on every hop so that calls
carry deltas, is gone everywhere once its program ends."""
from __future__ import annotations

import time

import pytest
import ray
import ray.cloudpickle

from agentrt.programs.workloads import ProgramSpec, StepSpec, TurnSpec
from agentrt.runtime.cluster.driver import Runtime
from agentrt.runtime.config import RuntimeConfig
from tests.integration import programs_for_tests as progs

pytestmark = [pytest.mark.ray, pytest.mark.timeout(240)]
ray.cloudpickle.register_pickle_by_value(progs)


@pytest.fixture(scope="module")
def runtime(ray_cluster, tmp_path_factory):
    config = RuntimeConfig(workers=2, time_scale=0.2, runners=1,
                           trace_dir=tmp_path_factory.mktemp("runs"))
    with Runtime(config) as rt:
        rt.start()
        yield rt
        rt.check_integrity()


def test_a_long_reply_is_reported_a_few_times_not_once_per_token(runtime):
    scheduler = runtime.scheduler
    ray.get(scheduler.reset_load_probe.remote([]), timeout=30)
    before = sum(w["steps"] for w in runtime._ask_workers("stats"))
    spec = ProgramSpec("long-reply", [StepSpec("a", [TurnSpec(300, 400)])])
    [result] = runtime.replay([spec]).results
    assert result.status == "succeeded" and result.output_tokens == 400
    steps = sum(w["steps"] for w in runtime._ask_workers("stats")) - before
    reports = ray.get(scheduler.load_figures.remote(), timeout=30)["calls"]["report"]
    assert steps >= 400  # one engine iteration per output token
    # it started running, it finished, and (a second at most on) its stats refreshed
    assert reports <= 4


def test_every_session_state_is_freed_when_its_program_ends(runtime):
    counted = [ProgramSpec(f"c{i}", [StepSpec("a", [TurnSpec(200, 40, "grep", 0.1)] * 5 +
                                              [TurnSpec(100, 20)], prefix_id="sys",
                                              prefix_tokens=512),
                                     StepSpec("b", [TurnSpec(200, 30)], deps=("a",))])
               for i in range(4)]
    report = runtime.replay(counted)
    assert [r.status for r in report.results] == ["succeeded"] * 4
    chatty = runtime.run(progs.steady, [{"topic": t, "turns": 4, "tool_s": 0.05}
                                        for t in ("kv", "ray")])
    assert [r.status for r in chatty.results] == ["succeeded"] * 2
    held = ray.get(runtime.scheduler.held_sessions.remote(), timeout=30)
    assert held == {"runners": [], "workers": {}}
    # the workers apply the scheduler's last commands (Release, Forget) shortly after
    deadline = time.time() + 10
    while [w["held_sessions"] for w in runtime._ask_workers("stats")] != [0, 0]:
        assert time.time() < deadline, runtime._ask_workers("stats")
        time.sleep(0.05)
    runners = ray.get([r.held_sessions.remote() for r in runtime._runners], timeout=30)
    assert runners == [[]]
