"""The discrete-event driver: the cluster control and the engines on a virtual clock.

The same `ClusterControl` the Ray runtime drives is driven here by a heap of events:

    ARRIVE      a program starts: its ready steps' first turns are submitted
    STEP_END    an engine iteration (or a fused run of decode iterations) ends: its
                events go to the control, finished calls to the program player; the
                worker steps again while it has work
    TOOL_DONE   a pause's traced duration has passed (a tool call, or a person's think
                time on a human turn): the next turn is submitted
    TIMER       the control asked to be woken (prefetches, admission ticks)
    SAMPLE      KV use and queue lengths are recorded
    WORKER_CHANGE  a worker joins or leaves mid-run (`SimConfig.worker_changes`)

Every event is one control batch, so workers short of work steal once per event, as
on Ray. This file and `workers.py` (the transport) only deliver events and carry out
decisions: routing, queueing, stealing, retention and admission are the control's,
batching is the engine's. Identical inputs and seeds give identical results.
"""
from __future__ import annotations

import functools
import math
import time
from collections import deque
from typing import Iterable

import numpy as np

from agentrt.programs.workloads.spec import ProgramSpec
from agentrt.runtime.core.control import ClusterControl
from agentrt.runtime.core.messages import LLMRequest, RequestDone
from agentrt.runtime.engines.factory import pool_factories
from agentrt.runtime.engines.simulated.responder import Responder
from agentrt.runtime.sim.bounds import program_lower_bound
from agentrt.runtime.sim.config import SimConfig
from agentrt.runtime.sim.events import (
    ARRIVE, REFUSED, SAMPLE, STEP_END, TIMER, TOOL_DONE, WORKER_CHANGE, EventQueue,
)
from agentrt.runtime.sim.metrics import Recorder, SimResult
from agentrt.runtime.sim.player import DoneOutcome, ProgramPlayer
from agentrt.runtime.sim.workers import SimWorkers


