"""Fusing decode iterations across events changes nothing but the number of events."""
from __future__ import annotations

import numpy as np
import pytest

from programs.workloads import generate
from runtime.sim.config import SimConfig
from runtime.sim.driver import Simulation


def run(programs, **config):
    sim = Simulation(programs, SimConfig(record_decisions=True, **config))
    return sim.run(), list(sim.scheduler.dispatch_log)


@pytest.mark.parametrize("workload,config", [
    ("swe", {"workers": 4, "concurrency": 24}),
    ("dag", {"workers": 3, "concurrency": 12, "router": "round_robin"}),
    ("bfcl", {"workers": 2, "arrival": "poisson", "rate": 2.0}),
    # a small KV cache: half the prompt tokens re-prefilled after evictions
    ("swe", {"workers": 2, "concurrency": 24, "kv_blocks": 6000}),
    # KV retention: pins expire inside the engines (their deadlines cap fused runs)
    ("swe", {"workers": 2, "concurrency": 24, "kv_blocks": 6000, "ttl": "fixed"}),
    ("remote", {"workers": 2, "concurrency": 24, "kv_blocks": 6000, "ttl": "continuum"}),
    ("swe", {"workers": 2, "concurrency": 24, "kv_blocks": 6000, "ttl": "agentrt",
             "host_tier": "on"}),
    ("swe", {"workers": 2, "concurrency": 24, "kv_blocks": 6000, "ttl": "infercept",
             "host_tier": "on"}),
    ("swe", {"workers": 2, "concurrency": 24, "kv_blocks": 6000, "ttl": "thunderagent"}),
    ("dag", {"workers": 2, "concurrency": 12, "kv_blocks": 6000, "ttl": "agentrt",
             "eviction": "workflow_aware"}),
    ("swe", {"workers": 2, "concurrency": 24, "kv_blocks": 6000, "eviction": "belady"}),
])
def test_fused_and_single_steps_give_identical_runs(workload, config):
    programs = generate(workload, 40, seed=11)
    single, single_log = run(programs, fuse_decode=False, **config)
    fused, fused_log = run(programs, fuse_decode=True, **config)
    assert fused_log == single_log
    for key, values in single.requests.items():
        np.testing.assert_allclose(fused.requests[key], values, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(fused.jct, single.jct, rtol=1e-9)
    assert fused.events < single.events
