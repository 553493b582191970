"""agentrt's default TTL policy: a soft pin that fades along the tool's own survival curve.

    last step                      -> drop (nobody comes back)
    predicted end >= max_pin_s     -> offload if reload beats recompute, else drop
    reload beats recompute and holding costs more than a swap
                                   -> drop: the blocks stay cached while there is room
                                      and go to host memory when evicted
    (both with a host tier: prefetch whatever is in host memory by the predicted end
     minus the reload time, so the next turn finds its context back on the GPU instead
     of stalling the batch for the reload; `prefetch` False turns that off)
    otherwise                      -> soft pin:
        weight 1 until the predicted end (the tool's `full_quantile`, median by default),
        then S(t) = P(tool still running after t), and 0 (expiry) once S < min_weight
        (the tool's 1 - min_weight quantile), capped at max_pin_s;
        value = rebuild seconds per context token (what keeping a token saves)

Under memory pressure the engine releases the pin worth least (weight x value,
`pressure_rule` "pins_first") before preempting anything, and pinned memory stays
within `pin_cap_fraction` of the KV. A released or expired pin's blocks stay cached;
with a host tier they are offloaded, not dropped, when evicted. Unseen tools without a
prior (no duration estimate at all) get a `cold_pin_s` hard-weighted pin.
"""
from __future__ import annotations

import math
from functools import partial

from agentrt.runtime.core.retention.decision import PinDecision, PinRequest, SurvivalWeight
from agentrt.runtime.core.retention.ttl import TTLPolicy, register_ttl_policy
from agentrt.toolmgr.durations import DurationModel


@register_ttl_policy("agentrt")
class AgentRTTTL(TTLPolicy):
    """See the module doc."""

    pressure_rule = "pins_first"

    def __init__(
        self, cap_fraction: float = 0.5, full_quantile: float = 0.5, min_weight: float = 0.05,
        max_pin_s: float = 300.0, cold_pin_s: float = 2.0, prefetch: bool = True,
    ) -> None:
        if not 0.0 < cap_fraction <= 1.0 or not 0.0 < min_weight < 1.0:
            raise ValueError(f"need 0 < cap_fraction <= 1 and 0 < min_weight < 1, got "
                             f"{cap_fraction}, {min_weight}")
        self.pin_cap_fraction = cap_fraction
        self.full_quantile = full_quantile
        self.min_weight = min_weight
        self.max_pin_s = max_pin_s
        self.cold_pin_s = cold_pin_s
        self.prefetch = prefetch

    def decide(self, request: PinRequest, durations: DurationModel) -> PinDecision:
        now, tool, engine = request.now, request.tool, request.engine
        if request.program.last_step:
            return PinDecision.drop(now, "last step: nobody comes back")
        if durations.source(tool) == "none":
            full = fade = self.cold_pin_s
        else:
            full = durations.quantile(tool, self.full_quantile)
            fade = durations.quantile(tool, 1.0 - self.min_weight)
        if full >= self.max_pin_s:
            if engine.reload_beats_recompute:
                return self._prefetched(PinDecision.offload(
                    now, f"predicted end {full:.3g} s: reload beats recompute"), request, full)
            return PinDecision.drop(now, f"predicted end {full:.3g} s >= {self.max_pin_s:g} s")
        if engine.reload_beats_recompute and self._swap_is_cheaper(request, full):
            return self._prefetched(PinDecision.drop(
                now, f"predicted end {full:.3g} s: a host reload costs less than holding "
                     f"the memory"), request, full)
        until = now + min(max(fade, full), self.max_pin_s)
        weight = SurvivalWeight.sampled(now, now + full, until,
                                        partial(durations.survival, tool))
        value = engine.rebuild_s / max(1, request.context_tokens)
        if not math.isfinite(value):
            value = 0.0
        return PinDecision.soft(until, weight, value,
                                f"soft pin: full {full:.3g} s, fades until {until - now:.3g} s")

    def _prefetched(self, decision: PinDecision, request: PinRequest,
                    full: float) -> PinDecision:
        """`decision`, prefetching the context back one reload time before the tool's
        predicted end (at once if the tool is predicted to end sooner)."""
        if not self.prefetch or request.engine.reload_s is None:
            return decision
        return decision.with_prefetch(request.now + max(0.0, full - request.engine.reload_s))

    @staticmethod
    def _swap_is_cheaper(request: PinRequest, full: float) -> bool:
        """InferCept's waste comparison for the time the tool is predicted to run:
        holding C tokens for `full` seconds against reloading them once, which stalls
        the running batch and the session (C_batch + C tokens) for the reload time,
        counted twice as InferCept does (out and back in)."""
        e, c = request.engine, request.context_tokens
        return full * c > 2 * e.reload_s * (e.batch_tokens + c)
