"""Policies decide on the model clock; an engine may run on another one.

TTL policies think in model seconds: tool durations, rebuild times, `now`. The
simulator's engines run on that clock. The Ray runtime's engines run on the wall
clock, `time_scale` wall seconds per model second, so a decision made in model time
is carried over before it reaches the engine's pins:

    model clock     0 ──── now_m ──────── until_m
                    │        │               │     engine = origin + model x scale
    engine clock  origin ── now_e ──────── until_e

A soft pin's weight is read by the engine at engine times, so it is wrapped to read
the policy's weight at the matching model time.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from agentrt.kvcache.pins import Weight
from agentrt.runtime.core.retention.decision import PinDecision


@dataclass(frozen=True, slots=True)
class ModelClock:
    """An engine clock that runs `scale` seconds per model second and reads `origin`
    at model time 0. The identity by default."""

    origin: float = 0.0
    scale: float = 1.0

    def __post_init__(self) -> None:
        if not self.scale > 0:
            raise ValueError(f"scale must be > 0 engine seconds per model second, "
                             f"got {self.scale!r}")

    def to_model(self, engine_time: float) -> float:
        return (engine_time - self.origin) / self.scale

    def to_engine(self, model_time: float) -> float:
        return self.origin + model_time * self.scale

    def on_engine(self, decision: PinDecision) -> PinDecision:
        """`decision` (made on this model clock) with its deadline, weight and prefetch
        time on the engine's clock; everything else unchanged."""
        weight = None if decision.weight is None else EngineWeight(decision.weight, self)
        prefetch = (None if decision.prefetch_at is None
                    else self.to_engine(decision.prefetch_at))
        return dataclasses.replace(decision, until=self.to_engine(decision.until),
                                   weight=weight, prefetch_at=prefetch)


@dataclass(frozen=True, slots=True)
class EngineWeight:
    """A model-clock weight read at engine times."""

    weight: Weight
    clock: ModelClock

    def __call__(self, engine_time: float) -> float:
        return self.weight(self.clock.to_model(engine_time))
