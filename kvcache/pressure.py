"""What to give up when the KV cache is full: a pin, or a running request.

Read-only helpers for the engine's scheduler (check here, act there: `PinSet.unpin`
or the engine's own preemption). Two rules:

    "continuum"   with at most one request running, release the pin with the latest
                  expiry; otherwise preempt the running request of the most recently
                  arrived program (never a last step if avoidable). Public Continuum
                  code; with nothing running it releases pins first as well.
    "pins_first"  release pins before preempting any running work, the weakest first
                  (lowest weight x value, see `PinSet.weakest`); then preempt as above.

Ties are broken deterministically: later admission first among requests of one
program; the greatest request id last of all.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from agentrt.kvcache.pins import PinSet

PressureRule = Literal["continuum", "pins_first"]
PRESSURE_RULES: tuple[str, ...] = ("continuum", "pins_first")


@dataclass(frozen=True, slots=True)
class RunningRequest:
    """A request holding KV on the engine, as the pressure rules see it."""

    request_id: str
    program_arrival: float
    admit_order: int  # larger: admitted later
    last_step: bool = False  # the program's last step (preempting it delays the end)


@dataclass(frozen=True, slots=True)
class PressureAction:
    """`kind`: "release_pin" (target: a session id), "preempt" (target: a request id)
    or "none" (nothing to give up); `reason` says which rule chose it."""

    kind: Literal["release_pin", "preempt", "none"]
    target: str | None
    reason: str


def preemption_victim(running: Sequence[RunningRequest]) -> RunningRequest | None:
    """The running request of the most recently arrived program, preferring one that
    is not a last step (then: admitted latest, then greatest id); None if none runs."""
    if not running:
        return None
    return max(running, key=lambda r: (not r.last_step, r.program_arrival, r.admit_order,
                                       r.request_id))


def pressure_action(
    pins: PinSet, running: Sequence[RunningRequest], now: float,
    rule: PressureRule = "continuum",
) -> PressureAction:
    """What to give up next to free KV blocks under `rule` (see the module doc).
    Read-only; raises ValueError on an unknown rule."""
    if rule not in PRESSURE_RULES:
        raise ValueError(f"unknown pressure rule {rule!r}; valid: {', '.join(PRESSURE_RULES)}")
    if rule == "pins_first" or len(running) <= 1:
        session = pins.weakest(now) if rule == "pins_first" else pins.latest()
        if session is not None:
            pick = "weakest pin" if rule == "pins_first" else "latest-expiring pin"
            return PressureAction("release_pin", session, f"{rule}: {pick}")
    victim = preemption_victim(running)
    if victim is None:
        return PressureAction("none", None, f"{rule}: no pin and nothing running")
    return PressureAction("preempt", victim.request_id,
                          f"{rule}: most recently arrived program")
