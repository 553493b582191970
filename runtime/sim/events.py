"""The simulator's clock: a heap of timestamped events.

Ties are broken by insertion order, so two runs that push the same events in the same
order pop them in the same order (determinism by construction).
"""
from __future__ import annotations

import heapq
import itertools
from typing import Any

# Event kinds (events of equal time pop in push order).
ARRIVE = 0
STEP_END = 1
TOOL_DONE = 2
SAMPLE = 3
TIMER = 4  # the cluster control asked to be woken (prefetches, admission ticks)
WORKER_CHANGE = 5  # a worker added or removed mid-run (SimConfig.worker_changes)
REFUSED = 6  # an engine refused a call it can never serve: its caller is told


class EventQueue:
    def __init__(self) -> None:
        self._heap: list[tuple[float, int, int, Any]] = []
        self._seq = itertools.count()
        self._cancelled: set[int] = set()

    def push(self, time: float, kind: int, payload: Any) -> int:
        """Schedule an event; returns a handle for `cancel`."""
        handle = next(self._seq)
        heapq.heappush(self._heap, (time, handle, kind, payload))
        return handle

    def cancel(self, handle: int) -> None:
        self._cancelled.add(handle)

    def pop(self) -> tuple[float, int, Any]:
        """The earliest live event as (time, kind, payload). Raises IndexError if empty."""
        while True:
            time, handle, kind, payload = heapq.heappop(self._heap)
            if handle in self._cancelled:
                self._cancelled.discard(handle)
                continue
            return time, kind, payload

    def peek_time(self) -> float:
        """Time of the earliest live event (inf when empty)."""
        heap = self._heap
        while heap and heap[0][1] in self._cancelled:
            self._cancelled.discard(heapq.heappop(heap)[1])
        return heap[0][0] if heap else float("inf")

    def __len__(self) -> int:
        return len(self._heap) - len(self._cancelled)

    def __bool__(self) -> bool:
        return len(self) > 0
