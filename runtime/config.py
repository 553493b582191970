"""Run configuration: validated and frozen at the edge (CLI, driver API, config files)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from agentrt.runtime.core.budget import Price
from agentrt.runtime.core.names import QueueName, RouterName, TTLName

# Illustrative list prices (USD per million tokens) for hosted open-weight models;
# used for budgets in USD when the user gives none.
DEFAULT_PRICES: dict[str, Price] = {
    "llama-3.1-8b": Price(input_per_m=0.10, output_per_m=0.20),
    "llama-3.1-70b": Price(input_per_m=0.60, output_per_m=0.80),
}


class RuntimeConfig(BaseModel):
    """How a run is set up: the simulated cluster, the policies and where traces go."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    workers: int = Field(4, ge=1, le=4096)
    """Number of simulated GPU workers (one Ray actor each)."""
    model: str = "llama-3.1-8b"
    """Model every worker serves (see runtime.engines.hardware for the names)."""
    gpu: str = "h100"
    """GPU the simulated workers model."""
    tp: int = Field(1, ge=1, le=16)
    """Tensor-parallel degree of one worker."""
    time_scale: float = Field(1.0, gt=0)
    """Wall seconds per simulated GPU second (0.1 runs the GPU ten times faster)."""
    queue: QueueName = "program_fcfs"
    """Queue policy: which waiting call a worker gets next."""
    router: RouterName = "sticky"
    """Routing policy: which worker a call goes to."""
    ttl: TTLName | None = "agentrt"
    """TTL policy: what a worker keeps of a session's KV while it waits on a tool
    (runtime.core.retention: none, fixed, continuum, infercept, thunderagent, agentrt);
    None: no retention at all (the engine's own pressure rule, no decisions)."""
    host_tier: Literal["off", "on", "auto"] = "off"
    """A host-memory KV tier per worker (offload instead of drop, reload on the next
    turn, prefetch during tool calls); auto: on when reloading a context beats
    recomputing it on this model and GPU."""
    host_fraction: float = Field(0.5, gt=0, le=1)
    """Share of the server's host memory the tier gets, when on."""
    duration_min_samples: int = Field(100, ge=1)
    """Observed calls of a tool before its own durations alone predict it; until then
    they are blended with its prior or the durations of all tools."""
    dispatch_window: int = Field(8, ge=1)
    """Calls a worker may hold beyond those it runs; the rest wait in the scheduler."""
    queue_options: dict[str, Any] = Field(default_factory=dict)
    """Options of the queue policy (e.g. fair_share's `delta`)."""
    router_options: dict[str, Any] = Field(default_factory=dict)
    """Options of the router (e.g. dualmap's SLO)."""
    stealing: bool = False
    """Work stealing between workers (runtime.core.stealing)."""
    steal_options: dict[str, Any] = Field(default_factory=dict)
    """StealConfig fields (low_mark, high_mark, max_steal, ...)."""
    runners: int = Field(2, ge=1)
    """Program runner actors that execute step code."""
    max_concurrent_programs: int = Field(64, ge=1)
    """Programs in flight at once (closed loop); the rest wait to start."""
    block_size: int = Field(16, ge=1)
    """KV block size in tokens."""
    max_num_seqs: int = Field(256, ge=1)
    max_batched_tokens: int = Field(8192, ge=16)
    seed: int = 0
    """Seed for every random choice the simulated engines make."""
    trace_dir: Path = Path("runs")
    """Each run writes runs/<run id>/trace.jsonl under this folder."""
    sim_gpu_resource: str = "sim_gpu"
    """Ray custom resource that places one simulated worker."""
    record_decisions: bool = False
    """Keep the scheduler's dispatch log (`Runtime.dispatch_log()`): every (worker,
    request) decision in order, to compare runs and drivers (grows with every call)."""
    prices: dict[str, Price] = Field(default_factory=lambda: dict(DEFAULT_PRICES))
    """USD per million input and output tokens, per model: what budgets are charged and
    what the planner prices candidates at."""
    planner: str = "mcpp"
    """Planner that chooses model and samples for steps that declare candidates (a name
    from agentrt.runtime.core.planner.PLANNERS)."""
    admission_min_success: float = Field(0.05, ge=0.0, le=1.0)
    """A planned program whose estimated success probability is below this is rejected
    at admission."""
    stand_ins: dict[str, str] = Field(default_factory=dict)
    """Candidate models the workers' model answers for: {name: served model}. Workers
    serve one model (`model`); a call to a stand-in runs there but is priced, traced
    and planned as itself."""

    @model_validator(mode="after")
    def _stand_ins_are_served(self) -> RuntimeConfig:
        wrong = {name: to for name, to in self.stand_ins.items() if to != self.model}
        if wrong:
            raise ValueError(f"stand_ins {wrong} map to models the workers do not serve; "
                             f"every worker serves {self.model!r}, so map each to it")
        return self

    @field_validator("steal_options")
    @classmethod
    def _known_steal_options(cls, options: dict[str, Any]) -> dict[str, Any]:
        from agentrt.runtime.core.stealing import StealConfig

        StealConfig(**options)  # unknown or bad fields fail here, by name
        return options

    @field_validator("planner")
    @classmethod
    def _known_planner(cls, name: str) -> str:
        from agentrt.runtime.core.planner import PLANNERS  # numpy and the planners: on use only

        if name not in PLANNERS:
            raise ValueError(f"unknown planner {name!r}; valid: {sorted(PLANNERS)}")
        return name
