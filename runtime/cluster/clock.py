"""The run clock every actor of a Ray run shares.

The core and the engines think in run seconds: model (GPU) seconds since the run began.
Simulated engines run `time_scale` wall seconds per run second; real engines run on the
wall clock (scale 1). Each actor reads the same wall clock (one machine, or NTP across
nodes, well under the milliseconds the runtime cares about):

    wall   origin ──────── t ──────────▶        run = (wall - origin) / scale
    run    0 ──────────── (t - origin)/scale ─▶ wall = origin + run x scale
"""
from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RunClock:
    origin: float
    scale: float = 1.0

    def __post_init__(self) -> None:
        if not self.scale > 0:
            raise ValueError(f"time scale must be > 0 wall seconds per run second, got "
                             f"{self.scale!r}")

    def now(self) -> float:
        """Run seconds now."""
        return (time.time() - self.origin) / self.scale

    def to_run(self, wall: float) -> float:
        return (wall - self.origin) / self.scale

    def to_wall(self, run: float) -> float:
        return self.origin + run * self.scale
