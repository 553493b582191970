"""Builds workers' engines from the cluster settings: what the Ray worker actors and the
simulator both call, so that they run identical engines. One factory per worker pool
(`ClusterSettings.worker_pools`): a simulated GPU worker (`EngineFactory`) or a
simulated hosted API (`LatencyFactory`)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agentrt.runtime.core.retention import make_ttl_policy
from agentrt.runtime.engines.simulated.engine import SimulatedEngine
from agentrt.runtime.engines.simulated.latency import LatencyEngine
from agentrt.runtime.engines.simulated.perf_model import FreeReloadPerfModel, PerfModel
from agentrt.runtime.engines.simulated.responder import Responder

# A context length at which host tier "auto" compares reload with recompute.
HOST_TIER_PROBE_TOKENS = 8192


def wants_host_tier(mode: str, perf: PerfModel) -> bool:
    """Whether workers get a host-memory KV tier under `mode` ("off", "on", or "auto":
    on when reloading a context beats recomputing it on this model and GPU)."""
    if mode == "auto":
        n = HOST_TIER_PROBE_TOKENS
        return perf.reload_time(n) < perf.recompute_time(n)
    return mode == "on"


@dataclass(frozen=True)
class EngineFactory:
    model: str = "llama-3.1-8b"
    gpu: str = "h100"
    tp: int = 1
    responder: Responder | None = None
    block_size: int = 16
    max_num_seqs: int = 256
    max_batched_tokens: int = 8192
    kv_blocks: int | None = None
    """Override the KV capacity (blocks); None derives it from GPU memory."""
    seed: int = 0
    ttl: str | None = None
    """TTL policy whose mechanism knobs the engine takes (pin cap, pressure rule); None:
    no retention, the engine's own pressure rule."""
    eviction: str = "lru"
    """Eviction policy over free cached blocks (kvcache.eviction registry)."""
    host_fraction: float = 0.0
    """Share of the server's host memory given to a KV host tier (0: no tier)."""
    pending_holds: bool = False
    """Hold a finished tool-calling session's blocks until its TTL decision arrives
    (the Ray runtime, whose core runs in another process)."""
    free_reload: bool = False
    """Evaluation only: host-tier reloads take no time (`FreeReloadPerfModel`)."""

    @classmethod
    def for_config(cls, cfg, perf: PerfModel | None = None, *,
                   responder: Responder | None = None,
                   pending_holds: bool = False) -> EngineFactory:
        """The factory of a `ClusterSettings`' single simulated pool (RuntimeConfig or
        SimConfig without `pools`)."""
        if perf is None:
            model = FreeReloadPerfModel if cfg.free_reload else PerfModel
            perf = model(cfg.model, cfg.gpu, cfg.tp)
        host = cfg.host_fraction if wants_host_tier(cfg.host_tier, perf) else 0.0
        return cls(model=cfg.model, gpu=cfg.gpu, tp=cfg.tp, responder=responder,
                   block_size=cfg.block_size, max_num_seqs=cfg.max_num_seqs,
                   max_batched_tokens=cfg.max_batched_tokens, kv_blocks=cfg.kv_blocks,
                   seed=cfg.seed, ttl=cfg.ttl, eviction=cfg.eviction, host_fraction=host,
                   pending_holds=pending_holds and cfg.ttl is not None,
                   free_reload=cfg.free_reload)

    def cost(self) -> PerfModel:
        """What moving and rebuilding KV costs on these workers."""
        return self.perf_model()

    def perf_model(self) -> PerfModel:
        model = FreeReloadPerfModel if self.free_reload else PerfModel
        return model(self.model, self.gpu, self.tp)

    def validate(self) -> None:
        """Raise ValueError naming a bad model, GPU or parallelism before any actor starts."""
        self.perf_model()

    def __call__(self, worker_id: str) -> SimulatedEngine:
        perf = self.perf_model()
        knobs = {}
        if self.ttl is not None:
            policy = make_ttl_policy(self.ttl)
            knobs = {"pin_cap_fraction": policy.pin_cap_fraction,
                     "pressure_rule": policy.pressure_rule}
        host_blocks = 0
        if self.host_fraction > 0:
            host_blocks = perf.host_kv_capacity_tokens(self.host_fraction) // self.block_size
        return SimulatedEngine(
            worker_id, perf, self.responder, block_size=self.block_size,
            max_num_seqs=self.max_num_seqs, max_batched_tokens=self.max_batched_tokens,
            kv_blocks=self.kv_blocks, seed=self.seed, eviction=self.eviction,
            host_blocks=host_blocks, pending_holds=self.pending_holds, model_name=self.model,
            **knobs)


