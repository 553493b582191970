"""Every named policy set of the benchmark is a valid simulator configuration."""
from __future__ import annotations

import pytest

from agentrt.runtime.bench.policies import (
    BASELINE, POLICY_SETS, RETENTION_SETS, SCHEDULING_SETS, policy_set,
)
from agentrt.runtime.config import RuntimeConfig
from agentrt.runtime.sim.config import SimConfig


@pytest.mark.parametrize("name", sorted(POLICY_SETS))
def test_each_policy_set_is_a_valid_config(name):
    SimConfig(**policy_set(name))


def test_the_retention_comparison_covers_the_published_policies_and_agentrt():
    ttls = [POLICY_SETS[name].get("ttl") for name in RETENTION_SETS]
    assert ttls == [None, "fixed", "continuum", "infercept", "thunderagent", "agentrt"]
    assert policy_set("agentrt-kv")["host_tier"] == "auto"
    with pytest.raises(ValueError, match="vllm-rr"):
        policy_set("magic")


def test_the_scheduling_comparison_has_its_baselines_and_agentrt_default():
    assert SCHEDULING_SETS[:2] == ("vllm-rr", "vllm-sticky")
    assert policy_set("vllm-sticky") == BASELINE  # every mechanism off
    sched = policy_set("agentrt-sched")
    assert sched["stealing"] and sched["queue"] in ("atlas", "program_fcfs")
    assert {k: sched[k] for k in ("ttl", "host_tier")} == {
        k: policy_set("agentrt-kv")[k] for k in ("ttl", "host_tier")}
    fair = policy_set("agentrt-fair")
    assert fair["queue"] == "fair_share" and fair["preemption"]


@pytest.mark.parametrize("config", [SimConfig, RuntimeConfig])
def test_a_configuration_that_sets_nothing_runs_agentrts_default_set(config):
    defaults, sched = config().model_dump(), policy_set("agentrt-sched")
    assert {k: defaults[k] for k in sched} == sched


def test_a_policy_set_turns_off_every_mechanism_it_does_not_name():
    sticky = SimConfig(**policy_set("vllm-sticky"))
    assert (sticky.ttl, sticky.stealing, sticky.host_tier, sticky.preemption) == (
        None, False, "off", False)


@pytest.mark.parametrize("name, queue", [("agentrt-gittins", "gittins"),
                                         ("agentrt-oracle", "oracle_srpt")])
def test_the_size_aware_sets_are_agentrt_sched_with_their_queue(name, queue):
    assert policy_set(name) == {**policy_set("agentrt-sched"), "queue": queue}


def test_the_free_reload_bound_is_agentrt_sched_with_free_reloads():
    assert policy_set("free-reload") == {**policy_set("agentrt-sched"), "free_reload": True}
    assert policy_set("agentrt-sched")["free_reload"] is False
