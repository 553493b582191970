"""Carry out a `PinDecision` on an engine's pins and KV: the one place decisions turn
into mechanism calls, so every driver does it the same way.

Call it after the request's sequence is freed (its blocks are free cached), with the
session's prompt chain after the turn (prompt + output)."""
from __future__ import annotations

from dataclasses import dataclass

from agentrt.kvcache.pins import PinResult, PinSet
from agentrt.kvcache.prefix import TokenChain
from agentrt.kvcache.results import ChainOffload
from agentrt.runtime.core.retention.decision import PinDecision


@dataclass(frozen=True, slots=True)
class Applied:
    """The decision and what the mechanism did with it (`pin` for pin/soft, `offload`
    for offload; both None for drop)."""

    decision: PinDecision
    pin: PinResult | None = None
    offload: ChainOffload | None = None


def apply_decision(
    decision: PinDecision, pins: PinSet, session_id: str, prefix: TokenChain, now: float,
    program_id: str | None = None,
) -> Applied:
    """pin/soft: `PinSet.pin` (within its cap; see `Applied.pin.status`); offload: drop
    any pin, then `KVCacheManager.offload` (to host, or dropped without a tier); drop:
    drop any pin."""
    if decision.holds:
        result = pins.pin(session_id, prefix, decision.until, now, program_id=program_id,
                          weight=decision.weight, value=decision.value,
                          exclusive=decision.exclusive)
        return Applied(decision, pin=result)
    pins.unpin(session_id, now)
    if decision.action == "offload":
        return Applied(decision, offload=pins.kv.offload(prefix, now))
    return Applied(decision)