class Simulation:
    def __init__(self, programs: Iterable[ProgramSpec], config: SimConfig | None = None, *,
                 responder: Responder | None = None) -> None:
        """`responder`: what the simulated models reply (filler text by default)."""
        self.cfg = cfg = config or SimConfig()
        real = [p.model for p in cfg.worker_pools() if p.real or p.engine == "inline"]
        if real:
            raise ValueError(f"pools {real} run on the wall clock; the simulator runs "
                             "simulated workers only (engine 'simulated' or 'latency')")
        self.pools = pool_factories(cfg, responder=responder)
        self.factory = self.pools[0][1]  # the first pool's (what added workers join)
        costs = {pool.model: factory.cost() for pool, factory in self.pools}
        self.perf = perf = costs[self.pools[0][0].model]  # lower bounds of trace programs
        self.programs = list(programs)
        self.queue = EventQueue()
        self.now = 0.0
        self.prefetches = 0  # prefetches that moved blocks
        self.workers = SimWorkers(self)
        self.control = ClusterControl(cfg.control_settings(), self.workers, cost=perf,
                                      costs=costs)
        self.scheduler = self.control.scheduler
        n = 0
        for pool, factory in self.pools:
            for _ in range(pool.workers):
                self.add_worker(f"w{n}", factory)
                n += 1
        self.player = ProgramPlayer(cfg.model, cfg.block_size)
        self.rec = Recorder()
        self.rerouted = 0  # calls re-routed off removed workers
        self._waiting_programs: deque[ProgramSpec] = deque()
        self._running_programs = 0
        self._events = 0
        self._arrivals: dict[str, float] = {}

    @property
    def engines(self):
        return self.workers.engines

    @property
    def retention(self):
        return self.control.retention

    # -- running -------------------------------------------------------------------
    def run(self) -> SimResult:
        start = time.perf_counter()
        self._schedule_arrivals()
        self._start_sampling()
        queue = self.queue
        while queue:
            self.now, kind, payload = queue.pop()
            self._handle(kind, payload)
        return self._result(time.perf_counter() - start)

    def next_timer_at(self) -> float:
        """When something outside the event queue may submit work next (never, here:
        every submission follows an event; programs on the virtual loop differ)."""
        return math.inf

    def _start_sampling(self) -> None:
        self.queue.push(0.0, SAMPLE, None)
        for change in self.cfg.worker_changes:
            self.workers.external(change[0], WORKER_CHANGE, change)

    def _handle(self, kind: int, payload) -> None:
        """One event at `self.now`: one control batch."""
        self._events += 1
        if kind != STEP_END and kind != SAMPLE:
            self.workers.horizons.external_popped()
        control = self.control
        control.begin(self.now)
        try:
            self._handlers[kind](payload)
        finally:
            control.end()

    @functools.cached_property
    def _handlers(self):
        return {ARRIVE: self._on_arrive, STEP_END: self._on_step_end,
                TOOL_DONE: self._on_tool_done, SAMPLE: self._on_sample,
                TIMER: self._on_timer, WORKER_CHANGE: self._on_worker_change,
                REFUSED: self._on_refused}

    def _schedule_arrivals(self) -> None:
        cfg, programs, push = self.cfg, self.programs, self.workers.external
        if cfg.arrival == "trace":
            for p in programs:
                push(p.arrival, ARRIVE, p)
        elif cfg.arrival == "poisson":
            rng = np.random.default_rng(cfg.seed)
            times = np.cumsum(rng.exponential(1.0 / cfg.rate, size=len(programs)))
            for t, p in zip(times, programs):
                push(float(t), ARRIVE, p)
        else:
            first, rest = programs[:cfg.concurrency], programs[cfg.concurrency:]
            spacing = cfg.ramp_s / max(1, len(first))
            for i, p in enumerate(first):
                push(i * spacing, ARRIVE, p)
            self._waiting_programs.extend(rest)

    # -- event handlers ------------------------------------------------------------
    def _on_arrive(self, spec: ProgramSpec) -> None:
        self._running_programs += 1
        self.control.program_started(spec.program_id, self.now)
        _, requests = self.player.start(spec, self.now)
        for request in requests:
            self._submit(request)

    def _on_step_end(self, payload) -> None:
        worker_id, result = payload
        workers = self.workers
        workers.step_ended(worker_id)
        stats = workers.engines[worker_id].stats()
        self.control.on_step(worker_id, result.events, stats, self.now,
                             self._on_request_done)
        workers.step_again(worker_id)

    def _on_tool_done(self, session_id: str) -> None:
        pause = self.player.step_of(session_id).pause
        self.control.tool_finished(session_id, pause.tool, pause.seconds, self.now)
        self._follow(session_id, self.player.after_tool(session_id, self.now))

    def _on_refused(self, payload) -> None:
        worker_id, done = payload
        engine = self.workers.engines.get(worker_id)
        if engine is not None:
            self.control.on_step(worker_id, [done], engine.stats(), self.now,
                                 self._on_request_done)

    def _on_timer(self, at: float) -> None:
        self.workers.timer_fired(at)
        self.control.on_timer(self.now)

    def _on_worker_change(self, change) -> None:
        _, action, worker_id = change
        if action == "add":
            self.add_worker(worker_id)
        else:
            self.remove_worker(worker_id)
        self.control.pump_all(self.now)

    def _on_sample(self, _payload) -> None:
        stats = [e.stats() for e in self.engines.values()]
        cap = max(1, sum(s.kv_capacity_blocks for s in stats))
        self.rec.sample(time=self.now, kv_used=sum(s.kv_used_blocks for s in stats) / cap,
                        kv_pinned=sum(s.kv_pinned_blocks for s in stats) / cap,
                        kv_cached=sum(s.kv_cached_blocks for s in stats) / cap,
                        running=sum(s.running for s in stats),
                        waiting=sum(s.waiting for s in stats) + self.scheduler.num_queued)
        if self._running_programs or self._waiting_programs or len(self.queue):
            self.queue.push(self.now + self.cfg.sample_interval_s, SAMPLE, None)

    # -- workers -------------------------------------------------------------------
    def add_worker(self, worker_id: str, factory=None) -> None:
        engine = (factory or self.factory)(worker_id)
        self.workers.add(engine)
        self.control.add_worker(engine.info, self.now)

    def remove_worker(self, worker_id: str) -> list[LLMRequest]:
        """Take a worker out mid-run: its engine (KV, running calls) is gone; the
        control routes its queued and in-flight calls again (in-flight ones restart).
        Returns the re-routed calls. The last worker serving a model cannot leave:
        the trace's calls for it would have nowhere to run (ValueError)."""
        pool = self.scheduler.pools.of_worker.get(worker_id)
        if pool is not None and list(pool.view.workers) == [worker_id]:
            raise ValueError(
                f"worker change at t={self.now:.3f}s removes {worker_id!r}, the last "
                f"worker serving model {pool.model!r}: its calls would have nowhere to "
                f"run; keep one worker of each model in the scenario")
        moved = self.control.remove_worker(worker_id, self.now)
        self.workers.remove(worker_id)
        self.rerouted += len(moved)
        return moved

    # -- programs ------------------------------------------------------------------
    def _submit(self, request: LLMRequest) -> None:
        self._arrivals[request.request_id] = self.now
        self.control.submit(request, self.now)

    def _on_request_done(self, done: RequestDone) -> None:
        outcome = self.player.on_done(done, self.now)
        self._record_request(done, outcome)
        self._follow(done.session_id, outcome)

    def _follow(self, session_id: str, outcome: DoneOutcome) -> None:
        if outcome.tool_duration is not None:
            self.workers.external(self.now + outcome.tool_duration, TOOL_DONE, session_id)
            return
        for ended in outcome.ended:
            self.control.session_ended(ended, self.now)
        for r in outcome.resumed:  # a parent's wait on its subagents is over
            self.control.tool_finished(r.session_id, r.tool, r.seconds, self.now)
        for request in outcome.new_requests:
            self._submit(request)
        if outcome.program_finished:
            self._finish_program(outcome)

    def _finish_program(self, outcome: DoneOutcome) -> None:
        run = outcome.step.program
        self._running_programs -= 1
        self.control.program_ended(run.spec.program_id, self.now)
        self.rec.program(run.spec.program_id, run.spec.tenant, arrival=run.arrival,
                         finished=self.now,
                         lower_bound=program_lower_bound(run.spec, self.perf))
        if self._waiting_programs:
            self.workers.external(self.now, ARRIVE, self._waiting_programs.popleft())

    def _record_request(self, done: RequestDone, outcome: DoneOutcome) -> None:
        new_tokens = done.prompt_tokens - outcome.step.context_before
        self.rec.request(arrival=self._arrivals.pop(done.request_id),
                         first_scheduled=done.first_scheduled_at, finished=done.finished_at,
                         prompt=done.prompt_tokens, cached=done.cached_tokens,
                         prefilled=done.prefilled_tokens,
                         reprefilled=max(0, done.prefilled_tokens - new_tokens),
                         output=done.output_tokens, preemptions=done.preemptions)

    def _result(self, wall: float) -> SimResult:
        if self.cfg.check_integrity:
            for engine in self.engines.values():
                engine.check_integrity()
        busy = self.workers.retired_busy + sum(
            e.stats().busy_time for e in self.engines.values())
        finished = self.rec.programs["finished"]
        return SimResult.from_recorder(
            self.rec, workers=len(self.engines), busy_time=busy,
            makespan=max(finished) if finished else 0.0, wall_time_s=wall,
            events=self._events, unfinished=len(self.programs) - len(finished),
            config=self.cfg.model_dump())
