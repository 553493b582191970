"""The worker half of the simulator: adding and removing workers, handing them the
calls the core takes for them, and stepping their engines (fused decode runs up to the
horizon where that stays exact). A mixin of `runtime.sim.driver.Simulation`, whose
state (clock, event queue, core scheduler, engines, horizons) it shares.
"""
from __future__ import annotations

import math

from agentrt.runtime.core.messages import LLMRequest, RequestDone
from agentrt.runtime.sim.events import STEP_END


class WorkerStepping:
    """Needs from the simulation: `now`, `cfg`, `queue`, `scheduler`, `factory`,
    `engines`, `horizons`, `retention`, `gate`, `_step_event`, `_pending`,
    `_stealing`, `_retired_busy`, `rerouted`, `moves`, `transferred_tokens`."""

    # -- cluster -------------------------------------------------------------------
    def add_worker(self, worker_id: str) -> None:
        self.engines[worker_id] = engine = self.factory(worker_id)
        self._step_event[worker_id] = None
        self._min_iteration = engine.min_iteration_time  # same model on every worker
        self.scheduler.add_worker(worker_id)
        self.retention.attach(engine)
        if self.gate is not None:
            self.gate.admission.add_worker(
                worker_id, engine.kv.capacity_blocks * engine.block_size)

    def remove_worker(self, worker_id: str) -> list[LLMRequest]:
        """Take a worker out mid-run: its engine (KV, running calls) is gone; the core
        routes its queued and in-flight calls again (in-flight ones restart). Returns
        the re-routed calls."""
        if self.gate is not None:
            raise ValueError("worker changes are not supported with ThunderAgent admission")
        moved = self.scheduler.remove_worker(worker_id, self.now)
        handle = self._step_event.pop(worker_id)
        if handle is not None:
            self.queue.cancel(handle)
        self._pending.pop(worker_id, None)
        engine = self.engines.pop(worker_id)
        self._retired_busy += engine.stats().busy_time
        self.horizons.forget(worker_id)
        self.rerouted += len(moved)
        return moved

    # -- stepping ------------------------------------------------------------------
    def _pump(self, worker_id: str) -> None:
        requests = self.scheduler.take(worker_id, self.now)
        if self._stealing:
            self._move_sessions()
        if not requests:
            return
        engine = self.engines[worker_id]
        for request in requests:
            engine.submit(request, self.now)
        if self._step_event[worker_id] is None:
            self._start_step(worker_id)
        else:
            self._update_bound(worker_id)

    def _start_step(self, worker_id: str) -> None:
        engine = self.engines[worker_id]
        if self._step_event[worker_id] is not None or not engine.has_work():
            self._update_bound(worker_id)
            return
        if self.cfg.fuse_decode and self._may_fuse(worker_id):
            result = engine.step(self.now, self.horizons.horizon(worker_id))
        else:
            result = engine.step(self.now)
        if result.duration > 0.0 or result.events:
            end = self.now + result.duration
            finishes = any(isinstance(e, RequestDone) for e in result.events)
            self._pending[worker_id] = (end, finishes)
            self._step_event[worker_id] = self.queue.push(end, STEP_END, (worker_id, result))
        # else nothing was schedulable; a later submit or release wakes the worker
        self._update_bound(worker_id)

    def _may_fuse(self, worker_id: str) -> bool:
        """Whether a fused decode run stays exact under stealing and preemption. A
        worker with calls queued may preempt at any step end. A worker short of work
        steals at its step ends once some victim has calls to spare: one exists now
        (its calls may become worth stealing as loads change), or may appear without a
        submission when a policy requeues a preempted call. Those step one iteration
        at a time; other victims only appear by submission, past the horizon."""
        scheduler, preemption = self.scheduler, self.cfg.preemption
        if preemption and scheduler.has_queued(worker_id):
            return False
        if self._stealing:
            stealing, view = scheduler.stealing, scheduler.view
            if stealing.wants(view.workers[worker_id]) and (
                    preemption or stealing.victim(view, worker_id) is not None):
                return False
        return True

    def _balance(self) -> None:
        """After an event that can submit work: workers short of work steal."""
        if self._stealing:
            for worker_id in self.scheduler.thieves():
                self._pump(worker_id)

    def _move_sessions(self) -> None:
        """Sessions a `take` stole away: their KV is copied to the thief when it
        travels (before the thief gets their calls), and they are released at the
        source."""
        for move in self.scheduler.take_moves():
            self.moves += 1
            src, dst = self.engines.get(move.src), self.engines.get(move.dst)
            if src is None:
                continue
            if move.prefix is not None and dst is not None:
                self.transferred_tokens += dst.receive(
                    move.session_id, move.prefix, src.movable_blocks(move.prefix),
                    self.now, move.link)
            src.release(move.session_id, self.now)

    def _update_bound(self, worker_id: str) -> None:
        """Refresh the lower bound on this worker's next RequestDone (see horizon.py)."""
        end, finishes = self._pending.get(worker_id, (self.now, False))
        if not finishes:
            n = self.engines[worker_id].iterations_to_next_finish()
            end = math.inf if n is None else end + n * self._min_iteration
        self.horizons.set_bound(worker_id, end)
