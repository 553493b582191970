"""Simulation settings: the cluster, the policies and the arrival process."""
from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from agentrt.runtime.core.names import EvictionName, QueueName, RouterName, TTLName


class SimConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    workers: int = Field(8, ge=1, le=4096)
    """Simulated GPU workers."""
    model: str = "llama-3.1-8b"
    gpu: str = "h100"
    tp: int = Field(1, ge=1, le=16)
    kv_blocks: int | None = Field(None, ge=1)
    """KV capacity per worker in blocks; None derives it from GPU memory."""
    block_size: int = Field(16, ge=1)
    max_num_seqs: int = Field(256, ge=1)
    max_batched_tokens: int = Field(8192, ge=16)
    queue: QueueName = "program_fcfs"
    router: RouterName = "sticky"
    dispatch_window: int = Field(8, ge=1)
    queue_options: dict[str, Any] = Field(default_factory=dict)
    """Options of the queue policy (e.g. fair_share's `delta`)."""
    router_options: dict[str, Any] = Field(default_factory=dict)
    """Options of the router (e.g. dualmap's SLO)."""
    stealing: bool = False
    """Work stealing between workers (runtime.core.stealing)."""
    steal_options: dict[str, Any] = Field(default_factory=dict)
    """StealConfig fields (low_mark, high_mark, max_steal, ...)."""
    preemption: bool = False
    """Abort the calls the queue policy recalls (plas, atlas, fair_share) at step ends."""
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
    seed: int = 0
    sample_interval_s: float = Field(5.0, gt=0)
    """How often KV use and queue lengths are sampled (virtual seconds)."""
    record_decisions: bool = False
    """Keep the scheduler's dispatch log (`Simulation.scheduler.dispatch_log`): every
    (worker, request) decision in order, to compare runs and drivers."""
    check_integrity: bool = True
    """Verify every engine's KV accounting when the run ends (O(blocks) per worker; the
    benchmark turns it off to time the simulation alone)."""
    ttl: TTLName | None = None
    """TTL policy for KV across tool calls (runtime.core.retention: none, fixed,
    continuum, infercept, thunderagent, agentrt); None: no retention, as before."""
    eviction: EvictionName = "lru"
    """Eviction over free cached blocks: lru, workflow_aware, belady (oracle)."""
    host_tier: Literal["off", "on", "auto"] = "off"
    """A host-memory KV tier per worker; auto: on when reloading a context beats
    recomputing it on this model and GPU."""
    host_fraction: float = Field(0.5, gt=0, le=1)
    """Share of the server's host memory the tier gets, when on."""
    admission_interval_s: float = Field(1.0, gt=0)
    """ThunderAgent admission: how often it re-plans (ttl "thunderagent" only)."""
    fuse_decode: bool = True
    """Let engines run several decode iterations per event when nothing can interleave
    (identical results, far fewer events)."""
