"""Small online estimators the Continuum rule feeds on: eta and Tq.

    eta = -Corr(turns done, turns left) over the tool calls of finished programs,
          clamped to [0, 1]; 1 until there are two distinct points (cold start).
          High eta: programs that have run long have little left, so a pin's payoff
          (avoided queueing) is worth more.
    Tq  = mean queueing delay of the last `window` requests whose cache had been
          evicted (0 before any): what losing a cache costs besides the rebuild.

Both are O(1) per update (running sums, with the oldest program or sample dropped
when the window is full) and deterministic.
"""
from __future__ import annotations

import math
from collections import deque


class EtaTracker:
    """eta over the last `window` finished programs. A program of T LLM calls makes a
    tool call after calls 1..T-1: points (k, T - k)."""

    def __init__(self, window: int = 1000) -> None:
        if window < 1:
            raise ValueError(f"window must be >= 1, got {window}")
        self.window = window
        self._programs: deque[tuple[float, ...]] = deque()
        self._sums = [0.0] * 6  # n, sx, sy, sxx, syy, sxy

    def program_finished(self, turns: int) -> None:
        """A program ended after `turns` LLM calls (fewer than 2 add no point)."""
        points = [(k, turns - k) for k in range(1, turns)]
        if not points:
            return
        sums = (len(points), sum(x for x, _ in points), sum(y for _, y in points),
                sum(x * x for x, _ in points), sum(y * y for _, y in points),
                sum(x * y for x, y in points))
        self._programs.append(sums)
        self._add(sums, 1)
        if len(self._programs) > self.window:
            self._add(self._programs.popleft(), -1)

    def _add(self, sums: tuple[float, ...], sign: int) -> None:
        for i, v in enumerate(sums):
            self._sums[i] += sign * v

    @property
    def value(self) -> float:
        n, sx, sy, sxx, syy, sxy = self._sums
        if n < 2:
            return 1.0
        var_x, var_y = n * sxx - sx * sx, n * syy - sy * sy
        if var_x <= 0 or var_y <= 0:
            return 1.0
        corr = (n * sxy - sx * sy) / math.sqrt(var_x * var_y)
        return min(1.0, max(0.0, -corr))


class QueueDelayTracker:
    """Sliding mean of the last `window` queueing delays recorded."""

    def __init__(self, window: int = 100) -> None:
        if window < 1:
            raise ValueError(f"window must be >= 1, got {window}")
        self._delays: deque[float] = deque(maxlen=window)

    def record(self, delay_s: float) -> None:
        self._delays.append(delay_s)

    @property
    def value(self) -> float:
        return math.fsum(self._delays) / len(self._delays) if self._delays else 0.0
