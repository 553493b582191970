"""Worker pools: a call runs only on a worker serving its model; stand-ins map onto a
served model; stealing stays within a pool."""
from __future__ import annotations

import dataclasses

import pytest

from agentrt.programs.workloads import ProgramSpec, StepSpec, TurnSpec
from agentrt.runtime.config import WorkerPool
from agentrt.runtime.core.scheduler import Scheduler
from agentrt.runtime.core.stealing import StealConfig
from agentrt.runtime.sim.driver import Simulation
from tests.core.builders import make_request, make_stats
from tests.sim.builders import plain_config


def two_pools(**kwargs) -> Scheduler:
    s = Scheduler(router="least_loaded", **kwargs)
    s.add_worker("a0", "small")
    s.add_worker("b0", "large")
    s.add_worker("a1", "small")
    s.pools.aliases["large-preview"] = "large"
    return s


def call(rid: str, model: str, **kw):
    return dataclasses.replace(make_request(rid, program=rid, **kw), model=model)


def test_calls_go_to_the_pool_of_their_model_and_stand_ins_to_the_model_they_map_to():
    s = two_pools()
    placed = {rid: s.submit(call(rid, m), 0.0)
              for rid, m in [("x", "small"), ("y", "small"), ("z", "large"),
                             ("w", "large-preview")]}
    assert placed == {"x": "a0", "y": "a1", "z": "b0", "w": "b0"}
    assert s.pools.describe() == {"small": ["a0", "a1"], "large": ["b0"]}


def test_a_model_no_pool_serves_is_named_with_the_served_ones():
    s = two_pools()
    with pytest.raises(ValueError, match=r"no worker serves model 'huge'.*\['large', 'small'\]"):
        s.submit(call("x", "huge"), 0.0)


def test_with_one_pool_every_call_goes_there_whatever_its_model_says():
    s = Scheduler()
    s.add_worker("w0", "llama-3.1-8b")
    assert s.submit(call("x", "anything"), 0.0) == "w0"


def test_an_idle_worker_steals_only_within_its_pool():
    s = two_pools(dispatch_window=1, stealing=StealConfig(high_mark=0))
    for i in range(4):
        s.view.session_home[f"l{i}/s"] = "b0"
        s.submit(call(f"l{i}", "large", session=f"l{i}/s"), 0.0)
    for w in ("a0", "a1", "b0"):
        s.on_stats(w, make_stats(w))
    assert s.thieves() == []  # the small pool has nothing to steal, the large no thief
    assert s.take("a0", 0.0) == []


def test_the_simulator_runs_a_gpu_pool_and_a_hosted_api_pool_side_by_side():
    turns = [TurnSpec(800, 40, "bash", 0.5), TurnSpec(200, 20)]
    programs = [ProgramSpec(f"p{i}", [StepSpec("solve", turns)]) for i in range(6)]
    config = plain_config(pools=[
        WorkerPool(model="llama-3.1-8b", workers=2),
        WorkerPool(model="api", workers=1, engine="latency", ttft_s=0.5,
                   prompt_token_s=1e-4, tpot_s=0.02)], concurrency=6, record_decisions=True)
    sim = Simulation(programs, config)
    result = sim.run()
    assert result.unfinished == 0 and len(sim.engines) == 3
    # trace calls name the first pool's model: every one ran on a GPU worker
    assert {d.worker_id for d in sim.scheduler.dispatch_log} <= {"w0", "w1"}
    assert sim.engines["w2"].info.capabilities.clock == "stepped"


def test_when_a_pools_last_worker_leaves_its_calls_are_stranded_not_sent_to_another_model():
    s = two_pools(dispatch_window=1)
    s.submit(call("z0", "large"), 0.0)
    s.submit(call("z1", "large"), 0.0)
    s.take("b0", 0.0)  # z0 in flight on b0, z1 queued
    s.submit(call("x", "small"), 0.0)
    moved = s.remove_worker("b0", 1.0)
    assert moved == [] and s.counters.rerouted == 0
    assert [(r.request_id, "'large'" in why) for r, why in s.stranded] == [
        ("z0", True), ("z1", True)]
    assert s.num_queued + s.num_inflight == 1  # only "x" is left
    from agentrt.runtime.core.pools import NoWorkerError
    with pytest.raises(NoWorkerError, match="no worker serves model 'large' any more"):
        s.submit(call("z2", "large"), 1.0)
    assert s.counters.submitted == 3  # the refused call was not taken
    assert s.submit(call("y", "small"), 1.0) in ("a0", "a1")
    # a stand-in of the lost model is lost with it; a model never served keeps its error
    with pytest.raises(NoWorkerError):
        s.submit(call("w", "large-preview"), 1.0)
    with pytest.raises(ValueError, match=r"served: \['small'\]"):
        s.submit(call("h", "huge"), 1.0)
    s.add_worker("b1", "large")  # the model comes back with a new worker
    assert s.submit(call("z3", "large"), 2.0) == "b1"


def test_with_one_pool_losing_its_last_worker_names_the_model():
    s = Scheduler()
    s.add_worker("w0", "llama-3.1-8b")
    s.submit(call("x", "anything"), 0.0)
    s.remove_worker("w0", 1.0)
    assert [r.request_id for r, _ in s.stranded] == ["x"]
    from agentrt.runtime.core.pools import NoWorkerError
    with pytest.raises(NoWorkerError, match="'llama-3.1-8b'"):
        s.submit(call("y", "anything"), 1.0)
