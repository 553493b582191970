"""Routing: which worker a request goes to.

The scheduler keeps a `ClusterView` (its own bookkeeping of each worker's queue and
in-flight calls, plus the last `EngineStats` the worker reported) and asks a router
policy for a worker id. Routers are strategy objects picked by name; they never
mutate the view.

    sticky:           the session's home worker (where its KV lives) while it is alive,
                      else the least loaded worker
    least_loaded:     fewest queued + in-flight calls, ties by worker order
    round_robin:      next worker in order (what a plain load balancer does)
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Callable

from runtime.core.messages import EngineStats, LLMRequest


@dataclass(slots=True)
class WorkerLoad:
    """The scheduler's view of one worker."""

    worker_id: str
    queued: int = 0  # waiting in the scheduler's queue for this worker
    inflight: int = 0  # sent to the engine, not finished
    stats: EngineStats | None = None

    @property
    def load(self) -> int:
        return self.queued + self.inflight

    @property
    def engine_waiting(self) -> int:
        """Calls sent but not yet running, as far as the last stats tell."""
        running = self.stats.running if self.stats is not None else 0
        return max(0, self.inflight - running)


@dataclass(slots=True)
class ClusterView:
    """Workers in the order they joined, and where each session's cache lives."""

    workers: dict[str, WorkerLoad] = field(default_factory=dict)
    session_home: dict[str, str] = field(default_factory=dict)

    def least_loaded(self) -> str:
        if not self.workers:
            raise RuntimeError("no workers: add a worker before routing requests")
        return min(self.workers.values(), key=lambda w: w.load).worker_id


class Router(ABC):
    """Picks a worker for a request. `route` must return an id in `view.workers`
    (which is never empty when it is called) and must not mutate the view."""

    name = "base"

    @abstractmethod
    def route(self, request: LLMRequest, view: ClusterView) -> str:
        """The worker id the request should run on."""


class StickyAffinity(Router):
    name = "sticky"

    def route(self, request: LLMRequest, view: ClusterView) -> str:
        home = view.session_home.get(request.session_id)
        if home is not None and home in view.workers:
            return home
        return view.least_loaded()


class LeastLoaded(Router):
    name = "least_loaded"

    def route(self, request: LLMRequest, view: ClusterView) -> str:
        return view.least_loaded()


class RoundRobin(Router):
    name = "round_robin"

    def __init__(self) -> None:
        self._next = 0

    def route(self, request: LLMRequest, view: ClusterView) -> str:
        ids = list(view.workers)
        worker_id = ids[self._next % len(ids)]
        self._next += 1
        return worker_id


ROUTERS: dict[str, Callable[[], Router]] = {
    StickyAffinity.name: StickyAffinity,
    LeastLoaded.name: LeastLoaded,
    RoundRobin.name: RoundRobin,
}


def make_router(name: str) -> Router:
    """A fresh router of the named policy. Raises ValueError listing the valid names."""
    try:
        return ROUTERS[name]()
    except KeyError:
        valid = ", ".join(sorted(ROUTERS))
        raise ValueError(f"unknown router {name!r}; valid: {valid}") from None
