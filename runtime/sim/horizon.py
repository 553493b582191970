"""How far an engine may fuse decode iterations without changing any result.

An engine's run of pure-decode iterations is exact as long as nothing is submitted to
it before the run's last iteration starts. Submissions only follow three kinds of
event: a program arrival, a tool completion (both sit in the event queue with known
times) and a finished LLM call on some other worker (its step may end, starting
successor steps, or its program may end, letting the next one in). So the horizon of
worker w is

    min( earliest pending arrival / tool completion,
         min over other workers v of  bound(v) )

where bound(v) is a lower bound on the time of v's next RequestDone: the end of v's
pending step if that step finishes a call, else that end plus (iterations v needs
before its next finish) x (its shortest possible iteration). A worker's bound only
moves when something is submitted to it, which by construction happens no earlier
than the horizons computed from the old bound.
"""
from __future__ import annotations

import heapq
import math


class Horizons:
    def __init__(self) -> None:
        self._external: list[float] = []  # times of pending ARRIVE and TOOL_DONE events
        self._bounds: dict[str, float] = {}

    def external_pushed(self, time: float) -> None:
        heapq.heappush(self._external, time)

    def external_popped(self) -> None:
        """An ARRIVE or TOOL_DONE event was handled (events pop in time order)."""
        heapq.heappop(self._external)

    def set_bound(self, worker_id: str, time: float) -> None:
        self._bounds[worker_id] = time

    def forget(self, worker_id: str) -> None:
        self._bounds.pop(worker_id, None)

    def horizon(self, worker_id: str) -> float:
        """The time before which nothing can be submitted to `worker_id`."""
        limit = self._external[0] if self._external else math.inf
        for other, bound in self._bounds.items():
            if bound < limit and other != worker_id:
                limit = bound
        return limit
