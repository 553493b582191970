"""A worker actor: one engine, driven on the run clock, carrying out the control's
commands in the order they were decided.

A **stepped** engine (the simulated GPU) steps in a loop while it has work: each step
runs at the run clock's `now`, lasts its modeled duration times the run's time scale
in wall seconds, and its events and stats go to the scheduler after it when the step
changed something the core reads (`StepReports`): the scheduler's work grows with
calls, not with engine iterations. While busy,
steps are paced on a schedule (each ends `duration` after the previous one's scheduled
end) rather than slept back to back, so stepping and reporting do not add up into
drift from the modeled clock; a worker more than `CATCH_UP_S` behind its schedule
starts a new schedule instead of bursting.

A **realtime** engine runs on its own; its events are collected as they come and
reported in batches (one report per turn of this actor's event loop).

Commands (`runtime.cluster.commands`) arrive in numbered batches and are applied in
that order. Their prompts come as deltas on what this worker holds of each session
(`runtime.cluster.session_sync`); one whose base it does not hold is asked of the
scheduler whole before the command is applied (later batches wait). A stolen session's
calls whose KV is on its way from a peer (`Expect`) wait until the copy lands
(`receive_kv`) or `EXPECT_TIMEOUT_S` passes; the copy may come before the Expect, and
both name their move (`KVHolds`).
"""
from __future__ import annotations

import asyncio
import logging
import math
import os
import time
from typing import Any

import ray

from agentrt.kvcache.prefix import TokenChain
from agentrt.runtime import wire
from agentrt.runtime.cluster import commands as cmd
from agentrt.runtime.cluster.clock import RunClock
from agentrt.runtime.cluster.kv_holds import KVHolds
from agentrt.runtime.cluster.ordering import CallerOrder
from agentrt.runtime.cluster.session_sync import Mismatch, SessionReceiver
from agentrt.runtime.core.messages import EngineEvent, EngineStats, LLMRequest, RequestDone
from agentrt.runtime.engines.base import Engine, failed_call, submit_or_refuse

log = logging.getLogger(__name__)

CATCH_UP_S = 0.1
EXPECT_TIMEOUT_S = 10.0  # wall seconds a stolen session's calls wait for its KV
RESEND_TIMEOUT_S = 30.0  # wall seconds to wait for a prompt asked of the scheduler whole
STATS_EVERY_S = 1.0  # the scheduler's copy of a busy worker's stats is at most this old


class StepReports:
    """Which engine steps a worker reports to the scheduler: a step with events; a
    step after which what the core reads of the engine (`EngineStats.decision_view`)
    differs from the last report; every step while the scheduler watches them
    (`WatchSteps`, see `ClusterControl.step_ends_matter`); and, so that the rest of the
    stats the scheduler shows (metrics) is never older than `every_s` wall seconds, a
    step whose stats changed that long after the last report. No other step can change
    a decision, so none other is sent."""

    def __init__(self, every_s: float = STATS_EVERY_S,
                 clock: Any = time.monotonic) -> None:
        self.every_s = every_s
        self.watch = False
        self._clock = clock
        self._view: tuple | None = None
        self._stats: EngineStats | None = None
        self._at = -math.inf

    def wanted(self, events: list, stats: EngineStats) -> bool:
        if events or self.watch or stats.decision_view() != self._view:
            return True
        return self._clock() - self._at >= self.every_s and stats != self._stats

    def sent(self, stats: EngineStats) -> None:
        self._view, self._stats, self._at = stats.decision_view(), stats, self._clock()


