"""Run configuration: validated and frozen at the edge (CLI, driver API, config files).

`ClusterSettings` holds what both drivers share (the cluster, the engines, every policy)
with one set of defaults; `RuntimeConfig` (the Ray runtime) and `SimConfig` (the
simulator, `runtime.sim.config`) add what only one of them has.

The defaults are agentrt's best measured configuration, the `agentrt-sched` policy set
of docs/benchmarks.md: ATLAS program-level queueing, session-affinity routing, work
stealing that copies a stolen session's KV over the network, the agentrt soft-pin TTL
policy, and a host-memory KV tier where reloading beats recomputing. A run that sets
nothing gets that; the benchmark's baselines (`vllm-rr`, `vllm-sticky`, ...) turn each
piece off explicitly (`runtime.bench.policies`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from agentrt.runtime.core.budget import Price
from agentrt.runtime.core.names import EvictionName, QueueName, RouterName, TTLName

# Illustrative list prices (USD per million tokens) for hosted open-weight models;
# used for budgets in USD when the user gives none.
DEFAULT_PRICES: dict[str, Price] = {
    "llama-3.1-8b": Price(input_per_m=0.10, output_per_m=0.20),
    "llama-3.1-70b": Price(input_per_m=0.60, output_per_m=0.80),
}

# agentrt's stealing: a stolen session's KV goes with it over the data-center network
# (the slower of the two peer links; NVLink only joins GPUs of one server).
DEFAULT_STEAL_OPTIONS: dict[str, Any] = {"kv_move": "transfer", "link": "network"}


class WorkerPool(BaseModel):
    """Workers that serve one model. A run with several pools routes each call to a
    worker of its model's pool (`runtime.core.pools`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str
    """The name calls use for the model (stand-ins map other names onto it)."""
    workers: int = Field(1, ge=1, le=4096)
    engine: Literal["simulated", "latency", "openai", "inline"] = "simulated"
    """simulated: a GPU worker charged by the calibrated performance model (`model`,
    `gpu` and `tp` name it); latency: a simulated hosted API whose calls take
    `ttft_s + prompt tokens x prompt_token_s + output tokens x tpot_s`; openai: one
    worker per OpenAI-compatible server replica (`endpoints`: vLLM, SGLang,
    llama.cpp's server, hosted APIs); inline: an in-process engine that answers at
    once with the workload's responder (smoke runs, nothing modeled)."""
    endpoints: list[dict[str, Any]] = Field(default_factory=list)
    """openai: one `OpenAIEndpoint` per replica (base_url, model, api_key_env, ...)."""
    tokenizer: Literal["estimate", "server"] | str = "estimate"
    """openai: where prompt token ids (prefix identity) come from: "estimate" (agentrt's
    own, labelled as an estimate), "server" (the first replica's /tokenize), or a model
    folder with the model's tokenizer.json."""
    prefill_tokens_per_s: float = Field(20_000.0, gt=0)
    """openai: the servers' prefill rate, for routing's time estimates only."""
    gpu: str = "h100"
    tp: int = Field(1, ge=1, le=16)
    kv_blocks: int | None = Field(None, ge=1)
    ttft_s: float = Field(0.3, ge=0)
    prompt_token_s: float = Field(5e-5, ge=0)
    tpot_s: float = Field(0.025, ge=0)

    @model_validator(mode="after")
    def _known_hardware(self) -> WorkerPool:
        if self.engine == "simulated":
            from agentrt.runtime.engines.simulated.perf_model import PerfModel

            PerfModel(self.model, self.gpu, self.tp)
        if self.engine == "openai":
            if not self.endpoints:
                raise ValueError(f"pool {self.model!r}: engine 'openai' needs endpoints, "
                                 "one per server replica (base_url, model, ...)")
            from agentrt.runtime.engines.openai.config import OpenAIEndpoint

            for endpoint in self.endpoints:
                OpenAIEndpoint(**endpoint)  # bad fields fail here, by name
            object.__setattr__(self, "workers", len(self.endpoints))
        return self

    @property
    def real(self) -> bool:
        """Whether the pool's workers are real servers (they run on the wall clock)."""
        return self.engine == "openai"


