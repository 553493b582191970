"""Pins of one engine: sessions whose cached prefix is held until a deadline.

The hold on the blocks is the KV manager's (`KVCacheManager.hold`); this table adds
deadlines. A min-heap finds the next one; re-pinning leaves the old heap entry behind,
and entries that no longer match the table are skipped when met.
"""
from __future__ import annotations

import heapq
import math

from kvcache.manager import KVCacheManager
from kvcache.prefix import TokenChain
from runtime.core.messages import EngineEvent, PinExpired


class PinTable:
    def __init__(self, kv: KVCacheManager, worker_id: str) -> None:
        self.kv = kv
        self.worker_id = worker_id
        self._until: dict[str, float] = {}
        self._heap: list[tuple[float, str]] = []

    def pin(self, session_id: str, prefix: TokenChain, until: float, now: float) -> int:
        """Hold the cached blocks of `prefix` until `until`, replacing the session's
        pin. Returns the blocks held; with none, the session has no pin."""
        held = self.kv.hold(session_id, prefix, now)
        if held:
            self._until[session_id] = until
            heapq.heappush(self._heap, (until, session_id))
        else:
            self._until.pop(session_id, None)
        return held

    def unpin(self, session_id: str, now: float) -> None:
        self._until.pop(session_id, None)
        self.kv.unhold(session_id, now)

    def expire(self, now: float) -> list[EngineEvent]:
        """Drop the pins whose deadline is <= `now`, earliest first; one PinExpired (at
        `now`) each, in a new list."""
        heap, until = self._heap, self._until
        out: list[EngineEvent] = []
        while heap and heap[0][0] <= now:
            deadline, session = heapq.heappop(heap)
            if until.get(session) == deadline:
                self.unpin(session, now)
                out.append(PinExpired(session, self.worker_id, now))
        return out

    def drop_latest(self, now: float) -> PinExpired | None:
        """Drop the pin that lasts longest (ties: the greatest session id), if any."""
        if not self._until:
            return None
        session = max(self._until, key=lambda s: (self._until[s], s))
        self.unpin(session, now)
        return PinExpired(session, self.worker_id, now)

    def next_deadline(self) -> float:
        """The earliest deadline in force (inf when none); drops stale heap entries."""
        heap, until = self._heap, self._until
        while heap and until.get(heap[0][1]) != heap[0][0]:
            heapq.heappop(heap)
        return heap[0][0] if heap else math.inf

    def violations(self) -> list[str]:
        return [f"pin of {s} holds nothing" for s in self._until if not self.kv.held_blocks(s)]
