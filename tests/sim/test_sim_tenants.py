"""Multi-tenancy figures: per-tenant SLO attainment and the slowdown spread."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from agentrt.programs.workloads import generate
from agentrt.runtime.bench.harness import assign_tenants, tenant_shares
from agentrt.runtime.sim.config import SimConfig
from agentrt.runtime.sim.driver import Simulation
from agentrt.runtime.sim.metrics import Recorder, SimResult


def test_three_tenants_get_60_30_10_percent_of_the_programs():
    programs = assign_tenants(generate("swe", 100, seed=1), 3, seed=0)
    assert Counter(p.tenant for p in programs) == {"t0": 60, "t1": 30, "t2": 10}
    assert assign_tenants(programs, 1, seed=0) is programs
    assert sum(tenant_shares(4)) == pytest.approx(1.0)


def test_slo_attainment_and_spread_by_hand():
    rec = Recorder()
    for pid, tenant, jct, bound in [("a", "x", 10, 5), ("b", "x", 30, 5), ("c", "y", 4, 4)]:
        rec.program(pid, tenant, arrival=0.0, finished=float(jct), lower_bound=float(bound))
    result = SimResult.from_recorder(rec, workers=1, busy_time=0.0, makespan=30.0,
                                     wall_time_s=0.0, events=0, unfinished=0,
                                     config={"slo_factor": 5.0})
    per = result.tenant_metrics()
    assert per["x"] == {"programs": 2.0, "slo_attainment": 0.5, "slowdown_mean": 4.0}
    assert per["y"]["slo_attainment"] == 1.0
    summary = result.tenant_summary()
    assert summary["slo_attainment"] == pytest.approx(2 / 3)
    assert summary["slo_attainment_min_tenant"] == 0.5
    assert summary["slowdown_spread"] == pytest.approx(4.0)


def test_fair_share_with_preemption_finishes_every_tenants_programs():
    programs = assign_tenants(generate("swe", 40, seed=11), 3, seed=2)
    sim = Simulation(programs, SimConfig(
        workers=3, concurrency=40, queue="fair_share", queue_options={"delta": 0.05},
        preemption=True, stealing=True, max_num_seqs=4, dispatch_window=2))
    result = sim.run()
    assert result.unfinished == 0
    assert sim.scheduler.counters.preempted > 0
    metrics = result.metrics()
    assert set(result.tenant_metrics()) == {"t0", "t1", "t2"}
    assert 0.0 <= metrics["slo_attainment_min_tenant"] <= metrics["slo_attainment"] <= 1.0
    assert metrics["slowdown_spread"] >= 1.0
    assert np.isfinite(metrics["slowdown_spread"])