@ray.remote(num_cpus=0)
class WorkerActor:
    def __init__(self, worker_id: str, engine_factory: Any, clock: RunClock,
                 scheduler: Any) -> None:
        self.worker_id = worker_id
        self.engine: Engine = engine_factory(worker_id)
        self.clock = clock
        self.scheduler = scheduler
        self.peers: dict[str, Any] = {}
        self._order = CallerOrder()
        self._holds = KVHolds()  # calls of stolen sessions held for their KV
        self._wake = asyncio.Event()
        self._loop_task: asyncio.Task | None = None
        self._events: list[EngineEvent] = []  # realtime: events not reported yet
        self._live: dict[str, LLMRequest] = {}  # calls submitted, not finished
        self.failure: str | None = None  # why the engine stopped, if it did
        self._gpu_time = 0.0
        self._steps = 0
        self._sync = SessionReceiver()  # what this worker holds of each session's prompt
        self._reports = StepReports()
        self.reports_sent = 0

    async def start(self) -> bytes:
        """Start driving the engine; returns its wire-encoded EngineInfo."""
        if self._loop_task is None:
            if self.engine.info.capabilities.clock == "realtime":
                await self.engine.start(self._emit)
            else:
                self._loop_task = asyncio.get_running_loop().create_task(self._loop())
        return wire.encode(self.engine.info)

    async def ping(self) -> bool:
        """The scheduler's health check: False once the engine failed."""
        return self.failure is None

    async def process_id(self) -> int:
        """The worker's process (for operators: where its logs and stacks are)."""
        return os.getpid()

    async def set_peers(self, peers: dict[str, Any]) -> None:
        self.peers = {w: h for w, h in peers.items() if w != self.worker_id}

    async def apply(self, seq: int, batch: bytes) -> None:
        """Carry out command batch `seq` (after every earlier one)."""
        await self._order.turn("scheduler", seq)
        try:
            for command in wire.decode(batch).commands:
                if await self._resolved(command):
                    self._apply(command, self.clock.now())
        finally:
            self._order.done("scheduler", seq)
        self._wake.set()

    async def receive_kv(self, session_id: str, prefix: Any, blocks: int, link: str,
                         move: int) -> int:
        """A peer hands over a stolen session's KV (move `move`): copy it in, then
        release the calls that move's Expect held (it may not have come yet). Returns
        the tokens received."""
        engine, now = self.engine, self.clock.now()
        tokens = 0
        if blocks and engine.info.capabilities.receive:
            tokens = engine.receive(session_id, TokenChain.from_wire(prefix), blocks, now, link)
        self._submit_held(self._holds.landed(session_id, move))
        return tokens

    async def stats(self) -> dict[str, Any]:
        s, engine = self.engine.stats(), self.engine
        return {"worker_id": self.worker_id, "engine": type(engine).__name__,
                "model": engine.info.model, "gpu_time_s": self._gpu_time,
                "steps": self._steps, "running": s.running, "waiting": s.waiting,
                "kv_capacity_blocks": s.kv_capacity_blocks, "kv_used_blocks": s.kv_used_blocks,
                "prefix_hit_tokens": s.prefix_hit_tokens,
                "prefix_miss_tokens": s.prefix_miss_tokens,
                "kv_pinned_blocks": s.kv_pinned_blocks,
                "retained": dict(getattr(engine, "retained", {})),
                "prefetched_tokens": getattr(engine, "prefetched_tokens", 0),
                "received_tokens": getattr(engine, "received_tokens", 0),
                "reports": self.reports_sent, "held_sessions": len(self._sync)}

    async def check_integrity(self) -> bool:
        self.engine.check_integrity()
        return True

    # -- commands ------------------------------------------------------------------
    def _resolve(self, command: Any) -> None:
        """Rebuild the command's prompts from their deltas (raises Mismatch)."""
        sync = self._sync
        if isinstance(command, cmd.Send):
            for request in command.requests:
                sync.request(request)
        elif isinstance(command, (cmd.Retain, cmd.Prefetch, cmd.PauseHintCmd,
                                  cmd.ResumeHintCmd, cmd.HandOver)):
            command.prefix = sync.chain(command.session_id, command.prefix)

    async def _resolved(self, command: Any) -> bool:
        """Rebuild the command's prompts, asking the scheduler for any whose base this
        worker does not hold. False if one cannot be had: a call it sends fails with
        the reason, any other such command is skipped (logged)."""
        while True:
            try:
                self._resolve(command)
                return True
            except Mismatch as miss:
                whole, why = None, miss.reason
                try:
                    data = await asyncio.wait_for(self.scheduler.resend.remote(
                        self.worker_id, miss.session_id, miss.kind, wire.encode(miss.delta)),
                        RESEND_TIMEOUT_S)
                    found = wire.decode(data)
                    whole = found.chain if miss.kind == "chain" else found.messages
                except Exception as error:  # the scheduler is gone or did not answer
                    why = f"{why}; asking the scheduler failed: {type(error).__name__}"
                if whole is None:
                    return self._unresolved(command, miss, why)
                targets = command.requests if isinstance(command, cmd.Send) else [command]
                replaced = False
                for target in targets:
                    for name in ("prefix", "messages"):
                        if getattr(target, name, None) is miss.delta:
                            setattr(target, name, whole)
                            replaced = True
                if not replaced:  # not this command's delta: never loop on it
                    return self._unresolved(command, miss, f"{why}; no field carried it")

    def _unresolved(self, command: Any, miss: Mismatch, why: str) -> bool:
        reason = (f"worker {self.worker_id} lost the prompt of session "
                  f"{miss.session_id!r} and the scheduler no longer has it ({why})")
        log.error("%s; skipping %s", reason, type(command).__name__)
        if isinstance(command, cmd.Send):
            now = self.clock.now()
            self._emit([failed_call(r, self.worker_id, now, reason)
                        for r in command.requests])
        return False

    def _apply(self, command: Any, now: float) -> None:
        engine = self.engine
        if isinstance(command, cmd.Send):
            for request in command.requests:
                if not self._holds.hold(request):
                    self._submit(request, now)
        elif isinstance(command, cmd.Abort):
            self._holds.abort(command.request_id)
            self._live.pop(command.request_id, None)
            engine.abort(command.request_id, now)
        elif isinstance(command, cmd.Release):
            engine.release(command.session_id, now)
            self._sync.forget(command.session_id)
        elif isinstance(command, cmd.Forget):
            self._sync.forget(command.session_id)
        elif isinstance(command, cmd.WatchSteps):
            self._reports.watch = command.on
        elif isinstance(command, cmd.Retain):
            engine.retain(command.session_id, command.prefix, command.decision, now,
                          command.program_id)
        elif isinstance(command, cmd.Prefetch):
            engine.prefetch(command.session_id, command.prefix, now)
        elif isinstance(command, cmd.PauseHintCmd):
            engine.pause_hint(command.session_id, command.prefix, command.hint, now)
        elif isinstance(command, cmd.ResumeHintCmd):
            engine.resume_hint(command.session_id, command.prefix, now)
        elif isinstance(command, cmd.Expect):
            if self._holds.expect(command.session_id, command.move):
                asyncio.get_running_loop().call_later(
                    EXPECT_TIMEOUT_S, self._expect_timed_out, command.session_id,
                    command.move)
        elif isinstance(command, cmd.HandOver):
            self._hand_over(command, now)
        else:
            raise ValueError(f"unknown worker command {type(command).__name__}")

    def _hand_over(self, command: cmd.HandOver, now: float) -> None:
        """Send what this engine holds of a stolen session to its thief, then forget
        the session here."""
        engine = self.engine
        blocks = 0
        if engine.info.capabilities.receive:
            blocks = engine.movable_blocks(command.prefix)
        engine.release(command.session_id, now)
        self._sync.forget(command.session_id)
        peer = self.peers.get(command.dst)
        if peer is not None:
            peer.receive_kv.remote(command.session_id, command.prefix.to_wire(), blocks,
                                   command.link, command.move)

    def _expect_timed_out(self, session_id: str, move: int) -> None:
        self._submit_held(self._holds.timed_out(session_id, move))

    def _submit_held(self, held: list[LLMRequest]) -> None:
        if held:
            now = self.clock.now()
            for request in held:
                self._submit(request, now)
            self._wake.set()

    def _submit(self, request: LLMRequest, now: float) -> None:
        """A call the engine refuses goes back to the scheduler as a RequestDone naming
        the limit, so its step gets the error and its place is freed."""
        if self.failure is not None:
            self._emit([failed_call(request, self.worker_id, now, self.failure)])
            return
        refused = submit_or_refuse(self.engine, request, now)
        if refused is not None:
            self._emit([refused])
        else:
            self._live[request.request_id] = request

    # -- driving the engine --------------------------------------------------------
    def _emit(self, events: list[EngineEvent]) -> None:
        """Events outside a step (a realtime engine's, refusals): reported on the next
        turn of the loop."""
        if not self._events:
            asyncio.get_running_loop().call_soon(self._report_emitted)
        self._events.extend(events)
        self._forget_finished(events)

    def _forget_finished(self, events: list[EngineEvent]) -> None:
        for event in events:
            if isinstance(event, RequestDone):
                self._live.pop(event.request_id, None)

    def _engine_failed(self, error: BaseException) -> None:
        """The engine raised: every call it held fails with the reason, and the worker
        asks to leave routing (new calls it still receives fail the same way)."""
        self.failure = (f"worker {self.worker_id}'s engine failed: "
                        f"{type(error).__name__}: {error}")
        log.error("%s", self.failure, exc_info=error)
        now = self.clock.now()
        self._emit([failed_call(r, self.worker_id, now, self.failure)
                    for r in self._live.values()])
        self.scheduler.worker_failed.remote(self.worker_id, self.failure)

    def _report_emitted(self) -> None:
        events, self._events = self._events, []
        stats = self.engine.stats()
        self._reports.sent(stats)
        self.reports_sent += 1
        self.scheduler.report.remote(self.worker_id, [wire.encode(e) for e in events],
                                     wire.encode(stats), time.time())

    async def _loop(self) -> None:
        engine, clock = self.engine, self.clock
        step_end: float | None = None  # wall time the last step was scheduled to end
        while True:
            if not engine.has_work():
                self._wake.clear()
                await self._wake.wait()
                step_end = None
                continue
            wall = time.time()
            try:
                result = engine.step(clock.to_run(wall))
            except Exception as error:  # the engine's bug: fail its calls, leave routing
                self._engine_failed(error)
                return
            self._forget_finished(result.events)
            self._gpu_time += result.duration
            self._steps += 1
            start = wall if step_end is None or step_end < wall - CATCH_UP_S else step_end
            step_end = start + result.duration * clock.scale
            # A step that could schedule nothing (all memory pinned) still yields.
            await asyncio.sleep(max(step_end - time.time(), 1e-3 if
                                    result.duration == 0 else 0.0))
            stats = engine.stats()
            if self._reports.wanted(result.events, stats):
                self._reports.sent(stats)
                self.reports_sent += 1
                await self.scheduler.report.remote(
                    self.worker_id, [wire.encode(e) for e in result.events],
                    wire.encode(stats), time.time())
