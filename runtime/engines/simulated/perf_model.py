"""Analytic step-time model of one serving-engine iteration (Vidur-style decomposition).

    t_step = t_cpu(seqs)
           + dense(weight read, linear FLOPs)              linear layers + LM head
           + prefill attention FLOPs / (eff_a * FLOPS)      causal, chunk over its context
           + decode context x KV bytes / (eff_kv * BW)      decode attention reads the cache
           + 2 all-reduces per layer (TP > 1)               ring over NVLink + per-call latency

Per-GPU terms are divided by the tensor-parallel degree. `dense` is the p-norm
(w^p + f^p)^(1/p) of the weight-read time w and the FLOP time f: with p = inf it is
CALIBRATION.md's max(w, f); the fitted p = 2 also follows the knee between the
bandwidth-bound and compute-bound regimes that the measured profiles show (see
tests/engines/test_engines_perf_model.py for the point-by-point comparison).

The engine calls the fast path `step_time_totals` with running sums, so the cost of a
step's duration does not depend on the batch size.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

from agentrt.runtime.engines.simulated.hardware import GpuSpec, ModelSpec, get_gpu, get_model


@dataclass(frozen=True, slots=True)
class Efficiencies:
    """Achieved fractions of peak, and fixed overheads. Defaults are the calibration."""

    # Fitted to the Vidur per-operator linear-layer profiles in CALIBRATION.md (4 models x
    # GPUs, 1 to 8192 tokens): one set for A100 and H100; worst error 8.0% outside one
    # excluded knee point (tests/engines/test_engines_perf_model.py).
    weight_bw: float = 0.68
    flops: float = 0.64
    knee_p: float = 2.0  # p-norm exponent; math.inf reproduces the plain max
    # CALIBRATION.md starting values; no public per-operator point to fit them to yet.
    attention_flops: float = 0.5
    kv_read_bw: float = 0.55
    # NCCL ring all-reduce reaches about 80% of the NVLink per-direction bandwidth.
    nvlink: float = 0.8
    # sglang PR #2904: vLLM custom all-reduce on H100, TP 4, messages <= 32 KB: 8.5-9.2 us.
    allreduce_latency: float = 9e-6
    # Per-step CPU time the GPU waits for. Fitted end to end (fidelity_serving.py) to
    # published vLLM serving TPOT on H100 (vLLM 0.21): the least-squares value is 0,
    # as vLLM's V1 engine schedules the next step while the GPU runs this one; checked
    # on A100-40GB figures (vLLM 0.23) within 8% (CALIBRATION.md's 1-3 ms per step
    # described engines without that overlap). 4 us per scheduled sequence remains.
    cpu_step: float = 0.0
    cpu_per_seq: float = 4e-6
    # Non-KV memory per GPU (CUDA context, activations at 8192 batched tokens, CUDA
    # graphs, NCCL buffers). 5.0 GB puts both CALIBRATION.md capacity figures (8B on
    # one H100: 427k tokens; 70B TP4: 448k) within 0.1% from the driver-reported HBM.
    reserved_bytes: float = 5.0e9


EFFICIENCIES = Efficiencies()


def attention_pairs(new_tokens: int, context_before: int) -> int:
    """Query-key pairs of a causal prefill chunk: each new token attends to the context
    and to the new tokens up to itself."""
    return new_tokens * context_before + new_tokens * (new_tokens + 1) // 2


class PerfModel:
    """Step time of one model on `tp` GPUs of one kind. Immutable; all methods pure."""

    def __init__(
        self,
        model: ModelSpec | str,
        gpu: GpuSpec | str,
        tp: int = 1,
        efficiencies: Efficiencies = EFFICIENCIES,
    ) -> None:
        self.model = get_model(model)
        self.gpu = get_gpu(gpu)
        self.tp = tp
        if efficiencies is EFFICIENCIES and self.gpu.efficiencies:
            efficiencies = replace(efficiencies, **dict(self.gpu.efficiencies))
        self.eff = efficiencies
        _check_tp(self.model, tp)
        self._precompute()

    def _precompute(self) -> None:
        m, g, e, tp = self.model, self.gpu, self.eff, self.tp
        flops, bw = e.flops * g.bf16_flops, e.weight_bw * g.hbm_bandwidth
        self._w_linear = m.linear_params * m.dtype_bytes / tp / bw
        self._w_all = (m.linear_params + m.lm_head_params) * m.dtype_bytes / tp / bw
        self._f_token = 2 * m.linear_params / tp / flops
        self._f_logit = 2 * m.lm_head_params / tp / flops
        attn_flops_per_pair = 4 * m.layers * m.heads * m.head_dim  # QK^T and PV, 2 FLOP/MAC
        self._t_pair = attn_flops_per_pair / tp / (e.attention_flops * g.bf16_flops)
        self._kv_per_gpu = m.kv_bytes_per_token / tp
        self._t_kv = self._kv_per_gpu / (e.kv_read_bw * g.hbm_bandwidth)
        ring = 2 * (tp - 1) / tp  # bytes each GPU sends per byte reduced
        calls = 2 * m.layers if tp > 1 else 0
        self._ar_fixed = calls * e.allreduce_latency
        self._ar_token = calls * ring * m.hidden * m.dtype_bytes / (e.nvlink * g.nvlink)
        self._p = e.knee_p

    # -- step time -------------------------------------------------------------------

    def step_time(
        self, prefill_chunks: Sequence[tuple[int, int]], decode_contexts: Sequence[int]
    ) -> float:
        """Duration of one iteration. `prefill_chunks`: (new_tokens, context_before) per
        prefilling sequence; `decode_contexts`: context length (including the token
        being decoded) per decoding sequence."""
        return self.step_time_totals(
            prefill_tokens=sum(n for n, _ in prefill_chunks),
            prefill_attn_pairs=sum(attention_pairs(n, c) for n, c in prefill_chunks),
            num_decode=len(decode_contexts),
            decode_context=sum(decode_contexts),
            num_seqs=len(prefill_chunks) + len(decode_contexts),
        )

    def step_time_totals(
        self,
        prefill_tokens: int,
        prefill_attn_pairs: int,
        num_decode: int,
        decode_context: int,
        num_seqs: int | None = None,
    ) -> float:
        """`step_time` from sums kept by the caller: O(1). `prefill_attn_pairs` is the
        sum of `attention_pairs` over the chunks; `num_seqs` (sequences that produce
        logits) defaults to the decodes plus one prefill."""
        tokens = prefill_tokens + num_decode
        if tokens <= 0:
            return 0.0
        if num_seqs is None:
            num_seqs = num_decode + (1 if prefill_tokens else 0)
        flop_time = tokens * self._f_token + num_seqs * self._f_logit
        return (
            self.eff.cpu_step + num_seqs * self.eff.cpu_per_seq
            + self._dense(self._w_all, flop_time)
            + prefill_attn_pairs * self._t_pair
            + decode_context * self._t_kv
            + (self._ar_fixed + tokens * self._ar_token if self._ar_fixed else 0.0)
        )

    def linear_time(self, tokens: int) -> float:
        """Linear layers alone (no attention, LM head, all-reduce or CPU): the quantity
        Vidur profiles per operator."""
        return self._dense(self._w_linear, tokens * self._f_token)

    def _dense(self, weight_time: float, flop_time: float) -> float:
        p = self._p
        if p == 2.0:
            return math.hypot(weight_time, flop_time)
        if math.isinf(p):
            return max(weight_time, flop_time)
        return (weight_time**p + flop_time**p) ** (1.0 / p)

    # -- derived figures ---------------------------------------------------------------

    def decode_tpot(self, batch: int, context: int) -> float:
        """Time per output token of a pure-decode batch of `batch` sequences, each with
        `context` tokens of context."""
        return self.step_time_totals(0, 0, batch, batch * context, batch)

    def decode_step_time(self, decoding: int, context: int) -> float:
        """One decode iteration of `decoding` sequences holding `context` tokens of KV
        between them (the shortest iteration of this model when nothing decodes)."""
        if not decoding:
            return min(self.step_time_totals(0, 0, 1, 1, 1), self.step_time_totals(1, 1, 0, 0, 1))
        return self.step_time_totals(0, 0, decoding, context + decoding, decoding)

    def prefill_time(self, tokens: int, context: int = 0) -> float:
        """One step that prefills `tokens` new tokens after `context` cached ones."""
        return self.step_time_totals(tokens, attention_pairs(tokens, context), 0, 0, 1)

    def recompute_time(self, tokens: int, chunk: int = 8192) -> float:
        """Rebuild `tokens` of context from scratch by chunked prefill."""
        total, done = 0.0, 0
        while done < tokens:
            n = min(chunk, tokens - done)
            total += self.prefill_time(n, done)
            done += n
        return total

    def host_kv_capacity_tokens(self, fraction: float = 0.5) -> int:
        """Tokens of KV a host-memory tier holds when `fraction` of the server memory
        behind this worker's GPUs is given to it (the rest runs the host)."""
        if not 0 < fraction <= 1:
            raise ValueError(f"fraction must be in (0, 1], got {fraction}")
        return int(fraction * self.gpu.host_memory * self.tp / self.model.kv_bytes_per_token)

    @property
    def kv_bytes_per_token(self) -> float:
        """KV bytes one token of context takes across the whole TP group."""
        return float(self.model.kv_bytes_per_token)

    def reload_time(self, tokens: int) -> float:
        """Copy `tokens` of KV from host memory; each GPU moves its shard over its own
        host link at the practical rate."""
        return tokens * self._kv_per_gpu / self.gpu.host_link_practical

    def transfer_time(self, tokens: int, link: str = "nvlink") -> float:
        """Move `tokens` of KV to a peer over `link` ("nvlink", "network" or "host"),
        every GPU of the TP group sending its shard in parallel."""
        rates = {
            "nvlink": self.eff.nvlink * self.gpu.nvlink,
            "network": self.gpu.network,
            "host": self.gpu.host_link_practical,
        }
        if link not in rates:
            raise ValueError(f"unknown link {link!r}; valid: {sorted(rates)}")
        return tokens * self._kv_per_gpu / rates[link]

    def kv_capacity_tokens(self, mem_util: float = 0.9) -> int:
        """Tokens of KV that fit: per GPU, HBM x mem_util - weight shard - reserved
        (see `Efficiencies.reserved_bytes`), divided by the per-GPU KV bytes per token."""
        if not 0.0 < mem_util <= 1.0:
            raise ValueError(f"mem_util must be in (0, 1], got {mem_util}")
        m = self.model
        weights = m.params * m.dtype_bytes / self.tp
        free = self.gpu.hbm_bytes * mem_util - weights - self.eff.reserved_bytes
        if free <= 0:
            raise ValueError(
                f"{m.name} does not fit {self.tp} x {self.gpu.name} at mem_util={mem_util}: "
                f"{weights / 1e9:.1f} GB of weights per GPU; raise tp or mem_util"
            )
        return int(free // self._kv_per_gpu)

    def __repr__(self) -> str:
        return f"PerfModel({self.model.name!r}, {self.gpu.name!r}, tp={self.tp})"


class FreeReloadPerfModel(PerfModel):
    """Evaluation only (`ClusterSettings.free_reload`): the same model with an ideal
    host link, so a reload from the host tier costs nothing. Run beside the real one,
    it bounds what any retention or prefetch policy could still gain."""

    def reload_time(self, tokens: int) -> float:
        return 0.0

    def __repr__(self) -> str:
        return "FreeReload" + super().__repr__()


def _check_tp(model: ModelSpec, tp: int) -> None:
    if tp < 1 or model.heads % tp or model.kv_heads % tp:
        raise ValueError(
            f"tp={tp} must be >= 1 and divide {model.name}'s {model.heads} heads and "
            f"{model.kv_heads} KV heads"
        )
