"""Wait queues: which dispatched-but-not-yet-sent request goes to its worker next.

A queue policy is a priority queue whose order is the policy. Every policy offers
`push`, `pop`, `peek`, `remove` and `len`; `key(request)` is the sort key (lower first),
which is also stamped on the request as `request.priority` so that the engine's own
waiting list keeps the same order.

    push(r) ─▶ heap of (key(r), seq, request_id) ─▶ pop() ─▶ worker
    remove(id) marks the entry dead; pop/peek skip dead entries (lazy deletion).

Later issues add PLAS, ATLAS and fair share; they only need a new `key`.
"""
from __future__ import annotations

import heapq
import itertools
from abc import ABC, abstractmethod
from typing import Callable, Iterator

from runtime.core.messages import LLMRequest


class WaitQueue(ABC):
    """A priority queue of requests ordered by `key`; ties broken by push order."""

    name = "base"

    def __init__(self) -> None:
        self._heap: list[tuple[tuple, int, str]] = []
        self._live: dict[str, LLMRequest] = {}
        self._seq = itertools.count()

    @abstractmethod
    def key(self, request: LLMRequest) -> tuple:
        """The sort key of a request under this policy; lower runs first."""

    def push(self, request: LLMRequest) -> None:
        """Add a request. Raises ValueError if a request with that id is queued."""
        if request.request_id in self._live:
            raise ValueError(f"request {request.request_id!r} is already queued")
        request.priority = self.key(request)
        self._live[request.request_id] = request
        heapq.heappush(self._heap, (request.priority, next(self._seq), request.request_id))

    def peek(self) -> LLMRequest | None:
        """The request `pop` would return, without removing it."""
        self._drop_dead()
        return self._live[self._heap[0][2]] if self._heap else None

    def pop(self) -> LLMRequest | None:
        """Remove and return the first request, or None when empty."""
        self._drop_dead()
        if not self._heap:
            return None
        _, _, request_id = heapq.heappop(self._heap)
        return self._live.pop(request_id)

    def remove(self, request_id: str) -> LLMRequest | None:
        """Take a request out wherever it is; None if it is not queued."""
        return self._live.pop(request_id, None)

    def __len__(self) -> int:
        return len(self._live)

    def __contains__(self, request_id: str) -> bool:
        return request_id in self._live

    def __iter__(self) -> Iterator[LLMRequest]:
        """Queued requests in priority order (a sorted copy; not for hot paths)."""
        live = [e for e in sorted(self._heap) if e[2] in self._live]
        return iter([self._live[e[2]] for e in live])

    def _drop_dead(self) -> None:
        heap, live = self._heap, self._live
        while heap and heap[0][2] not in live:
            heapq.heappop(heap)


class RequestFCFS(WaitQueue):
    """Baseline (what a plain serving engine does): by the request's own arrival."""

    name = "request_fcfs"

    def key(self, request: LLMRequest) -> tuple:
        return (request.arrival,)


class ProgramFCFS(WaitQueue):
    """Continuum's program-level FCFS: a later turn of an older program goes before the
    first turn of a newer one, so programs that started first finish first."""

    name = "program_fcfs"

    def key(self, request: LLMRequest) -> tuple:
        return (request.program_arrival, request.arrival)


QUEUE_POLICIES: dict[str, Callable[[], WaitQueue]] = {
    RequestFCFS.name: RequestFCFS,
    ProgramFCFS.name: ProgramFCFS,
}


def make_queue(name: str) -> WaitQueue:
    """A fresh queue of the named policy. Raises ValueError listing the valid names."""
    try:
        return QUEUE_POLICIES[name]()
    except KeyError:
        valid = ", ".join(sorted(QUEUE_POLICIES))
        raise ValueError(f"unknown queue policy {name!r}; valid: {valid}") from None
