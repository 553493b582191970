"""Continuum's TTL rule (paper, reconstructed; see ALGORITHMS.md section 1).

Pin for

    tau* = argmax over tau in {0} U {observed durations} of  P(d <= tau) * K - tau,
    K    = eta * Tq + C_reload(n)

where P is the tool's empirical CDF once it has `min_tool_samples` samples, else the
global CDF of all tools; before `min_total_samples` samples in total, a `cold_pin_s`
fixed pin. C_reload(n) is what rebuilding the context would cost the engine (recompute
or host reload, whichever is cheaper: `EngineFacts.rebuild_s`). tau* = 0 means no pin.
At most one pin per program (`exclusive`), never on the last step.

The objective is a step function minus tau, so its maximum is at a sample; only samples
below K can beat tau = 0 (P <= 1), so the scan covers those, vectorised: O(log n + m)
for m samples below K.
"""
from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence

import numpy as np

from agentrt.runtime.core.retention.decision import PinDecision, PinRequest
from agentrt.runtime.core.retention.tool_cdf import global_samples, observed_samples, total_samples
from agentrt.runtime.core.retention.trackers import EtaTracker, QueueDelayTracker
from agentrt.runtime.core.retention.ttl import TTLPolicy, register_ttl_policy
from agentrt.toolmgr.durations import DurationModel


def best_ttl(samples: Sequence[float], k: float) -> float:
    """argmax over tau in {0} U samples of F(tau) * k - tau, with F the empirical CDF
    of `samples` (sorted ascending); the smallest tau on ties. 0.0 when empty."""
    n = len(samples)
    if not n or k <= 0:
        return 0.0
    best_tau, best = 0.0, bisect_right(samples, 0.0) / n * k
    cut = bisect_left(samples, k)  # a sample >= k scores <= 0 <= the tau = 0 value
    if cut:
        xs = np.asarray(samples[:cut], dtype=float)
        # At the last copy of a value, (i + 1) / n is F there; earlier copies score less.
        scores = np.arange(1, cut + 1, dtype=float) / n * k - xs
        i = int(np.argmax(scores))
        if scores[i] > best:
            best_tau = float(xs[i])
    return best_tau


@register_ttl_policy("continuum")
class ContinuumTTL(TTLPolicy):
    """See the module doc. Feedback: `on_queue_delay` feeds Tq (evicted caches only),
    `on_program_finished` feeds eta."""

    pressure_rule = "continuum"

    def __init__(
        self, min_tool_samples: int = 100, min_total_samples: int = 100,
        cold_pin_s: float = 2.0, tq_window: int = 100, eta_window: int = 1000,
    ) -> None:
        self.min_tool_samples = min_tool_samples
        self.min_total_samples = min_total_samples
        self.cold_pin_s = cold_pin_s
        self.eta = EtaTracker(eta_window)
        self.tq = QueueDelayTracker(tq_window)

    def on_queue_delay(self, delay_s: float, cache_lost: bool) -> None:
        if cache_lost:
            self.tq.record(delay_s)

    def on_program_finished(self, program_id: str, turns: int) -> None:
        self.eta.program_finished(turns)

    def decide(self, request: PinRequest, durations: DurationModel) -> PinDecision:
        now = request.now
        if request.program.last_step:
            return PinDecision.drop(now, "last step")
        if total_samples(durations) < self.min_total_samples:
            return PinDecision.pin(now + self.cold_pin_s, "cold start: fixed pin",
                                   exclusive=True)
        own = durations.count(request.tool) >= self.min_tool_samples
        samples = observed_samples(durations, request.tool) if own else global_samples(durations)
        k = self.eta.value * self.tq.value + request.engine.rebuild_s
        tau = best_ttl(samples, k)
        source = "tool" if own else "global"
        if tau <= 0.0:
            return PinDecision.drop(now, f"tau* = 0 ({source} CDF, K = {k:.3g} s)")
        return PinDecision.pin(now + tau, f"tau* = {tau:.3g} s ({source} CDF, K = {k:.3g} s)",
                               exclusive=True)