class _KvStaysPut:
    """The cost of moving KV where it never moves (a hosted API, an HTTP server): a
    session's context is prefilled again, never reloaded or copied."""

    def recompute_time(self, tokens: int) -> float:
        return self.prefill_time(tokens)  # type: ignore[attr-defined]

    def reload_time(self, tokens: int) -> float:
        return float("inf")

    def transfer_time(self, tokens: int, link: str = "nvlink") -> float:
        return float("inf")


@dataclass(frozen=True)
class LatencyCost(_KvStaysPut):
    """The cost model of a hosted API pool: no KV to move or keep, prefill time is the
    time to the first token."""

    ttft_s: float
    prompt_token_s: float
    kv_bytes_per_token: float = 0.0

    def prefill_time(self, tokens: int, context: int = 0) -> float:
        return self.ttft_s + tokens * self.prompt_token_s


@dataclass(frozen=True)
class LatencyFactory:
    """Builds simulated hosted-API workers (`LatencyEngine`)."""

    model: str
    ttft_s: float
    prompt_token_s: float
    tpot_s: float
    responder: Responder | None = None
    block_size: int = 16
    seed: int = 0

    def cost(self) -> LatencyCost:
        return LatencyCost(self.ttft_s, self.prompt_token_s)

    def __call__(self, worker_id: str) -> LatencyEngine:
        return LatencyEngine(worker_id, self.model, ttft_s=self.ttft_s,
                             prompt_token_s=self.prompt_token_s, tpot_s=self.tpot_s,
                             responder=self.responder, block_size=self.block_size,
                             seed=self.seed)


@dataclass(frozen=True)
class ServerCost(_KvStaysPut):
    """What routing knows of a real server's speed: a configured prefill rate. KV never
    moves between servers, so moving it costs forever."""

    prefill_tokens_per_s: float
    kv_bytes_per_token: float = 0.0

    def prefill_time(self, tokens: int, context: int = 0) -> float:
        return tokens / self.prefill_tokens_per_s


@dataclass(frozen=True)
class InlineFactory:
    """Builds `InlineEngine`s: replies at once from the responder (smoke runs)."""

    model: str
    responder: Responder | None = None
    block_size: int = 16
    seed: int = 0
    origin: float = 0.0

    def cost(self) -> ServerCost:
        return ServerCost(1e9)

    def __call__(self, worker_id: str):
        import time

        from agentrt.runtime.engines.inline import InlineEngine

        return InlineEngine(worker_id, self.model, responder=self.responder,
                            block_size=self.block_size, seed=self.seed,
                            clock=lambda: time.time() - self.origin)


def pool_factories(cfg, *, responder: Responder | None = None, pending_holds: bool = False,
                   origin: float = 0.0, first_worker: int = 0) -> list[tuple[Any, Any]]:
    """(pool, factory) for every pool of a `ClusterSettings`, in order. Workers are
    numbered w{first_worker}, w{first_worker + 1}, ... across the pools; real and
    inline engines read the run clock from `origin` (wall seconds at run time 0)."""
    out, n = [], first_worker
    for pool in cfg.worker_pools():
        if pool.engine == "latency":
            factory: Any = LatencyFactory(pool.model, pool.ttft_s, pool.prompt_token_s,
                                          pool.tpot_s, responder, cfg.block_size, cfg.seed)
        elif pool.engine == "openai":
            factory = _openai_factory(pool, origin, cfg.seed, n)
        elif pool.engine == "inline":
            factory = InlineFactory(pool.model, responder, cfg.block_size, cfg.seed, origin)
        else:
            single = cfg.model_copy(update={"model": pool.model, "gpu": pool.gpu,
                                            "tp": pool.tp, "kv_blocks": pool.kv_blocks,
                                            "pools": []})
            factory = EngineFactory.for_config(single, responder=responder,
                                               pending_holds=pending_holds)
        out.append((pool, factory))
        n += pool.workers
    return out


@dataclass(frozen=True)
class ServerPoolFactory:
    """Builds the `OpenAIEngine` of each replica of a pool of real servers."""

    engines: Any  # an OpenAIEngineFactory
    prefill_tokens_per_s: float

    def cost(self) -> ServerCost:
        return ServerCost(self.prefill_tokens_per_s)

    def __call__(self, worker_id: str):
        return self.engines(worker_id)


def _openai_factory(pool, origin: float, seed: int, first: int) -> ServerPoolFactory:
    from agentrt.runtime.engines.openai.config import OpenAIEndpoint
    from agentrt.runtime.engines.openai.factory import OpenAIEngineFactory

    endpoints = tuple(OpenAIEndpoint(**e) for e in pool.endpoints)
    by_worker = {f"w{first + i}": e for i, e in enumerate(endpoints)}
    engines = OpenAIEngineFactory(endpoints, origin=origin, seed=seed, by_worker=by_worker)
    return ServerPoolFactory(engines, pool.prefill_tokens_per_s)
