"""The scheduler actor: the core `Scheduler` driven by Ray messages on the real clock.

    runner ──chat(req)──▶ SchedulerActor ──submit([req])──▶ WorkerActor
    runner ◀──RequestDone── SchedulerActor ◀──report(events, stats)── WorkerActor

Every decision is the core's; this actor only keeps one future per call in flight and
moves wire-encoded messages. Its methods run on one event loop, so the core is never
entered concurrently. Ray may start an async actor's calls out of order, so each
runner numbers its calls and `chat` hands them to the core in that order: steps that
call at the same instant are routed in the order they called, as in the simulator.

It also relays retention facts (tool timings, program ends) from runners to workers:
each worker gets those it has not had yet with its next `submit` (`FeedLog`, see
`runtime.cluster.retention`).

With stealing on, workers short of work steal calls still queued here after the events
that can submit work (a new call, a finished one), as in the simulator, and the sessions
that left a worker are released there (their KV sent along with the thief's calls when
stealing transfers it). (Preemption, which recalls calls already on a worker, is
simulator-only: an abort and the call's next dispatch could reach the worker out of
order.)
"""
from __future__ import annotations

import asyncio
import time
from typing import Any, Callable

import ray

from agentrt.runtime import wire
from agentrt.runtime.cluster.retention import FeedLog
from agentrt.runtime.core.messages import RequestDone
from agentrt.runtime.core.scheduler import Scheduler
from agentrt.runtime.core.stealing import StealConfig
from agentrt.runtime.engines.simulated.perf_model import PerfModel


class CallerOrder:
    """Lets each caller's calls through in the order of their sequence numbers
    (0, 1, 2, ... per caller), parking any that arrive early. Every call let through
    must report `done`, and every number must arrive (Ray delivers each call; runners
    stop calls with `abort`, never by cancelling them)."""

    def __init__(self) -> None:
        self._next: dict[str, int] = {}
        self._parked: dict[tuple[str, int], asyncio.Future] = {}

    async def turn(self, caller: str, seq: int) -> None:
        """Return once every earlier call of `caller` has been let through."""
        if self._next.get(caller, 0) != seq:
            future = asyncio.get_running_loop().create_future()
            self._parked[(caller, seq)] = future
            await future

    def done(self, caller: str, seq: int) -> None:
        """Call `seq` of `caller` is through: let the next one go."""
        self._next[caller] = seq + 1
        future = self._parked.pop((caller, seq + 1), None)
        if future is not None:
            future.set_result(None)


@ray.remote(num_cpus=0, max_concurrency=100_000)
class SchedulerActor:
    def __init__(self, queue: str, router: str, dispatch_window: int,
                 record: bool = False, *, queue_options: dict | None = None,
                 router_options: dict | None = None, stealing: StealConfig | None = None,
                 cost: PerfModel | None = None) -> None:
        """`stealing`: work stealing with these marks (None: off); `cost`: the
        workers' performance model, which prices moving a session's KV."""
        self.core = Scheduler(queue=queue, router=router, dispatch_window=dispatch_window,
                              record=record, queue_options=queue_options or {},
                              router_options=router_options or {}, stealing=stealing,
                              cost=cost)
        self._stealing = stealing is not None
        self.moves = 0  # sessions released on a worker because their calls were stolen
        self._workers: dict[str, Any] = {}
        self._futures: dict[str, asyncio.Future] = {}
        self._order = CallerOrder()
        self._busy_time = 0.0
        self._feed = FeedLog()

    async def register_workers(self, workers: list[tuple[str, Any]]) -> None:
        """Add workers in the given order: the order the router breaks ties by."""
        for worker_id, handle in workers:
            self.core.add_worker(worker_id)
            self._workers[worker_id] = handle
            self._feed.add_worker(worker_id)

    async def learn(self, fact: bytes) -> None:
        """A wire-encoded retention fact (`ToolTiming`, `ProgramEnded`) for the
        workers' duration models and TTL policies."""
        self._feed.append(fact)

    async def chat(self, request_bytes: bytes, caller: str = "", seq: int = 0) -> bytes:
        """Submit call number `seq` of `caller` (after its earlier ones); returns the
        wire-encoded RequestDone. Callers without an order may leave both out."""
        future = asyncio.get_running_loop().create_future()

        def submit() -> str:
            request = wire.decode(request_bytes)
            self._futures[request.request_id] = future
            return self.core.submit(request, time.time())

        await self._submit_in_turn(caller, seq, submit)
        done: RequestDone = await future
        return wire.encode(done)

    async def chat_forks(self, requests: list[bytes], caller: str = "",
                         seq: int = 0) -> list[bytes]:
        """Submit parallel samples of one step as a fork group (one worker, sent
        together, see `Scheduler.submit_forks`), as call `seq` of `caller`; returns
        their wire-encoded RequestDones in the order given, once all are done."""
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future] = []

        def submit() -> str:
            group = [wire.decode(data) for data in requests]
            for request in group:
                futures.append(loop.create_future())
                self._futures[request.request_id] = futures[-1]
            return self.core.submit_forks(group, time.time())

        await self._submit_in_turn(caller, seq, submit)
        return [wire.encode(done) for done in await asyncio.gather(*futures)]

    async def _submit_in_turn(self, caller: str, seq: int, submit: Callable[[], str]) -> None:
        """Run `submit` (which queues calls and returns their worker) as call `seq` of
        `caller`, after its earlier ones, then send the worker what it can take and
        let idle workers steal."""
        if caller:
            await self._order.turn(caller, seq)
        try:
            worker_id = submit()
            self._pump(worker_id)
            self._balance()
        finally:
            if caller:
                self._order.done(caller, seq)

    async def report(self, worker_id: str, events: list[bytes], stats: bytes) -> None:
        now = time.time()
        self.core.on_stats(worker_id, wire.decode(stats))
        finished = False
        for data in events:
            event = wire.decode(data)
            self.core.on_event(event, now)
            if isinstance(event, RequestDone):
                finished = True
                future = self._futures.pop(event.request_id, None)
                if future is not None and not future.done():
                    future.set_result(event)
        self._pump(worker_id)
        if finished:
            self._balance()

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
                "inflight": self.core.num_inflight, "stolen": c.stolen,
                "moves": self.moves}

    async def dispatch_log(self) -> list[tuple[str, str]]:
        """The core's decisions so far as plain (worker id, request id) pairs; empty
        unless constructed with `record`."""
        return [tuple(d) for d in self.core.dispatch_log]

    def _balance(self) -> None:
        """After an event that can submit work: workers short of work steal."""
        if self._stealing:
            for worker_id in self.core.thieves():
                self._pump(worker_id)

    def _pump(self, worker_id: str) -> None:
        requests = self.core.take(worker_id, time.time())
        transfers = self._move_sessions() if self._stealing else []
        if requests or transfers:
            self._workers[worker_id].submit.remote([wire.encode(r) for r in requests],
                                                   self._feed.take(worker_id), transfers)

    def _move_sessions(self) -> list[tuple[str, Any, int, str]]:
        """Sessions the last `take` stole away: released at their source. Those whose
        KV travels (kv_move="transfer") go to the thief with its calls, so the copy
        lands before the calls run: (session, `TokenChain.to_wire()` of the prefix,
        blocks, link), the blocks being the core's estimate of what the source held."""
        transfers = []
        for move in self.core.take_moves():
            self.moves += 1
            if move.prefix is not None:
                blocks = move.kv_tokens // move.prefix.block_size
                transfers.append((move.session_id, move.prefix.to_wire(), blocks,
                                  move.link))
            self._workers[move.src].release.remote(move.session_id)
        return transfers
