"""The cluster control: every decision the drivers share, behind one event interface.

Both drivers (the Ray runtime, the discrete-event simulator) hold one `ClusterControl`,
deliver it the same events and carry out what it decides through their `Transport`:

    program_started(pid)        admission (ThunderAgent) learns of the program
    submit(req) / submit_forks  route and queue a call; send workers what they take
    on_step(worker, events, stats, deliver)
                                an engine step's events: finished calls, retention
                                decisions for replies that call a tool (`deliver` hands
                                each finished call to the driver's programs in between,
                                in event order); then preemption and dispatch
    tool_finished(session, ...) the duration model learns the tool's time
    session_ended(session)      its step is over: released on its worker
    program_ended(pid)          queue and retention policies and admission drop it;
                                whatever its sessions still hold is released
    abort(request_id)           a call is cancelled wherever it is
    on_timer(now)               prefetches and admission ticks that are due
    add_worker / remove_worker  the cluster changes

Calls are grouped in batches (`batch()`); workers short of work steal (with stealing
on) when the outermost batch ends, if anything in it could have submitted work: each
driver event is one batch, so both drivers balance at the same moments. Nothing here
sleeps, spawns or reads a clock; `now` comes in with every call.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from agentrt.runtime.core.control.admission import AdmissionGate
from agentrt.runtime.core.control.retention import RebuildCost, RetentionControl
from agentrt.runtime.core.control.transport import Transport
from agentrt.runtime.core.decisions import Admitted
from agentrt.runtime.core.messages import EngineEvent, EngineStats, LLMRequest, RequestDone
from agentrt.runtime.core.retention import ThunderAgentTTL
from agentrt.runtime.core.routing.base import CostModel
from agentrt.runtime.core.pools import NoWorkerError
from agentrt.runtime.core.scheduler import Scheduler
from agentrt.runtime.core.stealing import StealConfig
from agentrt.runtime.engines.base import EngineInfo, failed_call

Deliver = Callable[[RequestDone], None]


@dataclass(frozen=True, slots=True)
class ControlSettings:
    """The policies the control runs (built from RuntimeConfig or SimConfig)."""

    queue: str = "program_fcfs"
    router: str = "sticky"
    dispatch_window: int = 8
    queue_options: Mapping[str, Any] = field(default_factory=dict)
    router_options: Mapping[str, Any] = field(default_factory=dict)
    stealing: StealConfig | None = None
    preemption: bool = False
    ttl: str | None = None
    duration_min_samples: int = 100
    admission_interval_s: float = 1.0
    record: bool = False
    aliases: Mapping[str, str] = field(default_factory=dict)
    """Model names served by another model (stand-ins): calls go to that model's pool."""


