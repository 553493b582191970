"""Where every call is: queued for a worker here, or in flight on it.

The mechanism under the scheduler: every change of a call's place goes through one
method here, which keeps the counts the routers read (`WorkerLoad.queued/inflight`),
the session and program homes, and the per-program index of queued calls in step.

    place ──▶ queued ──dispatch──▶ in flight ──finish──▶ (gone)
                ▲  │ move (steal)       │
                │  └─▶ queued elsewhere │
                └────── recall ◀────────┘
    forget: gone from anywhere (abort); drop_worker: a worker's calls, for re-routing
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from agentrt.runtime.core.messages import LLMRequest, RequestDone
from agentrt.runtime.core.queueing.wait_queue import RequestQueue
from agentrt.runtime.core.routing.base import ClusterView


@dataclass(slots=True)
class Placed:
    request: LLMRequest
    worker_id: str
    inflight: bool = False
    dispatched_at: float = 0.0
    group: tuple[str, ...] | None = None  # request ids of its fork group


class Placements:
    def __init__(self, view: ClusterView) -> None:
        self.view = view
        self.by_id: dict[str, Placed] = {}
        self.queues: dict[str, RequestQueue] = {}
        self.inflight: dict[str, dict[str, Placed]] = {}  # worker -> its calls in flight
        self._queued_of: dict[str, set[str]] = {}  # program -> its queued call ids

    def add_worker(self, worker_id: str, queue: RequestQueue) -> None:
        self.queues[worker_id] = queue
        self.inflight[worker_id] = {}

    def drop_worker(self, worker_id: str) -> list[Placed]:
        """Forget a worker's queue; its calls leave the table (in placement order) for
        the caller to place again. Sessions homed there lose their home."""
        del self.queues[worker_id], self.inflight[worker_id]
        homes = self.view.session_home
        for session_id in [s for s, w in homes.items() if w == worker_id]:
            del homes[session_id]
            self.view.session_tokens.pop(session_id, None)
        moved = [p for p in self.by_id.values() if p.worker_id == worker_id]
        for p in moved:
            del self.by_id[p.request.request_id]
            if not p.inflight:
                self._unindex(p.request)
        return moved

    def place(self, request: LLMRequest, worker_id: str, now: float,
              group: tuple[str, ...] | None = None) -> Placed:
        """Queue a new call for `worker_id`, which becomes its session's home."""
        placed = self.by_id[request.request_id] = Placed(request, worker_id, group=group)
        self._home(request, worker_id)
        self.enqueue(placed, now)
        return placed

    def enqueue(self, placed: Placed, now: float) -> None:
        """Push a call that is not in flight into its worker's queue."""
        request = placed.request
        self.queues[placed.worker_id].push(request, now)
        self.view.workers[placed.worker_id].queued += 1
        queued = self._queued_of.get(request.program_id)
        if queued is None:
            self._queued_of[request.program_id] = {request.request_id}
        else:
            queued.add(request.request_id)

    def dispatch(self, request: LLMRequest, now: float) -> Placed:
        """A call its worker's queue just gave up goes in flight there."""
        placed = self.by_id[request.request_id]
        placed.inflight = True
        placed.dispatched_at = now
        load = self.view.workers[placed.worker_id]
        load.queued -= 1
        load.inflight += 1
        self.inflight[placed.worker_id][request.request_id] = placed
        self._unindex(request)
        return placed

    def recall(self, worker_id: str, request_id: str, now: float) -> Placed:
        """An in-flight call goes back to its worker's queue."""
        placed = self.inflight[worker_id].pop(request_id)
        placed.inflight = False
        self.view.workers[worker_id].inflight -= 1
        self.enqueue(placed, now)
        return placed

    def move(self, placed: Placed, worker_id: str, now: float, keep_kv: bool) -> None:
        """A queued call goes to another worker's queue, and its session with it
        (with its KV when `keep_kv`: the driver transfers it)."""
        self._unqueue(placed)
        placed.worker_id = worker_id
        self._home(placed.request, worker_id, keep_kv)
        self.enqueue(placed, now)

    def finish(self, done: RequestDone) -> Placed | None:
        """The call's completion, or None when it is stale (aborted, recalled, or
        re-routed after its worker left)."""
        placed = self.by_id.get(done.request_id)
        if placed is None or placed.worker_id != done.worker_id or not placed.inflight:
            return None
        del self.by_id[done.request_id], self.inflight[done.worker_id][done.request_id]
        self.view.workers[done.worker_id].inflight -= 1
        return placed

    def forget(self, request_id: str) -> Placed | None:
        """Take a call out wherever it is; None if unknown."""
        placed = self.by_id.pop(request_id, None)
        if placed is None:
            return None
        if placed.inflight:
            self.inflight[placed.worker_id].pop(request_id, None)
            self.view.workers[placed.worker_id].inflight -= 1
        else:
            self._unqueue(placed)
        return placed

    def queued_calls(self, program_id: str) -> Iterable[Placed]:
        """The program's calls waiting in any queue (a copy)."""
        return [self.by_id[rid] for rid in self._queued_of.get(program_id, ())]

    def _unqueue(self, placed: Placed) -> None:
        self.queues[placed.worker_id].remove(placed.request.request_id)
        self.view.workers[placed.worker_id].queued -= 1
        self._unindex(placed.request)

    def _unindex(self, request: LLMRequest) -> None:
        queued = self._queued_of.get(request.program_id)
        if queued is not None:
            queued.discard(request.request_id)
            if not queued:
                del self._queued_of[request.program_id]

    def _home(self, request: LLMRequest, worker_id: str, keep_kv: bool = False) -> None:
        view = self.view
        if view.session_home.get(request.session_id) != worker_id:
            if not keep_kv:
                view.session_tokens.pop(request.session_id, None)  # its KV is elsewhere
            view.session_home[request.session_id] = worker_id
        view.program_home[request.program_id] = worker_id
