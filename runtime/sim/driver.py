"""The discrete-event driver: the core scheduler, router, KV and engines on a virtual
clock.

The same objects the Ray runtime drives are driven here by a heap of events:

    ARRIVE      a program starts: its ready steps' first turns are submitted
    STEP_END    an engine iteration (or a fused run of decode iterations) ends: its
                events reach the scheduler and the program player; the worker pumps
                more work and steps again while it has any
    TOOL_DONE   a tool call's sampled duration has passed: the next turn is submitted
    PREFETCH    a session paused on a tool starts getting its context back from host
                memory, when its TTL decision said (before the tool's predicted end)
    SAMPLE      KV use and queue lengths are recorded
    ADMISSION_TICK  ThunderAgent admission re-plans (ttl "thunderagent" only)
    WORKER_CHANGE   a worker joins or leaves mid-run (`SimConfig.worker_changes`)

With `stealing` on, workers short of work steal queued calls (inside the scheduler's
`take`); the driver asks for them (`Scheduler.thieves`) only after the events that can
submit work (arrivals, tool completions, finished calls, worker changes), the same
moments the fused-decode horizon (`runtime.sim.horizon`) is built on, and releases the
sessions that left a worker there. With `preemption` on, each step end first aborts the
calls the queue policy recalls.

Nothing here decides anything: routing, queueing and batching are the core's and the
engine's; what to keep across tool calls is the TTL policy's (`runtime.sim.retention`).
Identical inputs and seeds give identical results.
"""
from __future__ import annotations

import time
from collections import deque
from typing import Iterable

import numpy as np

from agentrt.programs.workloads.spec import ProgramSpec
from agentrt.runtime.core.messages import LLMRequest, RequestDone
from agentrt.runtime.core.retention import ThunderAgentTTL
from agentrt.runtime.core.scheduler import Scheduler
from agentrt.runtime.core.stealing import StealConfig
from agentrt.runtime.engines.factory import EngineFactory, wants_host_tier
from agentrt.runtime.engines.simulated.perf_model import PerfModel
from agentrt.runtime.engines.simulated.engine import SimulatedEngine
from agentrt.runtime.sim.admission import AdmissionGate
from agentrt.runtime.sim.bounds import program_lower_bound
from agentrt.runtime.sim.config import SimConfig
from agentrt.runtime.sim.events import (
    ADMISSION_TICK, ARRIVE, PREFETCH, SAMPLE, STEP_END, TOOL_DONE, WORKER_CHANGE,
    EventQueue,
)
from agentrt.runtime.sim.horizon import Horizons
from agentrt.runtime.sim.metrics import Recorder, SimResult
from agentrt.runtime.sim.player import DoneOutcome, ProgramPlayer
from agentrt.runtime.sim.retention import Retention
from agentrt.runtime.sim.workers import WorkerStepping

def host_tier_on(cfg: SimConfig, perf: PerfModel) -> bool:
    """Whether the workers get a host-memory KV tier under `cfg.host_tier`."""
    return wants_host_tier(cfg.host_tier, perf)