class ClusterSettings(BaseModel):
    """The cluster, its engines and its policies: what both drivers share."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    workers: int = Field(4, ge=1, le=4096)
    """Simulated GPU workers (one Ray actor each on the runtime)."""
    model: str = "llama-3.1-8b"
    """Model every worker serves (see runtime.engines.simulated.hardware for the names)."""
    gpu: str = "h100"
    """GPU the simulated workers model."""
    tp: int = Field(1, ge=1, le=16)
    """Tensor-parallel degree of one worker."""
    kv_blocks: int | None = Field(None, ge=1)
    """KV capacity per worker in blocks; None derives it from GPU memory."""
    block_size: int = Field(16, ge=1)
    """KV block size in tokens."""
    max_num_seqs: int = Field(256, ge=1)
    max_batched_tokens: int = Field(8192, ge=16)
    seed: int = 0
    """Seed for every random choice the simulated engines make."""
    queue: QueueName = "atlas"
    """Queue policy: which waiting call a worker gets next."""
    router: RouterName = "sticky"
    """Routing policy: which worker a call goes to."""
    dispatch_window: int = Field(8, ge=1)
    """Calls a worker may hold beyond those it runs; the rest wait in the scheduler."""
    queue_options: dict[str, Any] = Field(default_factory=dict)
    """Options of the queue policy (e.g. fair_share's `delta`)."""
    router_options: dict[str, Any] = Field(default_factory=dict)
    """Options of the router (e.g. dualmap's SLO)."""
    stealing: bool = True
    """Work stealing between workers (runtime.core.stealing)."""
    steal_options: dict[str, Any] = Field(default_factory=lambda: dict(DEFAULT_STEAL_OPTIONS))
    """StealConfig fields (low_mark, high_mark, max_steal, kv_move, link)."""
    preemption: bool = False
    """Abort the calls the queue policy recalls (plas, atlas, fair_share)."""
    ttl: TTLName | None = "agentrt"
    """TTL policy: what a worker keeps of a session's KV while it waits on a tool
    (runtime.core.retention: none, fixed, continuum, infercept, thunderagent, agentrt);
    None: no retention at all (the engine's own pressure rule, no decisions)."""
    eviction: EvictionName = "lru"
    """Eviction over free cached blocks: lru, workflow_aware, belady (oracle)."""
    host_tier: Literal["off", "on", "auto"] = "auto"
    """A host-memory KV tier per worker (offload instead of drop, reload on the next
    turn, prefetch during tool calls); auto: on when reloading a context beats
    recomputing it on this model and GPU."""
    host_fraction: float = Field(0.5, gt=0, le=1)
    """Share of the server's host memory the tier gets, when on."""
    free_reload: bool = False
    """Evaluation only, simulated engines: reloading KV from the host tier takes no time
    (an ideal host link), so no retention or prefetch policy could do better at
    keeping reusable KV; a bound, not a setting to run."""
    duration_min_samples: int = Field(100, ge=1)
    """Observed calls of a tool before its own durations alone predict it; until then
    they are blended with its prior or the durations of all tools."""
    admission_interval_s: float = Field(1.0, gt=0)
    """ThunderAgent admission: how often it re-plans (ttl "thunderagent" only)."""
    record_decisions: bool = False
    """Keep the core's decision log (dispatches, steals, moves, preemptions, TTL and
    admission decisions) in order, to compare runs and drivers (grows with every call)."""
    pools: list[WorkerPool] = Field(default_factory=list)
    """Worker pools, one per model; empty: one pool of `workers` x `model` on `gpu`
    with `tp` (the simple case)."""
    stand_ins: dict[str, str] = Field(default_factory=dict)
    """Model names another model answers for: {name: served model}. A call to a
    stand-in runs on the served model's workers but is priced, traced and planned as
    itself."""

    @field_validator("steal_options")
    @classmethod
    def _known_steal_options(cls, options: dict[str, Any]) -> dict[str, Any]:
        from agentrt.runtime.core.stealing import StealConfig

        unknown = sorted(set(options) - set(StealConfig.model_fields))
        if unknown:
            raise ValueError(f"unknown steal options {unknown}; valid: "
                             f"{sorted(StealConfig.model_fields)}")
        StealConfig(**options)  # bad values fail here, by name
        return options

    @model_validator(mode="after")
    def _known_hardware(self) -> ClusterSettings:
        """A model, GPU and parallelism the performance model knows (named if not)."""
        if not self.pools:
            from agentrt.runtime.engines.simulated.perf_model import PerfModel

            PerfModel(self.model, self.gpu, self.tp)
        return self

    @model_validator(mode="after")
    def _stand_ins_are_served(self) -> ClusterSettings:
        served = set(self.served_models())
        wrong = {name: to for name, to in self.stand_ins.items() if to not in served}
        if wrong:
            raise ValueError(f"stand_ins {wrong} map to models no worker serves; served: "
                             f"{sorted(served)}")
        return self

    @model_validator(mode="after")
    def _real_servers_run_at_scale_one(self) -> ClusterSettings:
        scale = getattr(self, "time_scale", 1.0)
        real = [p.model for p in self.worker_pools() if p.real]
        if real and scale != 1.0:
            raise ValueError(f"time_scale={scale} with real servers ({real}): a real "
                             "server runs on the wall clock; leave time_scale at 1")
        return self

    def worker_pools(self) -> list[WorkerPool]:
        """The pools the run starts (one from `model`, `workers`, `gpu`, `tp` when
        `pools` is empty)."""
        if self.pools:
            return list(self.pools)
        return [WorkerPool(model=self.model, workers=self.workers, gpu=self.gpu, tp=self.tp,
                           kv_blocks=self.kv_blocks)]

    def served_models(self) -> list[str]:
        return [p.model for p in self.worker_pools()]

    @property
    def total_workers(self) -> int:
        return sum(p.workers for p in self.worker_pools())

    def describe_workers(self) -> str:
        """e.g. "4 simulated h100 workers (TP1, llama-3.1-8b)"."""
        parts = []
        for p in self.worker_pools():
            if p.engine == "latency":
                parts.append(f"{p.workers} simulated hosted-API workers ({p.model})")
            elif p.engine == "openai":
                urls = ", ".join(e["base_url"] for e in p.endpoints)
                parts.append(f"{p.workers} OpenAI-compatible server(s) serving {p.model} "
                             f"({urls})")
            elif p.engine == "inline":
                parts.append(f"{p.workers} inline workers ({p.model}, nothing modeled)")
            else:
                parts.append(f"{p.workers} simulated {p.gpu} workers (TP{p.tp}, {p.model})")
        return " + ".join(parts)

    def steal_config(self):
        """The StealConfig the scheduler runs, or None with stealing off."""
        from agentrt.runtime.core.stealing import StealConfig

        return StealConfig(**self.steal_options) if self.stealing else None

    def control_settings(self):
        """What the cluster control runs (`runtime.core.control.ControlSettings`)."""
        from agentrt.runtime.core.control import ControlSettings

        return ControlSettings(
            queue=self.queue, router=self.router, dispatch_window=self.dispatch_window,
            queue_options=dict(self.queue_options), router_options=dict(self.router_options),
            stealing=self.steal_config(), preemption=self.preemption, ttl=self.ttl,
            duration_min_samples=self.duration_min_samples,
            admission_interval_s=self.admission_interval_s, record=self.record_decisions,
            aliases=dict(self.stand_ins))


class RuntimeConfig(ClusterSettings):
    """How a Ray run is set up: the cluster settings, plus time scale, runners, traces,
    prices and planning."""

    time_scale: float = Field(1.0, gt=0)
    """Wall seconds per simulated GPU second (0.1 runs the GPU ten times faster)."""
    runners: int = Field(2, ge=1)
    """Program runner actors that execute step code."""
    max_concurrent_programs: int = Field(64, ge=1)
    """Programs in flight at once (closed loop); the rest wait to start."""
    trace_dir: Path = Path("runs")
    """Each run writes <trace_dir>/<run id>/trace.jsonl, journal.sqlite and (the CLI)
    results.jsonl. The driver makes it absolute (runtime.run_paths: a relative path is
    resolved against AGENTRT_RUN_ROOT, or the home folder inside a Ray job)."""
    journal_url: str | None = None
    """The durable journal that lets a run resume (runtime.journal): None is SQLite in
    the run's folder (one machine); `postgresql://user@host/db` a PostgreSQL database
    every node reaches (a multi-node Ray cluster); `sqlite:///abs/path.sqlite` another
    SQLite file; "off" no journal (nothing can be resumed)."""
    worker_health_timeout_s: float = Field(20.0, gt=0)
    """A worker that does not answer the scheduler's health check (every second) within
    this many seconds leaves routing; its calls run elsewhere."""
    sim_gpu_resource: str = "sim_gpu"
    """Ray custom resource that places one simulated worker."""
    prices: dict[str, Price] = Field(default_factory=lambda: dict(DEFAULT_PRICES))
    """USD per million input and output tokens, per model: what budgets are charged and
    what the planner prices candidates at."""
    planner: str = "mcpp"
    """Planner that chooses model and samples for steps that declare candidates (a name
    from runtime.core.planner.PLANNERS)."""
    admission_min_success: float = Field(0.05, ge=0.0, le=1.0)
    """A planned program whose estimated success probability is below this is rejected
    at admission."""

    @field_validator("journal_url")
    @classmethod
    def _known_journal(cls, url: str | None) -> str | None:
        from agentrt.runtime.journal.url import OFF, parse_journal_url

        if url is not None and url != OFF:
            parse_journal_url(url)  # JournalConfigError is a ValueError: named by field
        return url

    @field_validator("planner")
    @classmethod
    def _known_planner(cls, name: str) -> str:
        from agentrt.runtime.core.planner import PLANNERS  # numpy and the planners: on use only

        if name not in PLANNERS:
            raise ValueError(f"unknown planner {name!r}; valid: {sorted(PLANNERS)}")
        return name
