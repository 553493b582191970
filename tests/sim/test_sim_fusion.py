"""Fusing decode iterations across events changes nothing but the number of events."""
from __future__ import annotations

import numpy as np
import pytest

from agentrt.programs.workloads import generate
from agentrt.runtime.bench.harness import assign_tenants
from agentrt.runtime.sim.driver import Simulation
from tests.sim.builders import plain_config


def run(programs, **config):
    sim = Simulation(programs, plain_config(record_decisions=True, **config))
    result = sim.run()
    counters = sim.scheduler.counters
    if config.get("stealing") and not config.get("worker_changes"):
        assert counters.stolen > 0  # the case exercises what it names
    if config.get("preemption"):
        assert counters.preempted > 0
    if config.get("steal_options", {}).get("kv_move") == "transfer":
        assert sim.workers.transferred_tokens > 0
    if config.get("worker_changes"):
        assert sim.rerouted > 0
    if config.get("ttl") == "agentrt" and config.get("host_tier") == "on":
        assert sim.prefetches > 0  # contexts come back during tool calls
    return result, list(sim.scheduler.decisions)


@pytest.mark.parametrize("workload,config", [
    ("swe", {"workers": 4, "concurrency": 24}),
    ("dag", {"workers": 3, "concurrency": 12, "router": "round_robin"}),
    ("bfcl", {"workers": 2, "arrival": "poisson", "rate": 2.0}),
    # a small KV cache: half the prompt tokens re-prefilled after evictions
    ("swe", {"workers": 2, "concurrency": 24, "kv_blocks": 6000}),
    # KV retention: pins expire inside the engines (their deadlines cap fused runs)
    ("swe", {"workers": 2, "concurrency": 24, "kv_blocks": 6000, "ttl": "fixed"}),
    ("remote", {"workers": 2, "concurrency": 24, "kv_blocks": 6000, "ttl": "continuum"}),
    # ... and with a host tier, prefetches (external events) change free blocks
    ("swe", {"workers": 2, "concurrency": 24, "kv_blocks": 6000, "ttl": "agentrt",
             "host_tier": "on"}),
    ("swe", {"workers": 2, "concurrency": 24, "kv_blocks": 6000, "ttl": "infercept",
             "host_tier": "on"}),
    ("swe", {"workers": 2, "concurrency": 24, "kv_blocks": 6000, "ttl": "thunderagent"}),
    ("dag", {"workers": 2, "concurrency": 12, "kv_blocks": 6000, "ttl": "agentrt",
             "eviction": "workflow_aware"}),
    ("swe", {"workers": 2, "concurrency": 24, "kv_blocks": 6000, "eviction": "belady"}),
    # work stealing (small batches and windows so that queues build and calls move):
    # idle workers steal at arrivals, tool completions and finished calls
    ("swe", {"workers": 4, "concurrency": 40, "stealing": True, "max_num_seqs": 2,
             "dispatch_window": 1, "steal_options": {"high_mark": 1}}),
    ("dag", {"workers": 3, "concurrency": 12, "stealing": True, "queue": "atlas",
             "max_num_seqs": 2, "dispatch_window": 1, "steal_options": {"high_mark": 0}}),
    # ... taking the stolen sessions' KV along (copies into the thief's free blocks)
    ("swe", {"workers": 4, "concurrency": 40, "stealing": True, "max_num_seqs": 2,
             "dispatch_window": 1, "steal_options": {"high_mark": 1, "kv_move": "transfer"}}),
    # preemption: the queue policy recalls calls at step ends
    ("swe", {"workers": 2, "concurrency": 32, "queue": "plas", "preemption": True,
             "dispatch_window": 2, "max_num_seqs": 4}),
    ("dag", {"workers": 2, "concurrency": 16, "queue": "atlas", "preemption": True,
             "dispatch_window": 2, "max_num_seqs": 4}),
    # workers leaving and joining mid-run (external events for the horizon)
    ("swe", {"workers": 4, "concurrency": 32, "stealing": True, "max_num_seqs": 4,
             "dispatch_window": 2,
             "worker_changes": [(30.0, "remove", "w1"), (50.0, "add", "w9")]}),
    # all of it together: fair share across three tenants, preempting and stealing
    ("swe-tenants", {"workers": 3, "concurrency": 40, "queue": "fair_share",
                     "queue_options": {"delta": 0.05}, "preemption": True, "stealing": True,
                     "max_num_seqs": 4, "dispatch_window": 2}),
])
def test_fused_and_single_steps_give_identical_runs(workload, config):
    if workload == "swe-tenants":
        programs = assign_tenants(generate("swe", 40, seed=11), 3, seed=2)
    else:
        programs = generate(workload, 40, seed=11)
    single, single_log = run(programs, fuse_decode=False, **config)
    fused, fused_log = run(programs, fuse_decode=True, **config)
    assert fused_log == single_log
    for key, values in single.requests.items():
        np.testing.assert_allclose(fused.requests[key], values, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(fused.jct, single.jct, rtol=1e-9)
    if config.get("preemption") and config.get("stealing"):
        # a worker short of work steps singly here (any preemption can create a victim)
        assert fused.events <= single.events
    else:
        assert fused.events < single.events