class Simulation(WorkerStepping):
    def __init__(self, programs: Iterable[ProgramSpec], config: SimConfig | None = None) -> None:
        self.cfg = cfg = config or SimConfig()
        perf = PerfModel(cfg.model, cfg.gpu, cfg.tp)
        self.factory = EngineFactory(
            model=cfg.model, gpu=cfg.gpu, tp=cfg.tp, block_size=cfg.block_size,
            max_num_seqs=cfg.max_num_seqs, max_batched_tokens=cfg.max_batched_tokens,
            kv_blocks=cfg.kv_blocks, seed=cfg.seed, ttl=cfg.ttl, eviction=cfg.eviction,
            host_fraction=cfg.host_fraction if host_tier_on(cfg, perf) else 0.0)
        self.perf = perf
        self.retention = Retention(cfg.ttl)
        policy = self.retention.policy
        self.gate = AdmissionGate(policy.admission, cfg.admission_interval_s) if isinstance(
            policy, ThunderAgentTTL) else None
        self._home: dict[str, str] = {}  # session id -> worker that ran its latest call
        self.programs = list(programs)
        self.scheduler = Scheduler(
            cfg.queue, cfg.router, cfg.dispatch_window, record=cfg.record_decisions,
            queue_options=cfg.queue_options, router_options=cfg.router_options,
            stealing=StealConfig(**cfg.steal_options) if cfg.stealing else None, cost=perf)
        self._stealing = cfg.stealing
        self._retired_busy = 0.0  # busy time of workers removed mid-run
        self.rerouted = 0  # calls re-routed off removed workers
        self.moves = 0  # sessions released on a worker because their calls were stolen
        self.transferred_tokens = 0  # KV copied to thieves (steal_options kv_move="transfer")
        self.engines: dict[str, SimulatedEngine] = {}
        self._step_event: dict[str, int | None] = {}
        # Per worker: (end of its pending step, whether that step finishes a call).
        self._pending: dict[str, tuple[float, bool]] = {}
        self.horizons = Horizons()
        for i in range(cfg.workers):
            self.add_worker(f"w{i}")
        self.player = ProgramPlayer(cfg.model, cfg.block_size)
        self.queue = EventQueue()
        self.rec = Recorder()
        self.now = 0.0
        self._waiting_programs: deque[ProgramSpec] = deque()
        self._running_programs = 0
        self._events = 0
        self._arrivals: dict[str, float] = {}

    # -- running -------------------------------------------------------------------
    def run(self) -> SimResult:
        start = time.perf_counter()
        self._schedule_arrivals()
        self.queue.push(0.0, SAMPLE, None)
        if self.gate is not None:
            self._push_external(0.0, ADMISSION_TICK, None)
        for change in self.cfg.worker_changes:
            self._push_external(change[0], WORKER_CHANGE, change)
        handlers = {ARRIVE: self._on_arrive, STEP_END: self._on_step_end,
                    TOOL_DONE: self._on_tool_done, SAMPLE: self._on_sample,
                    ADMISSION_TICK: self._on_admission_tick,
                    WORKER_CHANGE: self._on_worker_change, PREFETCH: self._on_prefetch}
        queue = self.queue
        while queue:
            self.now, kind, payload = queue.pop()
            self._events += 1
            if kind != STEP_END and kind != SAMPLE:
                self.horizons.external_popped()
            handlers[kind](payload)
        if self.cfg.check_integrity:
            for engine in self.engines.values():
                engine.check_integrity()
        return self._result(time.perf_counter() - start)

    def _schedule_arrivals(self) -> None:
        cfg, programs = self.cfg, self.programs
        if cfg.arrival == "trace":
            for p in programs:
                self._push_external(p.arrival, ARRIVE, p)
        elif cfg.arrival == "poisson":
            rng = np.random.default_rng(cfg.seed)
            times = np.cumsum(rng.exponential(1.0 / cfg.rate, size=len(programs)))
            for t, p in zip(times, programs):
                self._push_external(float(t), ARRIVE, p)
        else:
            first, rest = programs[:cfg.concurrency], programs[cfg.concurrency:]
            spacing = cfg.ramp_s / max(1, len(first))
            for i, p in enumerate(first):
                self._push_external(i * spacing, ARRIVE, p)
            self._waiting_programs.extend(rest)

    # -- event handlers ------------------------------------------------------------
    def _on_arrive(self, spec: ProgramSpec) -> None:
        self._running_programs += 1
        _, requests = self.player.start(spec, self.now)
        if self.gate is not None:
            self.gate.arrived(spec.program_id, requests, self.now)
            return
        for request in requests:
            self._submit(request)
        self._balance()

    def _on_step_end(self, payload) -> None:
        worker_id, result = payload
        self._step_event[worker_id] = None
        self._pending.pop(worker_id, None)
        finished = False
        for event in result.events:
            self.scheduler.on_event(event, self.now)
            if isinstance(event, RequestDone):
                finished = True
                self._on_request_done(event)
        engine = self.engines[worker_id]
        self.scheduler.on_stats(worker_id, engine.stats())
        if self.cfg.preemption:
            for p in self.scheduler.preempt(worker_id, self.now):
                engine.abort(p.request_id, self.now)
        self._pump(worker_id)
        if finished:
            self._balance()
        self._start_step(worker_id)

    def _on_tool_done(self, session_id: str) -> None:
        step = self.player.step_of(session_id)
        turn = step.spec.turns[step.turn]
        outcome = self.player.after_tool(session_id, self.now)
        self.retention.tool_finished(self._engine_of(session_id), step, turn.tool,
                                     turn.tool_duration, not outcome.step_finished)
        self._follow(session_id, outcome)
        self._balance()

    def _on_prefetch(self, session_id: str) -> None:
        if self.retention.awaits_prefetch(session_id):  # else its tool is already back
            self.retention.prefetch(self._engine_of(session_id),
                                    self.player.step_of(session_id), self.now)

    def _on_worker_change(self, change) -> None:
        _, action, worker_id = change
        if action == "add":
            self.add_worker(worker_id)
        else:
            self.remove_worker(worker_id)
        for w in list(self.engines):
            self._pump(w)
        self._balance()

    def _on_admission_tick(self, _payload) -> None:
        for request in self.gate.tick(self.now):
            self._submit(request)
        if self._running_programs or self._waiting_programs:
            self._push_external(self.now + self.gate.interval_s, ADMISSION_TICK, None)

    def _on_sample(self, _payload) -> None:
        stats = [e.stats() for e in self.engines.values()]
        cap = sum(s.kv_capacity_blocks for s in stats)
        self.rec.sample(time=self.now, kv_used=sum(s.kv_used_blocks for s in stats) / cap,
                        kv_pinned=sum(s.kv_pinned_blocks for s in stats) / cap,
                        kv_cached=sum(s.kv_cached_blocks for s in stats) / cap,
                        running=sum(s.running for s in stats),
                        waiting=sum(s.waiting for s in stats) + self.scheduler.num_queued)
        if self._running_programs or self._waiting_programs or len(self.queue):
            self.queue.push(self.now + self.cfg.sample_interval_s, SAMPLE, None)

    # -- programs ------------------------------------------------------------------
    def _on_request_done(self, done: RequestDone) -> None:
        arrival = self._arrivals[done.request_id]
        outcome = self.player.on_done(done, self.now)
        self._record_request(done, outcome)
        step, engine = outcome.step, self.engines[done.worker_id]
        self._home[done.session_id] = done.worker_id
        self.retention.request_done(engine, done, step.context_before, arrival)
        if outcome.tool_duration is not None:
            tool = step.spec.turns[step.turn].tool
            at = self.retention.tool_started(engine, step, tool, outcome.tool_duration,
                                             self.now)
            if at is not None:  # an external event: it changes the engine's free blocks
                self._push_external(at, PREFETCH, done.session_id)
            if self.gate is not None:
                self.gate.acting(done.program_id, step.chain.num_tokens, self.now)
        self._follow(done.session_id, outcome)

    def _follow(self, session_id: str, outcome: DoneOutcome) -> None:
        if outcome.tool_duration is not None:
            self._push_external(self.now + outcome.tool_duration, TOOL_DONE, session_id)
            return
        if outcome.step_finished:
            worker_id = self.scheduler.forget_session(session_id)
            if worker_id is not None and worker_id in self.engines:
                self.engines[worker_id].release(session_id, self.now)
            self.retention.step_finished(self._engine_of(session_id), session_id)
            self._home.pop(session_id, None)
        for request in outcome.new_requests:
            if self.gate is None or self.gate.pending(request, self.now):
                self._submit(request)
        if outcome.program_finished:
            self._finish_program(outcome)

    def _finish_program(self, outcome: DoneOutcome) -> None:
        run = outcome.step.program
        self._running_programs -= 1
        self.retention.program_finished(run.spec.program_id)
        self.scheduler.program_finished(run.spec.program_id, self.now)
        if self.gate is not None:
            self.gate.finished(run.spec.program_id)
        self.rec.program(run.spec.program_id, run.spec.tenant, arrival=run.arrival,
                         finished=self.now,
                         lower_bound=program_lower_bound(run.spec, self.perf))
        if self._waiting_programs:
            self._push_external(self.now, ARRIVE, self._waiting_programs.popleft())

    def _record_request(self, done: RequestDone, outcome: DoneOutcome) -> None:
        new_tokens = done.prompt_tokens - outcome.step.context_before
        self.rec.request(arrival=self._arrivals.pop(done.request_id),
                         first_scheduled=done.first_scheduled_at, finished=done.finished_at,
                         prompt=done.prompt_tokens, cached=done.cached_tokens,
                         prefilled=done.prefilled_tokens,
                         reprefilled=max(0, done.prefilled_tokens - new_tokens),
                         output=done.output_tokens, preemptions=done.preemptions)

    # -- workers -------------------------------------------------------------------
    def _submit(self, request: LLMRequest) -> None:
        self._arrivals[request.request_id] = self.now
        worker_id = self.scheduler.submit(request, self.now)
        self.retention.submitted(self._engine_of(request.session_id),
                                 self.player.step_of(request.session_id), self.now)
        if self.gate is not None:
            self.gate.submitted(request, worker_id, self.now)
        self._pump(worker_id)

    def _engine_of(self, session_id: str) -> SimulatedEngine | None:
        """The engine that ran the session's latest call (None before its first)."""
        worker_id = self._home.get(session_id)
        return self.engines.get(worker_id) if worker_id is not None else None

    def _push_external(self, time: float, kind: int, payload) -> None:
        """Arrivals, tool completions, admission ticks, worker changes and prefetches:
        the events that can submit work or change an engine's free blocks."""
        self.queue.push(time, kind, payload)
        self.horizons.external_pushed(time)

    def _result(self, wall: float) -> SimResult:
        busy = self._retired_busy + sum(e.stats().busy_time for e in self.engines.values())
        finished = self.rec.programs["finished"]
        return SimResult.from_recorder(
            self.rec, workers=len(self.engines), busy_time=busy,
            makespan=max(finished) if finished else 0.0, wall_time_s=wall,
            events=self._events, unfinished=len(self.programs) - len(finished),
            config=self.cfg.model_dump())
