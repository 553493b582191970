"""Worker pools: one per served model, each with its own router and cost model.

A call runs only on a worker that serves its model. The scheduler keeps one global
`ClusterView` (every worker, in join order: what placements and counters update) and,
per model, a pool view over the same `WorkerLoad` objects and the same session and
program homes, with the pool's own router (so a router's structures, such as
DualMap's hash rings, cover only workers that can serve the call) and the model's
cost model (prefill and KV-move times differ between models):

    global view    w0 (8b)   w1 (8b)   w2 (70b)   w3 (70b)
    pool "8b"      w0        w1                                router A, cost 8b
    pool "70b"                         w2         w3          router B, cost 70b

A call's model is mapped through `aliases` first (stand-ins: a candidate name served
by another model, `RuntimeConfig.stand_ins`). With a single pool every call goes to
it, whatever its model says (the simulator's counted workloads name no model).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

from agentrt.runtime.core.messages import LLMRequest
from agentrt.runtime.core.routing.base import ClusterView, CostModel, Router, WorkerLoad


class NoWorkerError(RuntimeError):
    """Every worker that served a call's model has left the cluster."""


@dataclass(slots=True)
class Pool:
    model: str
    view: ClusterView
    router: Router


class Pools:
    def __init__(self, view: ClusterView, make_router: Callable[[], Router],
                 aliases: Mapping[str, str] | None = None) -> None:
        self.view = view
        self._make_router = make_router
        self.aliases: dict[str, str] = dict(aliases or {})
        self.by_model: dict[str, Pool] = {}
        self.of_worker: dict[str, Pool] = {}
        self.gone: set[str] = set()  # models whose every worker left

    def add(self, load: WorkerLoad, model: str, cost: CostModel | None) -> Pool:
        pool = self.by_model.get(model)
        if pool is None:
            shared = self.view
            pool_view = ClusterView(session_home=shared.session_home,
                                    session_tokens=shared.session_tokens,
                                    program_home=shared.program_home,
                                    cost=cost if cost is not None else shared.cost)
            pool = self.by_model[model] = Pool(model, pool_view, self._make_router())
            self.gone.discard(model)
        pool.view.workers[load.worker_id] = load
        pool.router.add_worker(load.worker_id)
        self.of_worker[load.worker_id] = pool
        return pool

    def remove(self, worker_id: str) -> None:
        pool = self.of_worker.pop(worker_id)
        del pool.view.workers[worker_id]
        pool.router.remove_worker(worker_id)
        if not pool.view.workers:
            del self.by_model[pool.model]
            self.gone.add(pool.model)

    def for_request(self, request: LLMRequest) -> Pool:
        """The pool that serves the call's model. Raises NoWorkerError when every worker
        of that pool has left (or the only pool has), ValueError naming the served
        models when none ever served it."""
        model = self.aliases.get(request.model, request.model)
        pool = self.by_model.get(model)
        if pool is not None:
            return pool
        if self.gone and (model in self.gone or not self.by_model):
            lost = model if model in self.gone else ", ".join(sorted(self.gone))
            raise NoWorkerError(
                f"no worker serves model {lost!r} any more: every worker of its pool left "
                f"the cluster (call {request.request_id!r}); add workers for it, or run "
                f"the program again once they are back")
        if len(self.by_model) == 1 and not self.gone:
            return next(iter(self.by_model.values()))
        if not self.by_model:
            raise RuntimeError("no workers: add a worker before routing requests")
        raise ValueError(f"no worker serves model {request.model!r} (call "
                         f"{request.request_id!r}); served: {sorted(self.by_model)}")

    def route(self, request: LLMRequest) -> str:
        pool = self.for_request(request)
        return pool.router.route(request, pool.view)

    def forget_session(self, session_id: str) -> None:
        for pool in self.by_model.values():
            pool.router.forget_session(session_id)

    @property
    def single_router(self) -> Router:
        """The router when there is one pool (what single-model tests read)."""
        if len(self.by_model) != 1:
            raise AttributeError(f"{len(self.by_model)} pools; read pools.by_model[m].router")
        return next(iter(self.by_model.values())).router

    def describe(self) -> dict[str, Any]:
        return {m: list(p.view.workers) for m, p in self.by_model.items()}
