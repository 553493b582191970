"""Shared fixtures. Tests that need Ray share one local instance per session."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def ray_cluster():
    """One local Ray instance for the whole test session: 2 CPUs, no dashboard, and
    `sim_gpu` resources for simulated workers."""
    ray = pytest.importorskip("ray")
    if not ray.is_initialized():
        ray.init(address="local", num_cpus=2, include_dashboard=False,
                 resources={"sim_gpu": 8},
                 log_to_driver=False)
    yield ray
    ray.shutdown()
