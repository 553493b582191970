"""A worker actor: one simulated GPU, stepping its engine on the real clock.

The loop steps the engine while it has work, sleeps each step's modeled duration times
the run's time scale, and reports the step's events and stats to the scheduler (which
answers by sending more work). With no work it waits for `submit`.

While the engine stays busy, steps are paced on a schedule (each ends `duration` after
the previous one's scheduled end) rather than slept back to back, so the time spent
stepping and reporting does not add up into drift from the modeled clock; a worker
more than `CATCH_UP_S` behind its schedule starts a new one instead of bursting.

With a TTL policy, the worker decides what to keep of a session whose call ended in
a tool call at the end of that call's step, before reporting it (see
`runtime.cluster.retention`); the scheduler's retention feed arrives with `submit`.
"""
from __future__ import annotations

import asyncio
import time
from typing import Any

import ray

from agentrt.kvcache.prefix import TokenChain
from agentrt.runtime import wire
from agentrt.runtime.cluster.retention import WorkerRetention
from agentrt.runtime.core.retention import ModelClock
from agentrt.runtime.engines.base import Engine

CATCH_UP_S = 0.1


@ray.remote(num_cpus=0)
class WorkerActor:
    def __init__(self, worker_id: str, engine_factory: Any, time_scale: float,
                 scheduler: Any, duration_min_samples: int = 100) -> None:
        """`engine_factory.ttl` names the TTL policy (None: no retention)."""
        self.worker_id = worker_id
        self.engine: Engine = engine_factory(worker_id)
        self.time_scale = time_scale
        self.scheduler = scheduler
        self.retention: WorkerRetention | None = None
        if engine_factory.ttl is not None:
            self.retention = WorkerRetention(
                engine_factory.ttl, self.engine, ModelClock(time.time(), time_scale),
                duration_min_samples)
        self._wake = asyncio.Event()
        self._loop_task: asyncio.Task | None = None
        self._gpu_time = 0.0
        self._steps = 0

    async def start(self) -> str:
        if self._loop_task is None:
            self._loop_task = asyncio.get_running_loop().create_task(self._loop())
        return self.worker_id

    async def submit(self, requests: list[bytes], feed: list[bytes] | None = None,
                     transfers: list[tuple[str, Any, int, str]] | None = None) -> None:
        """Queue wire-encoded calls; `feed`: retention facts not yet sent here;
        `transfers`: sessions moving here with their KV, received before the calls
        are queued: (session id, `TokenChain.to_wire()` of the prefix, blocks, link)."""
        now = time.time()
        if self.retention is not None and feed:
            self.retention.learn(feed)
        for session_id, prefix, blocks, link in transfers or ():
            self.engine.receive(session_id, TokenChain.from_wire(prefix), blocks, now, link)
        for data in requests:
            request = wire.decode(data)
            self.engine.submit(request, now)
            if self.retention is not None:
                self.retention.submitted(request)
        self._wake.set()

    async def abort(self, request_id: str) -> None:
        self.engine.abort(request_id, time.time())
        if self.retention is not None:
            self.retention.aborted(request_id)

    async def release(self, session_id: str) -> None:
        self.engine.release(session_id, time.time())
        if self.retention is not None:
            self.retention.released(session_id)

    async def stats(self) -> dict[str, Any]:
        s = self.engine.stats()
        return {"worker_id": self.worker_id, "gpu_time_s": self._gpu_time,
                "steps": self._steps, "running": s.running, "waiting": s.waiting,
                "kv_capacity_blocks": s.kv_capacity_blocks, "kv_used_blocks": s.kv_used_blocks,
                "prefix_hit_tokens": s.prefix_hit_tokens,
                "prefix_miss_tokens": s.prefix_miss_tokens,
                "kv_pinned_blocks": s.kv_pinned_blocks,
                "pin_decisions": dict(self.retention.decisions) if self.retention else {},
                "prefetches": self.retention.prefetched if self.retention else 0,
                "received_tokens": getattr(self.engine, "received_tokens", 0)}

    async def check_integrity(self) -> bool:
        self.engine.check_integrity()
        return True

    def _schedule_prefetches(self) -> None:
        """Run each prefetch the retention decided at its time, on this loop."""
        loop = asyncio.get_running_loop()
        for at, session_id, chain in self.retention.take_prefetches():
            loop.call_later(max(0.0, at - time.time()), self._prefetch, session_id, chain)

    def _prefetch(self, session_id: str, chain: Any) -> None:
        self.retention.prefetch(session_id, chain, time.time())

    async def _loop(self) -> None:
        step_end: float | None = None  # scheduled end of the last step while busy
        while True:
            if not self.engine.has_work():
                self._wake.clear()
                await self._wake.wait()
                step_end = None
                continue
            now = time.time()
            result = self.engine.step(now)
            self._gpu_time += result.duration
            self._steps += 1
            start = now if step_end is None or step_end < now - CATCH_UP_S else step_end
            step_end = start + result.duration * self.time_scale
            # A step that could schedule nothing (all memory pinned) still yields.
            await asyncio.sleep(max(step_end - time.time(), 1e-3 if
                                    result.duration == 0 else 0.0))
            if self.retention is not None:
                self.retention.step_finished(result.events, time.time())
                self._schedule_prefetches()
            await self.scheduler.report.remote(
                self.worker_id, [wire.encode(e) for e in result.events],
                wire.encode(self.engine.stats()))
