"""The scheduler actor: the core `Scheduler` driven by Ray messages on the real clock.

    runner ──chat(req)──▶ SchedulerActor ──submit([req])──▶ WorkerActor
    runner ◀──RequestDone── SchedulerActor ◀──report(events, stats)── WorkerActor

Every decision is the core's; this actor only keeps one future per call in flight and
moves wire-encoded messages. Its methods run on one event loop, so the core is never
entered concurrently.
"""
from __future__ import annotations

import asyncio
import time
from typing import Any

import ray

from runtime import wire
from runtime.core.messages import RequestDone
from runtime.core.scheduler import Scheduler


@ray.remote(num_cpus=0, max_concurrency=100_000)
class SchedulerActor:
    def __init__(self, queue: str, router: str, dispatch_window: int) -> None:
        self.core = Scheduler(queue=queue, router=router, dispatch_window=dispatch_window)
        self._workers: dict[str, Any] = {}
        self._futures: dict[str, asyncio.Future] = {}
        self._busy_time = 0.0

    async def register_worker(self, worker_id: str, handle: Any) -> None:
        self.core.add_worker(worker_id)
        self._workers[worker_id] = handle

    async def chat(self, request_bytes: bytes) -> bytes:
        request = wire.decode(request_bytes)
        future = asyncio.get_running_loop().create_future()
        self._futures[request.request_id] = future
        worker_id = self.core.submit(request, time.time())
        self._pump(worker_id)
        done: RequestDone = await future
        return wire.encode(done)

    async def report(self, worker_id: str, events: list[bytes], stats: bytes) -> None:
        now = time.time()
        self.core.on_stats(worker_id, wire.decode(stats))
        for data in events:
            event = wire.decode(data)
            self.core.on_event(event, now)
            if isinstance(event, RequestDone):
                future = self._futures.pop(event.request_id, None)
                if future is not None and not future.done():
                    future.set_result(event)
        self._pump(worker_id)

    async def abort(self, request_id: str) -> None:
        future = self._futures.pop(request_id, None)
        if future is not None and not future.done():
            future.cancel()
        worker_id = self.core.abort(request_id)
        if worker_id is not None:
            self._workers[worker_id].abort.remote(request_id)

    async def release_session(self, session_id: str) -> None:
        worker_id = self.core.forget_session(session_id)
        if worker_id is not None:
            self._workers[worker_id].release.remote(session_id)

    async def summary(self) -> dict[str, Any]:
        c = self.core.counters
        return {"submitted": c.submitted, "dispatched": c.dispatched,
                "completed": c.completed, "queued": self.core.num_queued,
                "inflight": self.core.num_inflight}

    def _pump(self, worker_id: str) -> None:
        requests = self.core.take(worker_id, time.time())
        if requests:
            self._workers[worker_id].submit.remote([wire.encode(r) for r in requests])
