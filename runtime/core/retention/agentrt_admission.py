"""agentrt's program admission for engines it cannot pin in (HTTP servers): ThunderAgent's
rule with agentrt's tool-aware retention in place of a fixed decay.

ThunderAgent (admission over unmodified engines) counts an acting program's KV at
`tokens x 2^-t`, t seconds into its tool: a fixed half-life that is too short for a
minutes-long build and too long for a file read. Here an acting program's KV counts in
full until its tool's predicted end (the duration model's median) and then fades with
the tool's own survival function, P(still running after t), the weight agentrt's soft
pins carry; a tool the model has not seen yet falls back to ThunderAgent's decay. And a
paused program resumes on the worker that still holds its prefix: when that worker has
no room, it waits up to `max_origin_wait_s` for it before going elsewhere (and paying
a full prefill there), instead of moving at once.

Everything else is ThunderAgent's (`thunderagent.py`): per-worker load against capacity
at each tick, pausing acting programs smallest first, marking reasoning ones to pause
at their turn's end, resuming in priority order. Like it, it never pins; it is
selectable by name ("agentrt-admission") and driven by the cluster control's gate.
"""
from __future__ import annotations

from agentrt.runtime.core.retention.decision import PinDecision, PinRequest
from agentrt.runtime.core.retention.thunderagent import (
    ThunderAgentAdmission, ThunderAgentTTL, _Program,
)
from agentrt.runtime.core.retention.ttl import register_ttl_policy
from agentrt.toolmgr.durations import DurationModel


class AgentRTAdmission(ThunderAgentAdmission):
    """See the module doc. `durations` is the cluster's duration model (the control
    hands it over); None: ThunderAgent's decay for every tool."""

    def __init__(self, per_program_tokens: int = 100, decay_base: float = 2.0,
                 max_origin_wait_s: float = 2.0) -> None:
        super().__init__(per_program_tokens, decay_base)
        if max_origin_wait_s < 0:
            raise ValueError(f"max_origin_wait_s must be >= 0, got {max_origin_wait_s}")
        self.max_origin_wait_s = max_origin_wait_s
        self.durations: DurationModel | None = None

    def _weight(self, p: _Program, now: float) -> float:
        durations = self.durations
        if p.phase != "acting" or durations is None or durations.source(p.tool) == "none":
            return super()._weight(p, now)
        elapsed = max(0.0, now - p.since)
        if elapsed < durations.quantile(p.tool, 0.5):
            kept = 1.0
        else:
            kept = min(1.0, max(0.0, durations.survival(p.tool, elapsed)))
        return p.tokens * kept + self.per_program_tokens

    def _place(self, p: _Program, room: dict[str, float], need: float,
               now: float) -> str | None:
        origin = p.worker
        if origin in room and room[origin] >= need:
            return origin
        if origin is not None and now - p.since < self.max_origin_wait_s:
            return None  # wait for the worker that holds its prefix
        return super()._place(p, room, need, now)


@register_ttl_policy("agentrt-admission")
class AgentRTAdmissionTTL(ThunderAgentTTL):
    """No engine pins: admission keeps what admitted programs need within each worker's
    capacity (see the module doc). Every decision drops."""

    def __init__(self, per_program_tokens: int = 100, decay_base: float = 2.0,
                 max_origin_wait_s: float = 2.0) -> None:
        self.admission = AgentRTAdmission(per_program_tokens, decay_base, max_origin_wait_s)

    def decide(self, request: PinRequest, durations: DurationModel) -> PinDecision:
        return PinDecision.drop(request.now, "orchestration-level: admission, no pins")
