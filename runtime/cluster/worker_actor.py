"""A worker actor: one engine, driven on the run clock, carrying out the control's
commands in the order they were decided.

A **stepped** engine (the simulated GPU) steps in a loop while it has work: each step
runs at the run clock's `now`, lasts its modeled duration times the run's time scale
in wall seconds, and its events and stats go to the scheduler after it. While busy,
steps are paced on a schedule (each ends `duration` after the previous one's scheduled
end) rather than slept back to back, so stepping and reporting do not add up into
drift from the modeled clock; a worker more than `CATCH_UP_S` behind its schedule
starts a new schedule instead of bursting.

A **realtime** engine runs on its own; its events are collected as they come and
reported in batches (one report per turn of this actor's event loop).

Commands (`runtime.cluster.commands`) arrive in numbered batches and are applied in
that order. A stolen session's calls whose KV is on its way from a peer (`Expect`)
wait until the copy lands (`receive_kv`) or `EXPECT_TIMEOUT_S` passes.
"""
from __future__ import annotations

import asyncio
import time
from typing import Any

import ray

from agentrt.kvcache.prefix import TokenChain
from agentrt.runtime import wire
from agentrt.runtime.cluster import commands as cmd
from agentrt.runtime.cluster.clock import RunClock
from agentrt.runtime.cluster.ordering import CallerOrder
from agentrt.runtime.core.messages import EngineEvent, LLMRequest
from agentrt.runtime.engines.base import Engine

CATCH_UP_S = 0.1
EXPECT_TIMEOUT_S = 10.0  # wall seconds a stolen session's calls wait for its KV


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
        self._expected: dict[str, list[LLMRequest]] = {}  # session -> calls held for its KV
        self._wake = asyncio.Event()
        self._loop_task: asyncio.Task | None = None
        self._events: list[EngineEvent] = []  # realtime: events not reported yet
        self._gpu_time = 0.0
        self._steps = 0

    async def start(self) -> bytes:
        """Start driving the engine; returns its wire-encoded EngineInfo."""
        if self._loop_task is None:
            if self.engine.info.capabilities.clock == "realtime":
                await self.engine.start(self._emit)
            else:
                self._loop_task = asyncio.get_running_loop().create_task(self._loop())
        return wire.encode(self.engine.info)

    async def set_peers(self, peers: dict[str, Any]) -> None:
        self.peers = {w: h for w, h in peers.items() if w != self.worker_id}

    async def apply(self, seq: int, batch: bytes) -> None:
        """Carry out command batch `seq` (after every earlier one)."""
        await self._order.turn("scheduler", seq)
        try:
            now = self.clock.now()
            for command in wire.decode(batch).commands:
                self._apply(command, now)
        finally:
            self._order.done("scheduler", seq)
        self._wake.set()

    async def receive_kv(self, session_id: str, prefix: Any, blocks: int, link: str) -> int:
        """A peer hands over a stolen session's KV: copy it in, then release the
        session's held calls. Returns the tokens received."""
        engine, now = self.engine, self.clock.now()
        tokens = 0
        if blocks and engine.info.capabilities.receive:
            tokens = engine.receive(session_id, TokenChain.from_wire(prefix), blocks, now, link)
        self._release_expected(session_id)
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
                "received_tokens": getattr(engine, "received_tokens", 0)}

    async def check_integrity(self) -> bool:
        self.engine.check_integrity()
        return True

    # -- commands ------------------------------------------------------------------
    def _apply(self, command: Any, now: float) -> None:
        engine = self.engine
        if isinstance(command, cmd.Send):
            for request in command.requests:
                held = self._expected.get(request.session_id)
                if held is not None:
                    held.append(request)
                else:
                    engine.submit(request, now)
        elif isinstance(command, cmd.Abort):
            for held in self._expected.values():
                held[:] = [r for r in held if r.request_id != command.request_id]
            engine.abort(command.request_id, now)
        elif isinstance(command, cmd.Release):
            engine.release(command.session_id, now)
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
            self._expected.setdefault(command.session_id, [])
            asyncio.get_running_loop().call_later(
                EXPECT_TIMEOUT_S, self._release_expected, command.session_id)
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
        peer = self.peers.get(command.dst)
        if peer is not None:
            peer.receive_kv.remote(command.session_id, command.prefix.to_wire(), blocks,
                                   command.link)

    def _release_expected(self, session_id: str) -> None:
        held = self._expected.pop(session_id, None)
        if held:
            now = self.clock.now()
            for request in held:
                self.engine.submit(request, now)
            self._wake.set()

    # -- driving the engine --------------------------------------------------------
    def _emit(self, events: list[EngineEvent]) -> None:
        """A realtime engine's events: reported on the next turn of the loop."""
        if not self._events:
            asyncio.get_running_loop().call_soon(self._report_emitted)
        self._events.extend(events)

    def _report_emitted(self) -> None:
        events, self._events = self._events, []
        self.scheduler.report.remote(self.worker_id, [wire.encode(e) for e in events],
                                     wire.encode(self.engine.stats()))

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
            result = engine.step(clock.to_run(wall))
            self._gpu_time += result.duration
            self._steps += 1
            start = wall if step_end is None or step_end < wall - CATCH_UP_S else step_end
            step_end = start + result.duration * clock.scale
            # A step that could schedule nothing (all memory pinned) still yields.
            await asyncio.sleep(max(step_end - time.time(), 1e-3 if
                                    result.duration == 0 else 0.0))
            await self.scheduler.report.remote(
                self.worker_id, [wire.encode(e) for e in result.events],
                wire.encode(engine.stats()))
