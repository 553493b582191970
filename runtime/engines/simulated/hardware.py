"""What the vendor and the model card say: GPU specs and transformer shapes.

This file is the one table of published figures the performance model starts from; the
efficiencies fitted against measurements live in `perf_model.EFFICIENCIES`. Every figure
carries its source beside it. Lookups are by case-insensitive name and raise ValueError
listing the valid names.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

GB = 1e9
MIB = 1 << 20


@dataclass(frozen=True, slots=True)
class GpuSpec:
    """One GPU. Bandwidths in bytes/s, one direction; FLOP/s dense (no sparsity)."""

    name: str
    bf16_flops: float
    hbm_bandwidth: float
    hbm_bytes: float  # what the driver reports as total memory (vLLM sizes from this)
    host_link_peak: float  # PCIe, per direction
    host_link_practical: float  # sustained host<->device copy rate
    nvlink: float  # per GPU, per direction
    network: float  # per GPU NIC, per direction, practical
    host_memory: float = 0.0  # server DRAM per GPU (an 8-GPU server's total / 8)
    # Efficiencies fitted for this device alone, overriding the calibrated defaults by
    # field name (perf_model.Efficiencies): a measured machine that is not one of the
    # table's GPUs (see `register_gpu`). Empty for the table's own entries.
    efficiencies: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """A dense decoder-only transformer (Llama-style: GQA attention, gated MLP)."""

    name: str
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    ffn: int
    vocab: int
    params: int
    dtype_bytes: int = 2
    tied_embeddings: bool = False
    max_context: int = 131072

    @property
    def kv_bytes_per_token(self) -> int:
        """K and V for every layer: 2 x layers x kv_heads x head_dim x dtype bytes."""
        return 2 * self.layers * self.kv_heads * self.head_dim * self.dtype_bytes

    @property
    def linear_params_per_layer(self) -> int:
        """QKV, output projection and the gated MLP (gate, up, down) of one layer."""
        q = self.heads * self.head_dim
        kv = 2 * self.kv_heads * self.head_dim
        return self.hidden * (q + kv) + q * self.hidden + 3 * self.hidden * self.ffn

    @property
    def linear_params(self) -> int:
        return self.layers * self.linear_params_per_layer

    @property
    def lm_head_params(self) -> int:
        return self.vocab * self.hidden

    @classmethod
    def from_config(cls, config: Mapping[str, Any], name: str | None = None) -> ModelSpec:
        """Build a spec from a Hugging Face style `config.json` dict (Llama, Mistral,
        Qwen2 and alike). Parameters are counted from the shapes."""
        try:
            hidden = int(config["hidden_size"])
            layers = int(config["num_hidden_layers"])
            heads = int(config["num_attention_heads"])
            ffn = int(config["intermediate_size"])
            vocab = int(config["vocab_size"])
        except KeyError as err:
            raise ValueError(f"model config lacks {err.args[0]!r}; got keys {sorted(config)}")
        kv_heads = int(config.get("num_key_value_heads") or heads)
        head_dim = int(config.get("head_dim") or hidden // heads)
        dtype = str(config.get("torch_dtype", "bfloat16"))
        if dtype not in _DTYPE_BYTES:
            raise ValueError(f"unknown torch_dtype {dtype!r}; valid: {sorted(_DTYPE_BYTES)}")
        tied = bool(config.get("tie_word_embeddings", False))
        spec = cls(
            name=name or str(config.get("_name_or_path", "custom")),
            layers=layers, hidden=hidden, heads=heads, kv_heads=kv_heads,
            head_dim=head_dim, ffn=ffn, vocab=vocab, params=0,
            dtype_bytes=_DTYPE_BYTES[dtype], tied_embeddings=tied,
            max_context=int(config.get("max_position_embeddings", 131072)),
        )
        return _with_counted_params(spec)


def _with_counted_params(spec: ModelSpec) -> ModelSpec:
    """Embedding + layers (linear weights and two RMSNorms) + final norm + LM head."""
    per_layer = spec.linear_params_per_layer + 2 * spec.hidden
    embeddings = spec.lm_head_params * (1 if spec.tied_embeddings else 2)
    params = embeddings + spec.layers * per_layer + spec.hidden
    return replace(spec, params=params)


_DTYPE_BYTES = {"bfloat16": 2, "float16": 2, "float32": 4, "float8": 1}

# ---------------------------------------------------------------------------------------
# The table. Sources beside each figure.
# ---------------------------------------------------------------------------------------

GPUS: dict[str, GpuSpec] = {
    spec.name.lower(): spec
    for spec in (
        GpuSpec(
            name="A100-SXM-80G",
            bf16_flops=312e12,  # NVIDIA A100 datasheet: BF16 tensor core, dense
            hbm_bandwidth=2.039e12,  # A100 80GB SXM datasheet: 2,039 GB/s HBM2e
            # nvidia-smi total memory, thundergolfer.com/blog/nvidia-gpu-memory-capacity
            hbm_bytes=81920 * MIB,
            host_link_peak=31.5 * GB,  # PCIe 4.0 x16, per direction
            host_link_practical=25 * GB,  # CALIBRATION.md: "about 25 in practice"
            nvlink=300 * GB,  # NVLink 3: 600 GB/s total = 300 per direction
            network=25 * GB * 0.8,  # DGX A100: one 200 Gb/s HDR NIC per GPU, ~80% achieved
            host_memory=2048 * GB / 8,  # DGX A100 80GB datasheet: 2 TB system memory
        ),
        GpuSpec(
            name="A100-SXM-40G",
            bf16_flops=312e12,  # NVIDIA A100 datasheet: BF16 tensor core, dense
            hbm_bandwidth=1.555e12,  # A100 40GB SXM datasheet: 1,555 GB/s HBM2
            hbm_bytes=40960 * MIB,  # nvidia-smi total of the 40 GB card
            host_link_peak=31.5 * GB,  # PCIe 4.0 x16, per direction
            host_link_practical=25 * GB,  # as the 80 GB card (same host interface)
            nvlink=300 * GB,  # NVLink 3: 600 GB/s total = 300 per direction
            network=25 * GB * 0.8,  # DGX A100: one 200 Gb/s HDR NIC per GPU, ~80% achieved
            host_memory=1024 * GB / 8,  # DGX A100 (40 GB) datasheet: 1 TB system memory
        ),
        GpuSpec(
            name="H100-SXM",
            bf16_flops=989e12,  # NVIDIA H100 SXM datasheet: 1,979 TFLOP/s sparse / 2
            hbm_bandwidth=3.35e12,  # H100 SXM datasheet: 3.35 TB/s HBM3
            hbm_bytes=81559 * MIB,  # nvidia-smi total (thundergolfer.com, as above)
            host_link_peak=63 * GB,  # PCIe 5.0 x16, per direction
            host_link_practical=50 * GB,  # CALIBRATION.md: "about 50-55 in practice"
            nvlink=450 * GB,  # NVLink 4: 900 GB/s total = 450 per direction
            network=50 * GB * 0.8,  # DGX H100: one 400 Gb/s NDR NIC per GPU, ~80% achieved
            host_memory=2048 * GB / 8,  # DGX H100 datasheet: 2 TB system memory
        ),
        GpuSpec(
            name="H200",
            bf16_flops=989e12,  # NVIDIA H200 datasheet: same Hopper die as H100 SXM
            hbm_bandwidth=4.8e12,  # H200 datasheet: 4.8 TB/s HBM3e
            hbm_bytes=143771 * MIB,  # nvidia-smi total (thundergolfer.com, as above)
            host_link_peak=63 * GB,  # PCIe 5.0 x16, per direction
            host_link_practical=50 * GB,  # assumed as H100 (same host interface)
            nvlink=450 * GB,  # NVLink 4, as H100
            network=50 * GB * 0.8,  # HGX H200: 400 Gb/s NIC per GPU, as H100
            host_memory=2048 * GB / 8,  # DGX H200 datasheet: 2 TB system memory
        ),
    )
}

MODELS: dict[str, ModelSpec] = {
    spec.name.lower(): spec
    for spec in (
        # huggingface.co/meta-llama/Llama-3.1-8B config.json; CALIBRATION.md (8.0 B, 128 KiB/token)
        _with_counted_params(ModelSpec(
            name="Llama-3.1-8B", layers=32, hidden=4096, heads=32, kv_heads=8,
            head_dim=128, ffn=14336, vocab=128256, params=0,
        )),
        # huggingface.co/meta-llama/Llama-3.1-70B config.json; CALIBRATION.md (70.6 B,
        # 320 KiB/token)
        _with_counted_params(ModelSpec(
            name="Llama-3.1-70B", layers=80, hidden=8192, heads=64, kv_heads=8,
            head_dim=128, ffn=28672, vocab=128256, params=0,
        )),
    )
}

_GPU_ALIASES = {"a100": "a100-sxm-80g", "h100": "h100-sxm"}


def register_gpu(spec: GpuSpec) -> GpuSpec:
    """Add a device to the table under its name (a machine measured here, such as the
    CPU the vLLM backend's tests run on: runtime/bench/cpu_calibration.py). Replaces an
    earlier registration of the same name, never a table entry."""
    key = spec.name.lower()
    if key in _TABLE_GPUS or key in _GPU_ALIASES:
        raise ValueError(f"{spec.name!r} is a published entry of the table; register "
                         f"a measured device under another name")
    GPUS[key] = spec
    return spec


def register_model(spec: ModelSpec) -> ModelSpec:
    """Add a model (e.g. `ModelSpec.from_config` of a local folder) under its name;
    replaces an earlier registration of the same name, never a table entry."""
    key = spec.name.lower()
    if key in _TABLE_MODELS:
        raise ValueError(f"{spec.name!r} is a published entry of the table; register "
                         f"another model under another name")
    MODELS[key] = spec
    return spec


_TABLE_GPUS, _TABLE_MODELS = frozenset(GPUS), frozenset(MODELS)


def get_gpu(name: str | GpuSpec) -> GpuSpec:
    """The GPU spec called `name` (case-insensitive; "a100" and "h100" are aliases)."""
    if isinstance(name, GpuSpec):
        return name
    key = _GPU_ALIASES.get(name.lower(), name.lower())
    if key not in GPUS:
        valid = sorted(s.name for s in GPUS.values())
        aliases = sorted(_GPU_ALIASES)
        raise ValueError(f"unknown GPU {name!r}; valid: {valid} (or aliases {aliases})")
    return GPUS[key]


def get_model(name: str | ModelSpec) -> ModelSpec:
    """The model spec called `name` (case-insensitive)."""
    if isinstance(name, ModelSpec):
        return name
    if name.lower() not in MODELS:
        valid = sorted(s.name for s in MODELS.values())
        raise ValueError(
            f"unknown model {name!r}; valid: {valid} (or build one with ModelSpec.from_config)"
        )
    return MODELS[name.lower()]
