"""The program-level scheduler: pure, synchronous, clock-injected.

It owns one wait queue per worker (ordered by one shared queue policy), a router, and
the bookkeeping of which calls are queued or in flight where. Drivers (the Ray
scheduler actor, the discrete-event simulator) call it in the same pattern:

    submit(req, now)            a runner's LLM call arrives: route it, queue it
    submit_forks(reqs, now)     parallel samples of one step: one worker, sent together
    take(worker, now)           the worker can accept work: which requests to send it
    on_stats(worker, stats)     after every engine step
    on_event(event, now)        RequestDone / Evicted / ... from an engine
    preempt(worker, now)        at a worker's step end, before `take`: calls the policy
                                recalls (plas, atlas, fair_share); abort them there
    thieves(), take_moves()     with stealing on: idle workers to `take` for, and the
                                sessions that left a worker (release them there)
    program_finished(pid, now)  the program is over (also inferred from `last_call`)

With `record=True` every decision is appended to `decisions` (`runtime.core.decisions`:
dispatches, steals, preemptions; the cluster control adds its own), in the order made:
what tests compare across drivers and runs. `dispatch_log` is the dispatches alone.

`take` sends a worker at most `dispatch_window` calls beyond what it is running, so
that the order of everything else is still decided here, program-wide, and a worker
that frees up does not find a long FCFS backlog of its own. With `stealing` on, a
worker short of work steals queued calls inside `take` (see `runtime.core.stealing`):
work reaches a worker only through `take`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, NamedTuple, Sequence

from agentrt.runtime.core import decisions as log
from agentrt.runtime.core.decisions import Decision, Dispatch
from agentrt.runtime.core.messages import EngineEvent, EngineStats, Evicted, LLMRequest, RequestDone
from agentrt.runtime.core.placement import Placements
from agentrt.runtime.core.pools import NoWorkerError, Pools
from agentrt.runtime.core.queueing.policy import InFlight, QueuePolicy, execution_time
from agentrt.runtime.core.queueing.registry import make_queue_policy
from agentrt.runtime.core.routing.registry import (
    ClusterView, CostModel, FlatCost, WorkerLoad, make_router,
)
from agentrt.runtime.core.stealing import SessionMove, StealConfig, WorkStealing

CALL_TIME_EWMA = 0.1  # weight of the newest call in a worker's mean call time


class Preemption(NamedTuple):
    """`request_id` was recalled from `worker_id` (the driver aborts it there) and
    queued again; `reason` names the policy rule."""

    worker_id: str
    request_id: str
    reason: str


@dataclass(slots=True)
class SchedulerCounters:
    submitted: int = 0
    dispatched: int = 0
    completed: int = 0
    rerouted: int = 0
    preempted: int = 0
    stolen: int = 0


class Scheduler:
    def __init__(self, queue: str = "program_fcfs", router: str = "sticky",
                 dispatch_window: int = 8, record: bool = False, *,
                 queue_options: Mapping[str, Any] | None = None,
                 router_options: Mapping[str, Any] | None = None,
                 stealing: StealConfig | None = None,
                 cost: CostModel | None = None) -> None:
        if dispatch_window < 1:
            raise ValueError(f"dispatch_window must be >= 1, got {dispatch_window}")
        self.queue_policy = queue
        self.policy: QueuePolicy = make_queue_policy(queue, **(queue_options or {}))
        self.dispatch_window = dispatch_window
        self.stealing = WorkStealing(stealing) if stealing is not None else None
        self.view = ClusterView(cost=cost if cost is not None else FlatCost())
        options = dict(router_options or {})
        make_router(router, **options)  # a bad name or option fails here, by name
        self.pools = Pools(self.view, lambda: make_router(router, **options))
        self.placements = Placements(self.view)
        self.pending_moves: list[SessionMove] = []  # what `take_moves` hands over
        self._preempts = (type(self.policy).choose_preemption
                          is not QueuePolicy.choose_preemption)
        self.counters = SchedulerCounters()
        self.stranded: list[tuple[LLMRequest, str]] = []  # unroutable calls, and why
        self.record = record
        self.decisions: list[Decision] = []  # filled only when `record` is on

    # -- workers -------------------------------------------------------------------
    def add_worker(self, worker_id: str, model: str = "", cost: CostModel | None = None) -> None:
        """A worker joins the pool of `model` (`cost`: that model's cost model; default
        the scheduler's). Calls go only to workers serving their model (see `pools`)."""
        if worker_id in self.view.workers:
            raise ValueError(f"worker {worker_id!r} is already registered")
        load = self.view.workers[worker_id] = WorkerLoad(worker_id)
        self.placements.add_worker(worker_id, self.policy.new_queue())
        self.pools.add(load, model, cost)

    @property
    def router(self):
        """The router of the only pool (see `pools.by_model` with several models)."""
        return self.pools.single_router

    def remove_worker(self, worker_id: str, now: float) -> list[LLMRequest]:
        """Take a worker out. Its queued and in-flight calls are routed again (in-flight
        ones restart from scratch elsewhere; their engine is gone; fork groups stay
        together). Only sessions homed there lose their home. Returns the re-routed
        requests; those no remaining worker serves (the last of their model's pool
        left) are forgotten and left in `stranded` for the caller to fail."""
        if worker_id not in self.view.workers:
            raise KeyError(f"unknown worker {worker_id!r}")
        del self.view.workers[worker_id]
        self.pools.remove(worker_id)
        moved = self.placements.drop_worker(worker_id)
        group_worker: dict[tuple[str, ...], str] = {}
        rerouted = []
        for p in moved:
            target = group_worker.get(p.group) if p.group else None
            if target is None:
                try:
                    target = self.pools.route(p.request)
                except NoWorkerError as error:
                    self.policy.on_forget(p.request)
                    self.stranded.append((p.request, str(error)))
                    continue
                if p.group:
                    group_worker[p.group] = target
            if p.inflight:
                self.policy.on_requeue(p.request, now, 0.0)
            self.placements.place(p.request, target, now, p.group)
            self.counters.rerouted += 1
            rerouted.append(p.request)
        return rerouted

    @property
    def worker_ids(self) -> list[str]:
        return list(self.view.workers)

    # -- requests ------------------------------------------------------------------
    def submit(self, request: LLMRequest, now: float) -> str:
        """Route and queue a call; returns the worker it is queued for. Raises
        NoWorkerError (before taking the call) when every worker of its model left."""
        self.pools.for_request(request)
        self._admit(request, now)
        worker_id = self.pools.route(request)
        self.placements.place(request, worker_id, now)
        return worker_id

    def submit_forks(self, requests: Sequence[LLMRequest], now: float) -> str:
        """Queue parallel samples (forks) of one step, which share their prompt's
        prefix: routed as the first one is, all to that worker, and sent to it
        together by one `take` (even past the dispatch window), so its engine batches
        them on shared blocks. Returns the worker. Raises ValueError on an empty
        group, a group spanning programs, or ids already submitted."""
        if not requests:
            raise ValueError("submit_forks needs at least one request")
        programs = {r.program_id for r in requests}
        if len(programs) > 1:
            raise ValueError(f"forks must belong to one program, got {sorted(programs)}")
        group = tuple(r.request_id for r in requests)
        if len(set(group)) != len(group):
            raise ValueError(f"fork request ids must be distinct, got {list(group)}")
        self.pools.for_request(requests[0])
        for request in requests:
            self._admit(request, now)
        worker_id = self.pools.route(requests[0])
        for request in requests:
            self.placements.place(request, worker_id, now, group)
        return worker_id

    def take(self, worker_id: str, now: float) -> list[LLMRequest]:
        """The requests to send to `worker_id` now, in policy order."""
        load = self.view.workers[worker_id]
        if self.stealing is not None and self.stealing.wants(load):
            self._steal(worker_id, now)
        calls, on_dispatch = self.placements, self.policy.on_dispatch
        queue = calls.queues[worker_id]
        out: list[LLMRequest] = []
        while queue and load.engine_waiting < self.dispatch_window:
            request = queue.pop(now)
            group = calls.dispatch(request, now).group
            on_dispatch(request, now)
            out.append(request)
            for rid in group or ():
                member = queue.remove(rid)
                if member is not None:
                    calls.dispatch(member, now)
                    on_dispatch(member, now)
                    out.append(member)
        self.counters.dispatched += len(out)
        if self.record:
            self.decisions.extend(Dispatch(worker_id, r.request_id) for r in out)
        return out

    @property
    def dispatch_log(self) -> list[Dispatch]:
        """The dispatches among the recorded decisions, in order."""
        return [d for d in self.decisions if type(d) is Dispatch]

    def preempt(self, worker_id: str, now: float) -> list[Preemption]:
        """Calls the policy recalls from `worker_id` so that the head of its queue can
        go: already queued again here; the driver must abort each on the worker before
        its next `take`. Empty unless the policy preempts (plas, atlas, fair_share) and
        the worker's dispatch window is full. Call it when the worker's step ends."""
        queue, load = self.placements.queues[worker_id], self.view.workers[worker_id]
        if not self._preempts or not queue or load.engine_waiting < self.dispatch_window:
            return []
        inflight = [InFlight(p.request, p.dispatched_at)
                    for p in self.placements.inflight[worker_id].values()]
        choice = self.policy.choose_preemption(queue.peek(now), inflight, now)
        if choice is None:
            return []
        placed = self.placements.inflight[worker_id][choice.request_id]
        self.policy.on_requeue(placed.request, now, now - placed.dispatched_at)
        self.placements.recall(worker_id, choice.request_id, now)
        self.counters.preempted += 1
        if self.record:
            self.decisions.append(log.Preempted(worker_id, choice.request_id, choice.reason))
        return [Preemption(worker_id, choice.request_id, choice.reason)]

    def thieves(self) -> list[str]:
        """Workers that would steal if `take` were called for them now (none unless
        stealing is on). Drivers call `take` for these after events that can submit
        work (arrivals, tool completions, finished calls): idle workers get no other
        call."""
        if self.stealing is None:
            return []
        found = {w for pool in self.pools.by_model.values()
                 for w in self.stealing.thieves(pool.view)}
        return [w for w in self.view.workers if w in found]  # join order

    def take_moves(self) -> list[SessionMove]:
        """Sessions that left a worker by stealing since the last call. Drivers call it
        right after each `take` and, before sending the thief anything, copy the KV
        of moves that carry a prefix, then release every moved session at its source."""
        moves, self.pending_moves = self.pending_moves, []
        return moves

    def has_queued(self, worker_id: str) -> bool:
        queue = self.placements.queues.get(worker_id)
        return bool(queue)

    def on_stats(self, worker_id: str, stats: EngineStats) -> None:
        load = self.view.workers.get(worker_id)
        if load is not None:
            load.stats = stats

    def on_event(self, event: EngineEvent, now: float) -> LLMRequest | None:
        """Account for an engine event. For a RequestDone of a call placed here,
        returns that call's request (else None)."""
        if isinstance(event, RequestDone):
            return self._finish(event, now)
        if isinstance(event, Evicted):
            self._evicted(event)
        return None

    def abort(self, request_id: str) -> str | None:
        """Forget a call. Returns the worker it was in flight on (the driver must abort
        it there), or None if it was only queued or unknown."""
        placed = self.placements.forget(request_id)
        if placed is None:
            return None
        self.policy.on_forget(placed.request)
        return placed.worker_id if placed.inflight else None

    def forget_session(self, session_id: str) -> str | None:
        """The session will not call again; returns the worker that held its cache."""
        self.view.session_tokens.pop(session_id, None)
        self.pools.forget_session(session_id)
        return self.view.session_home.pop(session_id, None)

    def program_finished(self, program_id: str, now: float) -> None:
        """The program will submit nothing more: policies drop its state. Idempotent;
        also called when a call marked `last_call` finishes."""
        self.policy.on_program_end(program_id, now)
        self.view.program_home.pop(program_id, None)

    def home_of(self, session_id: str) -> str | None:
        return self.view.session_home.get(session_id)

    @property
    def num_queued(self) -> int:
        return sum(len(q) for q in self.placements.queues.values())

    def queue_lengths(self) -> dict[str, int]:
        """Calls queued here for each worker."""
        return {w: len(q) for w, q in self.placements.queues.items()}

    @property
    def num_inflight(self) -> int:
        return sum(w.inflight for w in self.view.workers.values())

    # -- internals -----------------------------------------------------------------
    def _admit(self, request: LLMRequest, now: float) -> None:
        if request.request_id in self.placements.by_id:
            raise ValueError(f"request {request.request_id!r} was already submitted")
        request.arrival = now
        self.counters.submitted += 1
        self.policy.on_submit(request, now)

    def _finish(self, done: RequestDone, now: float) -> LLMRequest | None:
        placed = self.placements.finish(done)
        if placed is None:
            return None
        self.counters.completed += 1
        load = self.view.workers[done.worker_id]
        ran = execution_time(done, placed.dispatched_at)
        load.mean_call_s += (ran - load.mean_call_s) * (
            CALL_TIME_EWMA if load.mean_call_s else 1.0)
        view = self.view
        if view.session_home.get(done.session_id) == done.worker_id:
            view.session_tokens[done.session_id] = done.prompt_tokens + done.output_tokens
        for program_id in self.policy.on_done(done, now, placed.dispatched_at):
            for p in self.placements.queued_calls(program_id):
                self.placements.queues[p.worker_id].rekey(p.request.request_id, now)
        if placed.request.last_call:
            self.program_finished(done.program_id, now)
        return placed.request

    def _evicted(self, event: Evicted) -> None:
        view = self.view
        tokens = view.session_tokens.get(event.session_id)
        if tokens and view.session_home.get(event.session_id) == event.worker_id:
            stats = view.workers[event.worker_id].stats
            block = stats.block_size if stats is not None else 16
            view.session_tokens[event.session_id] = max(0, tokens - event.blocks * block)

    def _steal(self, thief_id: str, now: float) -> None:
        stealing, calls = self.stealing, self.placements
        view = self.pools.of_worker[thief_id].view  # steal only within a model's pool
        victim_id = stealing.victim(view, thief_id)
        if victim_id is None:
            return
        limit = stealing.config.max_steal or self.dispatch_window
        chosen = stealing.choose(view, victim_id, thief_id, calls.queues[victim_id],
                                 limit, lambda r: calls.by_id[r.request_id].group is None)
        keep_kv, link = stealing.config.kv_move == "transfer", stealing.config.link
        for steal in chosen:
            request = steal.request
            calls.move(calls.by_id[request.request_id], thief_id, now, keep_kv)
            if self.record:
                self.decisions.append(log.Steal(thief_id, victim_id, request.request_id))
            if steal.kv_tokens:
                self.pending_moves.append(SessionMove(
                    request.session_id, victim_id, thief_id, steal.kv_tokens,
                    request.prefix if keep_kv else None, link))
                if self.record:
                    self.decisions.append(log.Moved(request.session_id, victim_id, thief_id,
                                                    link if keep_kv else "recompute"))
        self.counters.stolen += len(chosen)
