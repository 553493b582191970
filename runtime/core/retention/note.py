"""A decision as the trace shows it: `PinNote` from what `apply_decision` did and what
the duration model predicted for the tool."""
from __future__ import annotations

from agentrt.runtime.core.messages import PinNote
from agentrt.runtime.core.retention.apply import Applied
from agentrt.toolmgr.durations import DurationModel


def pin_note(applied: Applied, tool: str, now: float, durations: DurationModel,
             decided_at: float | None = None) -> PinNote:
    """The note for `applied`, decided at model time `now` (`decided_at`: the same
    instant on the engine's clock; default `now`). `blocks` counts the blocks pinned
    (pin, soft) or sent to host memory (offload); `status` is the pin's hold status,
    "offloaded", or "" for a drop. Reads `durations` only."""
    decision = applied.decision
    source = durations.source(tool)
    blocks, status = 0, ""
    if applied.pin is not None:
        blocks, status = applied.pin.blocks, applied.pin.status
    elif applied.offload is not None:
        blocks, status = applied.offload.stored, "offloaded"
    return PinNote(
        tool=tool, action=decision.action,
        ttl_s=decision.until - now if decision.holds else 0.0, reason=decision.reason,
        duration_source=source, duration_samples=durations.count(tool),
        predicted_s=durations.quantile(tool, 0.5) if source != "none" else 0.0,
        blocks=blocks, status=status, decided_at=now if decided_at is None else decided_at)