class ClusterControl:
    """See the module doc. `cost` prices moving and rebuilding KV (a PerfModel);
    `costs` per model, where workers serve several (default: `cost` for all)."""

    def __init__(self, settings: ControlSettings, transport: Transport,
                 cost: CostModel | None = None,
                 costs: Mapping[str, CostModel] | None = None) -> None:
        self.settings = s = settings
        self.transport = transport
        self.costs = dict(costs or {})
        self.scheduler = Scheduler(
            s.queue, s.router, s.dispatch_window, s.record, queue_options=s.queue_options,
            router_options=s.router_options, stealing=s.stealing, cost=cost)
        self.scheduler.pools.aliases.update(s.aliases)
        log = self.scheduler.decisions if s.record else None
        rebuild: RebuildCost | None = cost if hasattr(cost, "recompute_time") else None
        self.retention = RetentionControl(s.ttl, rebuild, transport, s.duration_min_samples,
                                          log)
        policy = self.retention.policy
        self.gate = (AdmissionGate(policy.admission, s.admission_interval_s)
                     if isinstance(policy, ThunderAgentTTL) else None)
        if self.gate is not None and hasattr(policy.admission, "durations"):
            policy.admission.durations = self.retention.durations
        self.workers: dict[str, EngineInfo] = {}
        self.moves = 0  # sessions that left a worker by stealing
        self._stats: dict[str, EngineStats] = {}  # each worker's stats after its last step
        self._sessions: dict[str, set[str]] = {}  # program -> its live sessions
        self._program_of: dict[str, str] = {}  # session -> its program
        self._tick_at: float | None = None  # next admission tick
        self._depth = 0
        self._balance = False
        self._batch = _Batch(self)
        self._batch_now = 0.0

    # -- batches -------------------------------------------------------------------
    def batch(self, now: float) -> _Batch:
        """Group calls into one event (`with control.batch(now): ...`): stealing
        happens once, when the outermost batch ends."""
        batch = self._batch
        batch.now = now
        return batch

    def begin(self, now: float) -> None:
        """Open a batch (what `batch` does; for drivers' hot loops)."""
        if not self._depth:
            self._batch_now = now  # stealing happens at the outermost batch's time
        self._depth += 1

    def end(self) -> None:
        """Close the batch `begin` opened."""
        self._depth -= 1
        if not self._depth and self._balance:
            self._balance = False
            self._steal(self._batch_now)

    def _changed(self, now: float) -> None:
        """Something that can submit work happened: balance at the end of the batch."""
        self._balance = True
        if not self._depth:
            self._balance = False
            self._steal(now)

    # -- workers -------------------------------------------------------------------
    def add_worker(self, info: EngineInfo, now: float = 0.0) -> None:
        if info.worker_id in self.workers:
            raise ValueError(f"worker {info.worker_id!r} is already registered")
        self.workers[info.worker_id] = info
        cost = self.costs.get(info.model)
        self.scheduler.add_worker(info.worker_id, info.model, cost)
        self.retention.attach(info, cost if hasattr(cost, "recompute_time") else None)
        if self.gate is not None:
            capacity = info.kv_capacity_tokens
            if capacity is None:
                raise ValueError(f"worker {info.worker_id!r} reports no KV capacity; "
                                 "ThunderAgent admission needs one (configure it)")
            self.gate.add_worker(info.worker_id, capacity)

    def remove_worker(self, worker_id: str, now: float) -> list[LLMRequest]:
        """Take a worker out: its queued and in-flight calls are routed again (those in
        flight restart elsewhere: the engine and its KV are gone). Returns them."""
        if self.gate is not None:
            self.gate.admission.remove_worker(worker_id)
        moved = self.scheduler.remove_worker(worker_id, now)
        if self.gate is not None:
            for request in self.gate.drop_held(self._unservable):
                self.scheduler.stranded.append((request, self._unservable(request)))
        del self.workers[worker_id]
        self._stats.pop(worker_id, None)
        self.retention.detach(worker_id)
        return moved

    def _unservable(self, request: LLMRequest) -> str:
        """Why no worker can serve the call any more ("" if one can)."""
        try:
            self.scheduler.pools.for_request(request)
        except NoWorkerError as error:
            return str(error)
        return ""

    def take_stranded(self, now: float) -> list[RequestDone]:
        """Calls no worker can serve any more (every worker of their model left while
        they were queued, running or held by admission), as failed RequestDones naming
        why; the driver delivers them to their callers. Empty when none."""
        stranded, self.scheduler.stranded = self.scheduler.stranded, []
        return [failed_call(request, "", now, why) for request, why in stranded]

    def worker_stats(self) -> dict[str, EngineStats]:
        """Each worker's stats after its last step (workers that have not stepped yet
        are missing)."""
        return dict(self._stats)

    def step_ends_matter(self, worker_id: str) -> bool:
        """Whether the end of an engine step of `worker_id` can change a decision even
        when the step finished nothing and left what the core reads of the engine
        (`EngineStats.decision_view`) as it was.

        Such a step brings nothing new but the time, and only two rules read the time
        at a step end: a worker with calls queued here may preempt (with preemption on;
        Autellix's quanta run out as time passes), and a worker short of work steals
        once some victim has calls to spare (its calls may become worth stealing as
        loads change) or may have them without a submission (a preempted call is queued
        again). Every other step end that brings nothing new decides nothing: the
        worker's queue here only grows by calls that are offered to it at once, and
        what it can take depends on its calls in flight and on `decision_view`. So a
        driver may skip telling the control of such steps unless this is true: the
        simulator fuses their decode iterations, Ray workers do not report them."""
        scheduler, preemption = self.scheduler, self.settings.preemption
        if preemption and scheduler.has_queued(worker_id):
            return True
        stealing = scheduler.stealing
        if stealing is not None:
            view = scheduler.view
            load = view.workers.get(worker_id)
            if load is not None and stealing.wants(load) and (
                    preemption or stealing.victim(view, worker_id) is not None):
                return True
        return False

    def watches_steps(self) -> bool:
        """Whether `step_ends_matter` can be true for any worker (preemption or
        stealing on)."""
        return self.settings.preemption or self.scheduler.stealing is not None

    def pump_all(self, now: float) -> None:
        """Send every worker what it can take (after the cluster changed)."""
        for worker_id in list(self.workers):
            self._pump(worker_id, now)
        self._changed(now)

    # -- programs and calls --------------------------------------------------------
    def program_started(self, program_id: str, now: float) -> None:
        self._sessions.setdefault(program_id, set())

    def submit(self, request: LLMRequest, now: float) -> None:
        """A call arrives: admission, routing, queueing; workers take what they can.
        Raises NoWorkerError, taking nothing, when every worker of its model left."""
        self.scheduler.pools.for_request(request)
        self._track(request)
        self.retention.submitted(request)
        if self.gate is not None:
            self._schedule_tick(now)
            if not self.gate.offer(request, now):
                return
        self._route(request, now)

    def submit_forks(self, requests: Sequence[LLMRequest], now: float) -> None:
        """Parallel samples of one prompt: one worker, sent together (see
        `Scheduler.submit_forks`). Admission does not hold fork groups."""
        for request in requests:
            self._track(request)
        worker_id = self.scheduler.submit_forks(requests, now)
        self._pump(worker_id, now)
        self._changed(now)

    def abort(self, request_id: str, now: float) -> bool:
        """Cancel a call: forgotten if queued (or held by admission), aborted on its
        worker if sent there. Returns whether it had been sent to a worker."""
        if self.gate is not None and self.gate.forget(request_id):
            return False
        worker_id = self.scheduler.abort(request_id)
        if worker_id is None:
            return False
        self.transport.abort(worker_id, request_id)
        self._pump(worker_id, now)
        return True

    def tool_finished(self, session_id: str, tool: str, seconds: float, now: float,
                      prior_s: float | None = None) -> None:
        self.retention.tool_finished(session_id, tool, seconds, prior_s)

    def session_ended(self, session_id: str, now: float) -> None:
        """The session calls no more: its worker forgets it."""
        worker_id = self.scheduler.forget_session(session_id)
        if worker_id is not None and worker_id in self.workers:
            self.transport.release(worker_id, session_id)
        self.retention.session_ended(session_id)
        program_id = self._program_of.pop(session_id, None)
        if program_id is not None:
            self._sessions.get(program_id, set()).discard(session_id)

    def program_ended(self, program_id: str, now: float) -> None:
        """The program is over (any status): every policy drops it, and sessions it did
        not end are released where they live."""
        for session_id in sorted(self._sessions.pop(program_id, ())):
            self.session_ended(session_id, now)
        self.retention.program_ended(program_id)
        self.scheduler.program_finished(program_id, now)
        if self.gate is not None:
            self.gate.finished(program_id)

    # -- engines -------------------------------------------------------------------
    def on_step(self, worker_id: str, events: Sequence[EngineEvent], stats: EngineStats,
                now: float, deliver: Deliver | None = None) -> None:
        """An engine step of `worker_id` ended with `events` and `stats`. Each finished
        call is accounted, decided on (retention) and then handed to `deliver`, before
        the next event; then the worker takes more work."""
        finished = False
        for event in events:
            request = self.scheduler.on_event(event, now)
            if isinstance(event, RequestDone) and request is not None:
                finished = True
                event.queued_at = request.arrival
                self.retention.finished(request, event, stats, now)
                if self.gate is not None and event.tool_calls:
                    self.gate.acting(event.program_id,
                                     event.prompt_tokens + event.output_tokens, now,
                                     event.tool_calls[0].name)
                if deliver is not None:
                    deliver(event)
        self.scheduler.on_stats(worker_id, stats)
        self._stats[worker_id] = stats
        if self.settings.preemption:
            for p in self.scheduler.preempt(worker_id, now):
                self.transport.abort(worker_id, p.request_id)
        self._pump(worker_id, now)
        if finished:
            self._changed(now)

    # -- timers --------------------------------------------------------------------
    def next_timer(self) -> float:
        tick = self._tick_at if self._tick_at is not None else math.inf
        return min(tick, self.retention.next_timer())

    def on_timer(self, now: float) -> None:
        """Run what is due: prefetches, then an admission tick."""
        self.retention.on_timer(now)
        if self._tick_at is not None and self._tick_at <= now:
            self._tick(now)

    def _schedule_tick(self, now: float) -> None:
        if self._tick_at is None:
            self._tick_at = now
            self.transport.wake_at(now)

    def _tick(self, now: float) -> None:
        gate = self.gate
        plan, ready = gate.tick(now)
        if self.settings.record:
            log = self.scheduler.decisions
            log.extend(Admitted(p, "pause", "") for p in plan.pause)
            log.extend(Admitted(p, "pause_after_turn", "") for p in plan.pause_after_turn)
            log.extend(Admitted(p, "admit", w) for p, w in plan.resume)
        for request in ready:
            self._route(request, now)
        self._tick_at = self._tick_at + gate.interval_s if gate.tracking else None
        if self._tick_at is not None:
            self.transport.wake_at(self._tick_at)

    # -- internals -----------------------------------------------------------------
    def _track(self, request: LLMRequest) -> None:
        self._sessions.setdefault(request.program_id, set()).add(request.session_id)
        self._program_of[request.session_id] = request.program_id

    def _route(self, request: LLMRequest, now: float) -> None:
        try:
            worker_id = self.scheduler.submit(request, now)
        except NoWorkerError as error:  # held by admission while its pool left
            self.scheduler.stranded.append((request, str(error)))
            return
        if self.gate is not None:
            self.gate.submitted(request, worker_id, now)
        self._pump(worker_id, now)
        self._changed(now)

    def _pump(self, worker_id: str, now: float) -> None:
        scheduler = self.scheduler
        requests = scheduler.take(worker_id, now)
        if scheduler.pending_moves:
            for move in scheduler.take_moves():
                self.moves += 1
                self.transport.move(move)
        if requests:
            self.transport.send(worker_id, requests)

    def _steal(self, now: float) -> None:
        """Workers short of work steal queued calls (with stealing on)."""
        for worker_id in self.scheduler.thieves():
            self._pump(worker_id, now)


class _Batch:
    """The context manager `ClusterControl.batch` returns (one per control: batches
    nest by depth, not by object)."""

    __slots__ = ("control", "now")

    def __init__(self, control: ClusterControl) -> None:
        self.control, self.now = control, 0.0

    def __enter__(self) -> None:
        self.control.begin(self.now)

    def __exit__(self, *exc: Any) -> None:
        self.control.end()
