"""The wait queue mechanism: a priority queue of requests whose keys may change.

A queue policy supplies `key(request, now)` (lower runs first) and, for keys that
change with time alone, `expires(request, now)`: the time at which the key must be
computed again (a starving call's promotion). The queue stamps every key it files on
the request as `request.priority`, so that the engine's own waiting list keeps the
same order.

    push(r) ──▶ heap of (key, order, request_id, version) ──▶ pop(now) ──▶ worker
                  ▲ rekey(id, now): file a new entry, version + 1; the old one is dead
    timers: heap of (due, request_id, version) ── pop/peek(now) re-key those due <= now

`order` is the push order and breaks ties, also after a re-key. Dead entries (removed
or re-keyed) are skipped lazily and compacted when they outnumber the live ones.
"""
from __future__ import annotations

import heapq
import itertools
import math
from typing import Callable, Iterator, Protocol

from agentrt.runtime.core.messages import LLMRequest

KeyFn = Callable[[LLMRequest, float], tuple]
ExpiresFn = Callable[[LLMRequest, float], float]


class RequestQueue(Protocol):
    """What the scheduler needs of one worker's queue.

    `now` is the caller's clock; a queue given `now=None` uses the request's arrival to
    key it and fires no timers. `pop`/`peek` return None on an empty queue; `remove`
    and `rekey` return None/False for an id that is not queued. Iteration yields a
    sorted copy (not for hot paths)."""

    def push(self, request: LLMRequest, now: float | None = None) -> None: ...
    def pop(self, now: float | None = None) -> LLMRequest | None: ...
    def peek(self, now: float | None = None) -> LLMRequest | None: ...
    def remove(self, request_id: str) -> LLMRequest | None: ...
    def rekey(self, request_id: str, now: float) -> bool: ...
    def __len__(self) -> int: ...
    def __contains__(self, request_id: str) -> bool: ...
    def __iter__(self) -> Iterator[LLMRequest]: ...


class WaitQueue:
    """A priority queue of requests ordered by `key`; ties broken by push order."""

    __slots__ = ("_key", "_expires", "_heap", "_live", "_timers", "_order")

    def __init__(self, key: KeyFn, expires: ExpiresFn | None = None) -> None:
        self._key = key
        self._expires = expires
        self._heap: list[tuple[tuple, int, str, int]] = []
        # request id -> [request, push order, version of its live heap entry]
        self._live: dict[str, list] = {}
        self._timers: list[tuple[float, str, int]] = []
        self._order = itertools.count()

    def push(self, request: LLMRequest, now: float | None = None) -> None:
        """Add a request. Raises ValueError if a request with that id is queued."""
        if request.request_id in self._live:
            raise ValueError(f"request {request.request_id!r} is already queued")
        entry = [request, next(self._order), -1]
        self._live[request.request_id] = entry
        self._file(entry, request.arrival if now is None else now)

    def rekey(self, request_id: str, now: float) -> bool:
        """Compute a queued request's key again (its policy state changed). False if
        it is not queued."""
        entry = self._live.get(request_id)
        if entry is None:
            return False
        self._file(entry, now)
        if len(self._heap) > 2 * len(self._live) + 64:
            self._compact()
        return True

    def peek(self, now: float | None = None) -> LLMRequest | None:
        """The request `pop` would return, without removing it."""
        if now is not None and self._timers:
            self._fire(now)
        self._drop_dead()
        return self._live[self._heap[0][2]][0] if self._heap else None

    def pop(self, now: float | None = None) -> LLMRequest | None:
        """Remove and return the first request, or None when empty."""
        if now is not None and self._timers:
            self._fire(now)
        self._drop_dead()
        if not self._heap:
            return None
        request_id = heapq.heappop(self._heap)[2]
        return self._live.pop(request_id)[0]

    def remove(self, request_id: str) -> LLMRequest | None:
        """Take a request out wherever it is; None if it is not queued."""
        entry = self._live.pop(request_id, None)
        return None if entry is None else entry[0]

    def __len__(self) -> int:
        return len(self._live)

    def __contains__(self, request_id: str) -> bool:
        return request_id in self._live

    def __iter__(self) -> Iterator[LLMRequest]:
        """Queued requests in priority order (a sorted copy; not for hot paths)."""
        entries = sorted(self._live.values(), key=lambda e: (e[0].priority, e[1]))
        return iter([e[0] for e in entries])

    # -- internals -------------------------------------------------------------------
    def _file(self, entry: list, now: float) -> None:
        request = entry[0]
        entry[2] += 1
        request.priority = key = self._key(request, now)
        heapq.heappush(self._heap, (key, entry[1], request.request_id, entry[2]))
        if self._expires is not None:
            due = self._expires(request, now)
            if due < math.inf:
                heapq.heappush(self._timers, (due, request.request_id, entry[2]))

    def _fire(self, now: float) -> None:
        timers, live = self._timers, self._live
        while timers and timers[0][0] <= now:
            _, request_id, version = heapq.heappop(timers)
            entry = live.get(request_id)
            if entry is not None and entry[2] == version:
                self._file(entry, now)

    def _drop_dead(self) -> None:
        heap, live = self._heap, self._live
        while heap:
            _, _, request_id, version = heap[0]
            entry = live.get(request_id)
            if entry is not None and entry[2] == version:
                return
            heapq.heappop(heap)

    def _compact(self) -> None:
        self._heap = [(e[0].priority, e[1], rid, e[2]) for rid, e in self._live.items()]
        heapq.heapify(self._heap)
