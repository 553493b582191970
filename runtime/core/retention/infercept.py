"""InferCept's min-waste rule: preserve, discard or swap a paused session's KV.

For a session paused on a tool with context C tokens, KV bytes M per token, expected
tool time T (`durations.mean(tool)`), waste in byte-seconds:

    preserve   T * C * M                                  memory idle while it waits
    discard    Tfwd(C) * C * M + Tfwd(C) * C_other * M    recompute holds its own memory
                                                          and stalls the running batch
    swap       2 * Tswap(C) * (C_other + C) * M           out and back in, stalling the
                                                          batch; FREE while within the
                                                          per-step swap budget

Tfwd(C) is `EngineFacts.recompute_s`, Tswap(C) `EngineFacts.reload_s` (no swap without
a host tier), C_other `EngineFacts.batch_tokens`. The per-step swap budget is what the
link moves during one forward pass (`step_s`), in tokens; decisions made at the same
`now` share it, and it goes to the sessions that would waste most otherwise (then by
session id). Preserve pins until the next turn (until = inf: the driver unpins when the
session's next request is admitted, or at program end); discard drops; swap offloads.
Ties prefer preserve, then discard.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from agentrt.runtime.core.retention.decision import PinDecision, PinRequest
from agentrt.runtime.core.retention.ttl import TTLPolicy, register_ttl_policy
from agentrt.toolmgr.durations import DurationModel


@dataclass(frozen=True, slots=True)
class Waste:
    """Byte-seconds each choice would waste (swap: inf without a host tier)."""

    preserve: float
    discard: float
    swap: float

    @property
    def without_swap(self) -> float:
        return min(self.preserve, self.discard)


def waste_of(request: PinRequest, tool_s: float) -> Waste:
    e, c = request.engine, request.context_tokens
    m = e.kv_bytes_per_token
    preserve = tool_s * c * m
    discard = e.recompute_s * c * m + e.recompute_s * e.batch_tokens * m
    swap = 2 * e.reload_s * (e.batch_tokens + c) * m if e.reload_s is not None else math.inf
    return Waste(preserve, discard, swap)


@register_ttl_policy("infercept")
class InferCeptTTL(TTLPolicy):
    """See the module doc. Holds one piece of state: the swap budget left at the
    current step."""

    pressure_rule = "pins_first"

    def __init__(self) -> None:
        self._step: float | None = None
        self._budget_left = 0.0

    def decide(self, request: PinRequest, durations: DurationModel) -> PinDecision:
        return self.decide_many([request], durations)[0]

    def decide_many(
        self, requests: Sequence[PinRequest], durations: DurationModel
    ) -> list[PinDecision]:
        decisions: dict[int, PinDecision] = {}
        wastes = [waste_of(r, durations.mean(r.tool)) for r in requests]
        order = sorted(range(len(requests)),
                       key=lambda i: (-wastes[i].without_swap, requests[i].session_id))
        for i in order:
            decisions[i] = self._choose(requests[i], wastes[i])
        return [decisions[i] for i in range(len(requests))]

    def _choose(self, request: PinRequest, waste: Waste) -> PinDecision:
        now, e = request.now, request.engine
        if request.program.last_step:
            return PinDecision.drop(now, "last step")
        if e.reload_s is not None and e.reload_s > 0:
            if self._step != now:  # a new step: a fresh budget
                self._step = now
                self._budget_left = e.step_s * request.context_tokens / e.reload_s
            if request.context_tokens <= self._budget_left:
                self._budget_left -= request.context_tokens
                return PinDecision.offload(now, "swap within the step's budget: free")
        best = min(waste.preserve, waste.discard, waste.swap)
        if waste.preserve == best:
            return PinDecision.pin(math.inf, f"preserve wastes least ({best:.3g})")
        if waste.discard == best:
            return PinDecision.drop(now, f"discard wastes least ({best:.3g})")
        return PinDecision.offload(now, f"swap wastes least ({best:.3g})")
