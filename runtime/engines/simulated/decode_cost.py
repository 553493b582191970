"""The step time of a pure-decode iteration, as the fused decode loop adds it up.

For a batch of `size` decoding sequences reading `context` tokens of KV in all,
`PerfModel.step_time_totals(0, 0, size, context, size)` is affine in `context`::

    t(context) = (base + context * per_context) + allreduce

`DecodeCost` takes the three terms from the perf model's precomputed constants and
evaluates them with the same operations in the same order, so a fused run's times are
bit-identical to those of single steps (tests/engines/test_engines_fused_decode.py
checks this against `step_time_totals`).
"""
from __future__ import annotations

from dataclasses import dataclass

from agentrt.runtime.engines.simulated.perf_model import PerfModel


@dataclass(frozen=True, slots=True)
class DecodeCost:
    base: float  # CPU, weights and linear FLOPs, LM head: all but the context terms
    per_context: float  # seconds per context token read by decode attention
    allreduce: float  # tensor-parallel all-reduces (0.0 without TP)

    @classmethod
    def of(cls, perf: PerfModel, size: int) -> DecodeCost:
        """The terms of `perf.step_time_totals(0, 0, size, context, size)`."""
        eff = perf.eff
        flop_time = size * perf._f_token + size * perf._f_logit
        base = eff.cpu_step + size * eff.cpu_per_seq + perf._dense(perf._w_all, flop_time)
        allreduce = perf._ar_fixed + size * perf._ar_token if perf._ar_fixed else 0.0
        return cls(base + 0 * perf._t_pair, perf._t_kv, allreduce)

    def step_time(self, context: int) -> float:
        return (self.base + context * self.per_context) + self.allreduce
