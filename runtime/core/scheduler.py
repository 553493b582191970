"""The program-level scheduler: pure, synchronous, clock-injected.

It owns one wait queue per worker (ordered by the queue policy), a router, and the
bookkeeping of which calls are queued or in flight where. Drivers (the Ray scheduler
actor, the discrete-event simulator) call it in the same pattern:

    submit(req, now)          a runner's LLM call arrives: route it, queue it
    take(worker, now)         the worker can accept work: which requests to send it
    on_stats(worker, stats)   after every engine step
    on_event(event, now)      RequestDone / Preempted / ... from an engine

With `record=True` every dispatch is appended to `dispatch_log` as a
`Dispatch(worker_id, request_id)`, in dispatch order: the decisions themselves, which
tests compare across drivers and runs.

`take` sends a worker at most `dispatch_window` calls beyond what it is running, so
that the order of everything else is still decided here, program-wide, and a worker
that frees up does not find a long FCFS backlog of its own.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from runtime.core.messages import EngineEvent, EngineStats, LLMRequest, RequestDone
from runtime.core.queues import WaitQueue, make_queue
from runtime.core.router import ClusterView, WorkerLoad, make_router


@dataclass(slots=True)
class _Placed:
    request: LLMRequest
    worker_id: str
    inflight: bool = False


class Dispatch(NamedTuple):
    """One scheduling decision: `request_id` was sent to `worker_id`."""

    worker_id: str
    request_id: str


@dataclass(slots=True)
class SchedulerCounters:
    submitted: int = 0
    dispatched: int = 0
    completed: int = 0
    rerouted: int = 0


class Scheduler:
    def __init__(self, queue: str = "program_fcfs", router: str = "sticky",
                 dispatch_window: int = 8, record: bool = False) -> None:
        if dispatch_window < 1:
            raise ValueError(f"dispatch_window must be >= 1, got {dispatch_window}")
        make_queue(queue)  # fail early on an unknown name
        self.queue_policy = queue
        self.router = make_router(router)
        self.dispatch_window = dispatch_window
        self.view = ClusterView()
        self._queues: dict[str, WaitQueue] = {}
        self._placed: dict[str, _Placed] = {}
        self.counters = SchedulerCounters()
        self.record = record
        self.dispatch_log: list[Dispatch] = []  # filled only when `record` is on

    # -- workers -------------------------------------------------------------------
    def add_worker(self, worker_id: str) -> None:
        if worker_id in self.view.workers:
            raise ValueError(f"worker {worker_id!r} is already registered")
        self.view.workers[worker_id] = WorkerLoad(worker_id)
        self._queues[worker_id] = make_queue(self.queue_policy)

    def remove_worker(self, worker_id: str, now: float) -> list[LLMRequest]:
        """Take a worker out. Its queued and in-flight calls are routed again (in-flight
        ones restart from scratch elsewhere; their engine is gone). Sessions homed there
        lose their home. Returns the re-routed requests."""
        if worker_id not in self.view.workers:
            raise KeyError(f"unknown worker {worker_id!r}")
        del self.view.workers[worker_id]
        del self._queues[worker_id]
        homes = self.view.session_home
        for session_id in [s for s, w in homes.items() if w == worker_id]:
            del homes[session_id]
        moved = [p.request for p in self._placed.values() if p.worker_id == worker_id]
        for request in moved:
            del self._placed[request.request_id]
            self._enqueue(request)
            self.counters.rerouted += 1
        return moved

    @property
    def worker_ids(self) -> list[str]:
        return list(self.view.workers)

    # -- requests ------------------------------------------------------------------
    def submit(self, request: LLMRequest, now: float) -> str:
        """Route and queue a call; returns the worker it is queued for."""
        if request.request_id in self._placed:
            raise ValueError(f"request {request.request_id!r} was already submitted")
        request.arrival = now
        self.counters.submitted += 1
        return self._enqueue(request)

    def take(self, worker_id: str, now: float) -> list[LLMRequest]:
        """The requests to send to `worker_id` now, in policy order."""
        load = self.view.workers[worker_id]
        queue = self._queues[worker_id]
        out: list[LLMRequest] = []
        while queue and load.engine_waiting < self.dispatch_window:
            request = queue.pop()
            placed = self._placed[request.request_id]
            placed.inflight = True
            load.queued -= 1
            load.inflight += 1
            out.append(request)
        self.counters.dispatched += len(out)
        if self.record:
            self.dispatch_log.extend(Dispatch(worker_id, r.request_id) for r in out)
        return out

    def has_queued(self, worker_id: str) -> bool:
        return bool(self._queues.get(worker_id))

    def on_stats(self, worker_id: str, stats: EngineStats) -> None:
        load = self.view.workers.get(worker_id)
        if load is not None:
            load.stats = stats

    def on_event(self, event: EngineEvent, now: float) -> None:
        if isinstance(event, RequestDone):
            self._finish(event)

    def abort(self, request_id: str) -> str | None:
        """Forget a call. Returns the worker it was in flight on (the driver must abort
        it there), or None if it was only queued or unknown."""
        placed = self._placed.pop(request_id, None)
        if placed is None:
            return None
        load = self.view.workers.get(placed.worker_id)
        if placed.inflight:
            if load is not None:
                load.inflight -= 1
            return placed.worker_id
        self._queues[placed.worker_id].remove(request_id)
        if load is not None:
            load.queued -= 1
        return None

    def forget_session(self, session_id: str) -> str | None:
        """The session will not call again; returns the worker that held its cache."""
        return self.view.session_home.pop(session_id, None)

    def home_of(self, session_id: str) -> str | None:
        return self.view.session_home.get(session_id)

    @property
    def num_queued(self) -> int:
        return sum(len(q) for q in self._queues.values())

    @property
    def num_inflight(self) -> int:
        return sum(w.inflight for w in self.view.workers.values())

    # -- internals -----------------------------------------------------------------
    def _enqueue(self, request: LLMRequest) -> str:
        worker_id = self.router.route(request, self.view)
        self._queues[worker_id].push(request)
        self.view.workers[worker_id].queued += 1
        self._placed[request.request_id] = _Placed(request, worker_id)
        self.view.session_home[request.session_id] = worker_id
        return worker_id

    def _finish(self, done: RequestDone) -> None:
        placed = self._placed.pop(done.request_id, None)
        if placed is None or placed.worker_id != done.worker_id:
            # Aborted, or re-routed after its worker left: a stale completion.
            if placed is not None:
                self._placed[done.request_id] = placed
            return
        load = self.view.workers[done.worker_id]
        load.inflight -= 1
        self.counters.completed += 1
