"""End-to-end reference points: published vLLM serving benchmarks, replayed on the model.

`fidelity.py` checks the model operator by operator (Vidur's linear-layer profiles);
this checks whole engine steps as a serving benchmark sees them: time per output token
(TPOT) and output throughput against concurrency, each point replayed with
`serving.replay` (the benchmark's closed loop on the simulated engine, with the serving
defaults of that vLLM version and GPU). Points are split in two:

    fit     H100: decode-dominated TPOT at low concurrency. They fix the one term
            the per-operator fit leaves open, the per-step CPU time (`cpu_step`):
            `fit_cpu_step` is the least-squares value (relative errors, >= 0).
    check   A100-40GB points from another source and engine version, never fitted:
            their errors are the held-out error reported in docs/fidelity.md.

Every point names its source, URL, date and vLLM version. Points that cannot be
replayed faithfully (unknown length distributions, other engines or precisions) are
listed in the docs with the reason, not compared.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from agentrt.runtime.engines.simulated.hardware import MODELS
from agentrt.runtime.engines.simulated.perf_model import EFFICIENCIES, Efficiencies, PerfModel
from agentrt.runtime.engines.simulated.serving import replay

INFERENCEBENCH = ("InferenceBench concurrency-sweep recipe (yobitelcomm), captured "
                  "2026-05-16, vLLM 0.21.0, H100 80GB HBM3, fp16, chatbot-short: "
                  "https://yobitelcomm.github.io/bench/recipes/concurrency-sweep/")
MUSGRAVE = ("J. Musgrave, vLLM throughput-latency sweep on NVIDIA A100 (undated; "
            "vLLM 0.23.0), A100 40GB, BF16, 1024 in / 128 out, --ignore-eos: "
            "https://johnmusgrave.com/p/vllm-throughput-latency-sweep-on")
# The previous end-to-end constant (CALIBRATION.md's 1-3 ms per step), for comparison.
PREVIOUS = replace(EFFICIENCIES, cpu_step=1.0e-3)


@dataclass(frozen=True, slots=True)
class ServingPoint:
    """One published figure and the benchmark that produced it. `metric`: "tpot_ms"
    (median time per output token at `concurrency`) or "throughput_ratio" (output
    throughput at `concurrency` over that at concurrency 1)."""

    label: str
    role: str  # "fit" or "check"
    gpu: str
    concurrency: int
    input_tokens: int
    output_tokens: int
    max_num_seqs: int
    max_batched_tokens: int
    metric: str
    reference: float
    source: str
    note: str = ""

    def model(self, efficiencies: Efficiencies = EFFICIENCIES) -> float:
        perf = PerfModel(MODELS["llama-3.1-8b"], self.gpu, 1, efficiencies)

        def run(concurrency: int):
            return replay(perf, concurrency, 20 * concurrency, self.input_tokens,
                          self.output_tokens, max_num_seqs=self.max_num_seqs,
                          max_batched_tokens=self.max_batched_tokens)

        if self.metric == "tpot_ms":
            return run(self.concurrency).median_tpot_s * 1e3
        return run(self.concurrency).output_tokens_per_s / run(1).output_tokens_per_s

    def error(self, efficiencies: Efficiencies = EFFICIENCIES) -> float:
        return self.model(efficiencies) / self.reference - 1


# vLLM's serving defaults (vllm/engine/arg_utils.py, `_set_default_args`): H100-class
# GPUs 8192 batched tokens and 1024 sequences; A100 2048 and 256.
POINTS = [
    ServingPoint("Llama-3.1-8B / H100-SXM, concurrency 1, TPOT", "fit", "H100-SXM", 1, 256,
                 128, 1024, 8192, "tpot_ms", 6.48, INFERENCEBENCH,
                 "prompt lengths of chatbot-short not stated: 256 in / 128 out assumed"),
    ServingPoint("Llama-3.1-8B / H100-SXM, concurrency 4, TPOT", "fit", "H100-SXM", 4, 256,
                 128, 1024, 8192, "tpot_ms", 6.59, INFERENCEBENCH,
                 "prompt lengths of chatbot-short not stated: 256 in / 128 out assumed"),
    ServingPoint("Llama-3.1-8B / A100-SXM-40G, concurrency 1, TPOT", "check", "A100-SXM-40G",
                 1, 1024, 128, 256, 2048, "tpot_ms", 1e3 / 75, MUSGRAVE,
                 "'about 75 tokens/sec' at one request: 13.3 ms"),
    ServingPoint("Llama-3.1-8B / A100-SXM-40G, throughput at concurrency 8 over 1", "check",
                 "A100-SXM-40G", 8, 1024, 128, 256, 2048, "throughput_ratio", 6.6, MUSGRAVE,
                 "'a 6.6x gain' from concurrency 1 to 8"),
]


def fit_cpu_step(points: list[ServingPoint] | None = None) -> float:
    """The per-step CPU time that best fits the TPOT points of the fit set: every
    decode step carries it once, so TPOT(x) = TPOT(0) + x, and the least-squares x over
    relative errors is sum((r - m0) / r^2) / sum(1 / r^2), floored at 0."""
    fit = [p for p in (points or POINTS) if p.role == "fit" and p.metric == "tpot_ms"]
    zero = replace(EFFICIENCIES, cpu_step=0.0)
    num = sum((p.reference - p.model(zero)) / p.reference ** 2 for p in fit)
    den = sum(1 / p.reference ** 2 for p in fit)
    return max(0.0, num / den) / 1e3  # ms -> s


def markdown() -> str:
    lines = ["| reference point | set | reference | model (previous: 1 ms CPU/step) | "
             "model (refit) | source |", "|---|---|---|---|---|---|"]
    for p in POINTS:
        unit = " ms" if p.metric == "tpot_ms" else "x"
        before, after = p.model(PREVIOUS), p.model()
        lines.append(
            f"| {p.label} | {p.role} | {p.reference:.2f}{unit} | {before:.2f}{unit} "
            f"({before / p.reference - 1:+.1%}) | {after:.2f}{unit} "
            f"({after / p.reference - 1:+.1%}) | {p.source.split(':')[0]}"
            f"{'; ' + p.note if p.note else ''} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(f"fitted cpu_step: {fit_cpu_step() * 1e3:.3f} ms")
    print(markdown())
