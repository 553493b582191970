"""The simulator's transport: the cluster control's decisions carried out on simulated
engines at the virtual clock's `now`, and the stepping of those engines.

A worker steps while it has work: each step is a STEP_END event at its end, fused over
several decode iterations up to the horizon where that stays exact (see `horizon.py`).
Calls the control sends to a worker whose step is running are queued in its engine and
picked up by its next step; a worker whose step just ended steps again once the
control has handled that step (`step_again`).
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

from agentrt.kvcache.prefix import TokenChain
from agentrt.runtime.core.messages import LLMRequest, RequestDone
from agentrt.runtime.core.retention.decision import PauseHint, PinDecision
from agentrt.runtime.core.stealing import SessionMove
from agentrt.runtime.engines.base import SteppedEngine, submit_or_refuse
from agentrt.runtime.sim.events import REFUSED, STEP_END, TIMER, EventQueue
from agentrt.runtime.sim.horizon import Horizons

if TYPE_CHECKING:
    from agentrt.runtime.sim.driver import Simulation


class SimWorkers:
    """The engines of a simulation and the `Transport` the control drives them by."""

    def __init__(self, sim: Simulation) -> None:
        self.sim = sim
        self.queue: EventQueue = sim.queue
        self.engines: dict[str, SteppedEngine] = {}
        self.horizons = Horizons()
        self._step_event: dict[str, int | None] = {}
        # Per worker: (end of its pending step, whether that step finishes a call).
        self._pending: dict[str, tuple[float, bool]] = {}
        self._min_iteration = math.inf
        self._timers: set[float] = set()  # TIMER events pending
        self._exact: dict = {}  # worker -> its engine's exact next-finish bound
        self.retired_busy = 0.0  # busy time of workers removed mid-run
        self.transferred_tokens = 0  # KV copied to thieves (kv_move="transfer")
        # Programs on the virtual loop react to a finished call after the event that
        # finished it: their workers start stepping once every reaction at this
        # instant is in (`flush_steps`), so a step never starts ahead of a submission
        # made at the same time.
        self.defer_steps = False
        self._to_step: dict[str, None] = {}

    # -- cluster -------------------------------------------------------------------
    def add(self, engine: SteppedEngine) -> None:
        worker_id = engine.worker_id
        self.engines[worker_id] = engine
        self._step_event[worker_id] = None
        exact = getattr(engine, "finish_bound", None)
        if exact is None:
            self._min_iteration = min(self._min_iteration, engine.min_iteration_time)
        else:
            self._exact[worker_id] = exact

    def remove(self, worker_id: str) -> None:
        handle = self._step_event.pop(worker_id)
        if handle is not None:
            self.queue.cancel(handle)
        self._pending.pop(worker_id, None)
        self._exact.pop(worker_id, None)
        engine = self.engines.pop(worker_id)
        self.retired_busy += engine.stats().busy_time
        self.horizons.forget(worker_id)

    # -- the Transport -------------------------------------------------------------
    def send(self, worker_id: str, requests: list[LLMRequest]) -> None:
        engine, now = self.engines[worker_id], self.sim.now
        for request in requests:
            refused = submit_or_refuse(engine, request, now)
            if refused is not None:  # its caller hears of it as of any finished call
                self.external(now, REFUSED, (worker_id, refused))
        if self._step_event[worker_id] is None:
            self.step_again(worker_id)
        else:
            self._update_bound(worker_id)

    def abort(self, worker_id: str, request_id: str) -> None:
        self.engines[worker_id].abort(request_id, self.sim.now)

    def release(self, worker_id: str, session_id: str) -> None:
        self.engines[worker_id].release(session_id, self.sim.now)

    def retain(self, worker_id: str, session_id: str, prefix: TokenChain,
               decision: PinDecision, program_id: str) -> None:
        self.engines[worker_id].retain(session_id, prefix, decision, self.sim.now, program_id)

    def prefetch(self, worker_id: str, session_id: str, prefix: TokenChain) -> None:
        engine = self.engines.get(worker_id)
        if engine is not None and engine.prefetch(session_id, prefix, self.sim.now):
            self.sim.prefetches += 1

    def pause_hint(self, worker_id: str, session_id: str, prefix: TokenChain,
                   hint: PauseHint) -> None:
        self.engines[worker_id].pause_hint(session_id, prefix, hint, self.sim.now)

    def resume_hint(self, worker_id: str, session_id: str, prefix: TokenChain) -> None:
        self.engines[worker_id].resume_hint(session_id, prefix, self.sim.now)

    def move(self, move: SessionMove) -> None:
        src, dst = self.engines.get(move.src), self.engines.get(move.dst)
        if src is None:
            return
        now = self.sim.now
        if move.prefix is not None and dst is not None:
            self.transferred_tokens += dst.receive(
                move.session_id, move.prefix, src.movable_blocks(move.prefix), now, move.link)
        src.release(move.session_id, now)

    def wake_at(self, time: float) -> None:
        time = max(time, self.sim.now)
        if time not in self._timers:
            self._timers.add(time)
            self.external(time, TIMER, time)

    def timer_fired(self, time: float) -> None:
        self._timers.discard(time)

    # -- stepping ------------------------------------------------------------------
    def external(self, time: float, kind: int, payload) -> None:
        """Arrivals, tool completions, timers and worker changes: the events that can
        submit work or change an engine's free blocks (the horizon's inputs)."""
        self.queue.push(time, kind, payload)
        self.horizons.external_pushed(time)

    def step_ended(self, worker_id: str) -> None:
        """The worker's pending step has ended (its STEP_END is being handled)."""
        self._step_event[worker_id] = None
        self._pending.pop(worker_id, None)

    def step_again(self, worker_id: str) -> None:
        """Start the worker's next step if it has work and none is running (with
        `defer_steps`, once `flush_steps` is called)."""
        if self.defer_steps:
            self._to_step[worker_id] = None
            return
        self._step(worker_id)

    def flush_steps(self) -> None:
        """Start the steps deferred so far, in the order they were asked for."""
        while self._to_step:
            worker_id = next(iter(self._to_step))
            del self._to_step[worker_id]
            if worker_id in self.engines:
                self._step(worker_id)

    def _step(self, worker_id: str) -> None:
        engine, now = self.engines[worker_id], self.sim.now
        if self._step_event[worker_id] is not None or not engine.has_work():
            self._update_bound(worker_id)
            return
        if self.sim.cfg.fuse_decode and self._may_fuse(worker_id):
            horizon = self.horizons.horizon(worker_id)
            if self.defer_steps:  # programs on the loop: a timer may submit work
                horizon = min(horizon, self.sim.next_timer_at())
            result = engine.step(now, horizon)
        else:
            result = engine.step(now)
        if result.duration > 0.0 or result.events:
            end = now + result.duration
            finishes = any(isinstance(e, RequestDone) for e in result.events)
            self._pending[worker_id] = (end, finishes)
            self._step_event[worker_id] = self.queue.push(end, STEP_END, (worker_id, result))
        # else nothing was schedulable; a later submit or release wakes the worker
        self._update_bound(worker_id)

    def _may_fuse(self, worker_id: str) -> bool:
        """Whether a fused decode run stays exact: its step ends change nothing the
        core reads, so only the time, which matters only under the rules of
        `ClusterControl.step_ends_matter` (preemption, stealing); workers those rules
        watch step one iteration at a time. Other victims only appear by submission,
        past the horizon."""
        return not self.sim.control.step_ends_matter(worker_id)

    def _update_bound(self, worker_id: str) -> None:
        """Refresh the lower bound on this worker's next RequestDone (see horizon.py);
        an engine that knows it exactly says so (`finish_bound`)."""
        engine = self.engines[worker_id]
        exact = self._exact.get(worker_id)
        if exact is not None:
            self.horizons.set_bound(worker_id, exact())
            return
        end, finishes = self._pending.get(worker_id, (self.sim.now, False))
        if not finishes:
            n = engine.iterations_to_next_finish()
            end = math.inf if n is None else end + n * self._min_iteration
        self.horizons.set_bound(worker_id, end)
