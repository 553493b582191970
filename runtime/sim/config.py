"""Simulation settings: the shared cluster settings, plus the arrival process, metrics
and the simulator's own switches."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from agentrt.runtime.config import ClusterSettings


class SimConfig(ClusterSettings):
    worker_changes: list[tuple[float, Literal["add", "remove"], str]] = Field(
        default_factory=list)
    """(time, "add" | "remove", worker id): workers joining or leaving mid-run."""
    slo_factor: float = Field(5.0, gt=0)
    """A program meets its SLO when its JCT <= slo_factor x its lower bound (metrics)."""
    arrival: Literal["closed", "poisson", "trace"] = "closed"
    """closed: keep `concurrency` programs in flight; poisson: `rate` programs per second;
    trace: the arrival times the programs carry."""
    concurrency: int = Field(64, ge=1)
    rate: float = Field(1.0, gt=0)
    ramp_s: float = Field(10.0, ge=0)
    """Closed loop: the first `concurrency` programs start spread over this many seconds."""
    sample_interval_s: float = Field(5.0, gt=0)
    """How often KV use and queue lengths are sampled (virtual seconds)."""
    check_integrity: bool = True
    """Verify every engine's KV accounting when the run ends (O(blocks) per worker; the
    benchmark turns it off to time the simulation alone)."""
    fuse_decode: bool = True
    """Let engines run several decode iterations per event when nothing can interleave
    (identical results, far fewer events)."""
