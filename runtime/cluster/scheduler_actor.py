"""The scheduler actor: the cluster control driven by Ray messages on the run clock.

    runner ──chat / tool_finished / release_session / program_*──▶ SchedulerActor
    runner ◀──RequestDone (with the TTL decision's PinNote)────────  │ ClusterControl
                                                                      ▼ ActorTransport
    WorkerActor ──report(events, stats)──▶ SchedulerActor ──apply(batch)──▶ WorkerActor

Every decision is the control's; this actor only keeps one future per call in flight,
moves wire-encoded messages, and converts clocks (runners measure wall seconds; the
core thinks in run seconds, see `RunClock`). Its methods run on one event loop, so the
control is never entered concurrently, and each method is one control batch. Ray may
start an async actor's calls out of order, so each runner numbers its calls and they
are handed to the control in that order (`CallerOrder`): steps that call at the same
instant are routed in the order they called, as in the simulator.

Load: workers report only engine steps that change what the core reads (see
`WorkerActor`), and the workers are told to report every step while a rule reads the
time at each (`ClusterControl.step_ends_matter`, sent as `WatchSteps`). A call's
prompt arrives and leaves as a delta on what its receiver holds of the session
(`session_sync`): runners' calls are rebuilt here against what this actor holds of
each session (a call whose base it lacks is answered `SyncMismatch` and sent again
whole), and each worker's commands are encoded against what that worker holds. A
session's state here and on its workers goes when the session or its program ends.
"""
from __future__ import annotations

import asyncio
import logging
import math
import time
from typing import Any, Callable

import ray
from ray.exceptions import RayActorError

from agentrt.runtime import wire
from agentrt.runtime.cluster import commands as cmd
from agentrt.runtime.cluster.clock import RunClock
from agentrt.runtime.cluster.load_probe import LoadProbe
from agentrt.runtime.cluster.ordering import CallerOrder
from agentrt.runtime.cluster.session_sync import (
    Mismatch, SessionReceiver, SessionSender, SyncMismatch, Whole,
)
from agentrt.runtime.core.control import ClusterControl, ControlSettings
from agentrt.runtime.core.messages import LLMRequest, RequestDone
from agentrt.runtime.core.pools import NoWorkerError
from agentrt.runtime.engines.base import failed_call
from agentrt.runtime.core.stealing import SessionMove

log = logging.getLogger(__name__)

HEALTH_INTERVAL_S = 1.0  # how often every worker is asked whether it is alive


class ActorTransport:
    """The control's `Transport` over Ray: each worker's commands from one control call
    go out as one batch (`WorkerActor.apply`), numbered per worker so the worker
    applies batches in the order they were decided. Prompts are encoded as the command
    is queued, against what the worker will hold of the session by then
    (`SessionSender`, one per worker); releasing a session there, or handing it to a
    thief, drops it from that worker's view."""

    def __init__(self, on_wake: Callable[[float], None],
                 digests: Callable[[LLMRequest], list[int] | None] = lambda r: None) -> None:
        self.handles: dict[str, Any] = {}
        self.senders: dict[str, SessionSender] = {}
        self._pending: dict[str, list] = {}
        self._seq: dict[str, int] = {}
        self._moves = 0  # KV hand-overs so far: each one's number pairs its two commands
        self._on_wake = on_wake
        self._digests = digests
        self.probe: LoadProbe | None = None
        self.to_size: list[tuple[str, Any]] = []  # (request id, its Send) to size

    def _sender(self, worker_id: str) -> SessionSender:
        sender = self.senders.get(worker_id)
        if sender is None:
            sender = self.senders[worker_id] = SessionSender()
        return sender

    def _to(self, worker_id: str, command: Any) -> None:
        self._pending.setdefault(worker_id, []).append(command)

    def flush(self) -> None:
        pending, self._pending = self._pending, {}
        for worker_id, commands in pending.items():
            handle = self.handles.get(worker_id)
            if handle is None:
                continue
            seq = self._seq.get(worker_id, 0)
            self._seq[worker_id] = seq + 1
            handle.apply.remote(seq, wire.encode(cmd.Batch(commands)))

    def send(self, worker_id: str, requests: list[LLMRequest]) -> None:
        sender, digests = self._sender(worker_id), self._digests
        encoded = [sender.request(r, digests(r)) for r in requests]
        self._to(worker_id, cmd.Send(encoded))
        probe = self.probe
        if probe is not None and probe.size_turns:
            self.to_size += [(r.request_id, cmd.Send([r])) for r in encoded
                             if probe.wants_size(r.request_id)]

    def abort(self, worker_id: str, request_id: str) -> None:
        self._to(worker_id, cmd.Abort(request_id))

    def release(self, worker_id: str, session_id: str) -> None:
        self._sender(worker_id).forget(session_id)
        self._to(worker_id, cmd.Release(session_id))

    def _chain(self, worker_id: str, session_id: str, prefix):
        return self._sender(worker_id).chain(session_id, prefix)

    def retain(self, worker_id, session_id, prefix, decision, program_id) -> None:
        self._to(worker_id, cmd.Retain(session_id, self._chain(worker_id, session_id, prefix),
                                       decision, program_id))

    def prefetch(self, worker_id, session_id, prefix) -> None:
        self._to(worker_id, cmd.Prefetch(session_id, self._chain(worker_id, session_id,
                                                                 prefix)))

    def pause_hint(self, worker_id, session_id, prefix, hint) -> None:
        self._to(worker_id, cmd.PauseHintCmd(
            session_id, self._chain(worker_id, session_id, prefix), hint))

    def resume_hint(self, worker_id, session_id, prefix) -> None:
        self._to(worker_id, cmd.ResumeHintCmd(
            session_id, self._chain(worker_id, session_id, prefix)))

    def move(self, move: SessionMove) -> None:
        """The source forgets the session; the thief gets its chain whole (from the
        source with the KV, and with its next call: anything it held of the session
        from before is dropped first)."""
        src, dst, session_id = move.src, move.dst, move.session_id
        if self._sender(dst).forget(session_id):
            self._to(dst, cmd.Forget(session_id))
        if move.prefix is None:  # recomputed at the thief
            self.release(src, session_id)
            return
        self._moves += 1
        self._to(dst, cmd.Expect(session_id, self._moves))
        self._to(src, cmd.HandOver(session_id, self._chain(src, session_id, move.prefix),
                                   dst, move.link, self._moves))
        self._sender(src).forget(session_id)

    def session_over(self, session_id: str) -> None:
        """The session ended: every worker still holding its prompt drops it."""
        for worker_id, sender in self.senders.items():
            if sender.forget(session_id):
                self._to(worker_id, cmd.Forget(session_id))

    def watch(self, worker_id: str, on: bool) -> None:
        self._to(worker_id, cmd.WatchSteps(on))

    def drop_worker(self, worker_id: str) -> None:
        self.handles.pop(worker_id, None)
        self.senders.pop(worker_id, None)

    def wake_at(self, time: float) -> None:
        self._on_wake(time)


@ray.remote(num_cpus=0, max_concurrency=100_000)
class SchedulerActor:
    def __init__(self, settings: ControlSettings, clock: RunClock, cost: Any = None,
                 costs: dict[str, Any] | None = None, health_timeout_s: float = 20.0) -> None:
        """`cost`: the workers' performance model, which prices moving and rebuilding
        a session's KV (`costs`: per model, with several worker pools). A worker that
        does not answer a health check within `health_timeout_s` leaves routing."""
        self.clock = clock
        self.health_timeout_s = health_timeout_s
        self.sessions = SessionReceiver()  # what this actor holds of runners' sessions
        self.transport = ActorTransport(self._wake_at, self.sessions.digests)
        self.control = ClusterControl(settings, self.transport, cost, costs)
        self._watching: set[str] = set()  # workers told to report every step
        self._futures: dict[str, asyncio.Future] = {}
        self._order = CallerOrder()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = math.inf
        self._watchdog: asyncio.Task | None = None
        self.lost: dict[str, str] = {}  # worker -> why it left routing
        self.probe = self.transport.probe = LoadProbe()

    async def register_workers(self, workers: list[tuple[bytes, Any]]) -> list[str]:
        """Add workers (wire-encoded EngineInfo, handle) in the given order: the order
        the router breaks ties by. Every worker learns its peers (for KV hand-overs)."""
        now = self.clock.now()
        for info_bytes, handle in workers:
            info = wire.decode(info_bytes)
            self.control.add_worker(info, now)
            self.transport.handles[info.worker_id] = handle
        peers = dict(self.transport.handles)
        await asyncio.gather(*(h.set_peers.remote(peers) for h in peers.values()))
        if self._watchdog is None:
            self._watchdog = asyncio.get_running_loop().create_task(self._watch())
        return list(peers)

    async def ping(self) -> bool:
        return True

    async def worker_failed(self, worker_id: str, reason: str) -> None:
        """A worker's engine failed (its calls were already failed with the reason):
        it leaves routing."""
        self._lose(worker_id, reason)

    async def program_abandoned(self, program_id: str) -> None:
        """A program whose runner died: whatever the control keeps of it goes."""
        now = self.clock.now()
        with self.control.batch(now):
            self._program_over(program_id, now)
        self._flush(now)

    # -- runners -------------------------------------------------------------------
    async def program_started(self, program_id: str, caller: str = "", seq: int = 0) -> None:
        await self._in_turn(caller, seq, lambda now: self.control.program_started(
            program_id, now))

    async def program_ended(self, program_id: str, caller: str = "", seq: int = 0) -> None:
        await self._in_turn(caller, seq, lambda now: self._program_over(program_id, now))

    async def chat(self, request_bytes: bytes, caller: str = "", seq: int = 0,
                   sent_at: float = 0.0) -> bytes:
        """Submit call number `seq` of `caller` (after its earlier ones); returns the
        wire-encoded RequestDone. `sent_at`: the caller's wall time at sending, for
        the load probe."""
        future = asyncio.get_running_loop().create_future()

        def submit(now: float) -> None:
            request = wire.decode(request_bytes)
            if self.probe.wants_size(request.request_id):
                self.probe.sized(request.request_id, "runner", len(request_bytes))
            try:
                self.sessions.request(request)
            except Mismatch as miss:
                future.set_result(SyncMismatch(request.request_id, str(miss)))
                return
            request = self._received(request)
            self._futures[request.request_id] = future
            try:
                self.control.submit(request, now)
            except NoWorkerError as error:
                self._resolve(failed_call(request, "", now, str(error)))

        await self._in_turn(caller, seq, submit, "chat", sent_at)
        done: RequestDone | SyncMismatch = await future
        return wire.encode(done)

    async def chat_forks(self, requests: list[bytes], caller: str = "",
                         seq: int = 0, sent_at: float = 0.0) -> list[bytes]:
        """Submit parallel samples of one step as a fork group (one worker, sent
        together, see `Scheduler.submit_forks`); their wire-encoded RequestDones in the
        order given, once all are done (one SyncMismatch if the group's prompt must be
        sent whole)."""
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future] = []
        refused: list[SyncMismatch] = []

        def submit(now: float) -> None:
            group = [wire.decode(data) for data in requests]
            try:
                for request in group:
                    self.sessions.request(request)
            except Mismatch as miss:
                refused.append(SyncMismatch(group[0].request_id, str(miss)))
                return
            group = [self._received(request) for request in group]
            for request in group:
                futures.append(loop.create_future())
                self._futures[request.request_id] = futures[-1]
            try:
                self.control.submit_forks(group, now)
            except NoWorkerError as error:
                for request in group:
                    self._resolve(failed_call(request, "", now, str(error)))

        await self._in_turn(caller, seq, submit, "chat", sent_at)
        if refused:
            return [wire.encode(refused[0])]
        return [wire.encode(done) for done in await asyncio.gather(*futures)]

    async def abort(self, request_id: str, caller: str = "", seq: int = 0) -> bool:
        """Cancel a call; True if it had reached a worker (its prompt is charged)."""
        future = self._futures.pop(request_id, None)
        if future is not None and not future.done():
            future.cancel()
        sent = []
        await self._in_turn(caller, seq, lambda now: sent.append(
            self.control.abort(request_id, now)))
        return bool(sent and sent[0])

    async def release_session(self, session_id: str, caller: str = "", seq: int = 0) -> None:
        def release(now: float) -> None:
            self.control.session_ended(session_id, now)
            self.sessions.forget(session_id)
            self.transport.session_over(session_id)

        await self._in_turn(caller, seq, release)

    async def tool_finished(self, session_id: str, tool: str, seconds: float,
                            prior_s: float | None, caller: str = "", seq: int = 0) -> None:
        """A tool call ran `seconds` (run seconds; `prior_s` likewise)."""
        await self._in_turn(caller, seq, lambda now: self.control.tool_finished(
            session_id, tool, seconds, now, prior_s))

    # -- workers -------------------------------------------------------------------
    async def report(self, worker_id: str, events: list[bytes], stats: bytes,
                     sent_at: float = 0.0) -> None:
        entered = time.time()
        if worker_id not in self.transport.handles:
            return  # a worker given up: its calls were routed again
        now = self.clock.now()
        with self.control.batch(now):
            self.control.on_step(worker_id, [wire.decode(e) for e in events],
                                 wire.decode(stats), now, self._resolve)
        self._flush(now)
        self._probed("report", sent_at, entered)

    async def resend(self, worker_id: str, session_id: str, kind: str,
                     delta: bytes) -> bytes:
        """A worker could not rebuild a prompt from `delta` (a ChainDelta or
        MessagesDelta sent to it): the whole value, as a wire-encoded `Whole` (empty
        when it is no longer kept)."""
        sender = self.transport.senders.get(worker_id)
        value = sender.whole(session_id, kind, wire.decode(delta)) if sender else None
        return wire.encode(Whole(chain=value) if kind == "chain" else Whole(messages=value))

    async def held_sessions(self) -> dict[str, Any]:
        """Sessions whose prompt state this actor keeps: of runners' calls, and per
        worker what it was sent (all empty once every program ended)."""
        return {"runners": self.sessions.sessions(),
                "workers": {w: s.sessions() for w, s in self.transport.senders.items()
                            if len(s)}}

    # -- load ----------------------------------------------------------------------
    async def load_figures(self) -> dict[str, Any]:
        """The load probe's samples (`runtime.cluster.load_probe`)."""
        return self.probe.figures()

    async def reset_load_probe(self, size_turns: list[int]) -> None:
        """Start the probe afresh, sizing the calls of turns `size_turns`."""
        self.probe.reset(frozenset(size_turns))

    # -- reading -------------------------------------------------------------------
    async def summary(self) -> dict[str, Any]:
        c, control = self.control.scheduler.counters, self.control
        return {"submitted": c.submitted, "dispatched": c.dispatched,
                "completed": c.completed, "queued": control.scheduler.num_queued,
                "inflight": control.scheduler.num_inflight, "stolen": c.stolen,
                "moves": control.moves, "pin_decisions": dict(control.retention.decided),
                "prefetches": control.retention.prefetches, "lost_workers": dict(self.lost),
                "rerouted": c.rerouted}

    async def worker_infos(self) -> list[bytes]:
        """Each worker's wire-encoded EngineInfo, in the order they joined."""
        return [wire.encode(info) for info in self.control.workers.values()]

    async def metrics(self) -> dict[str, Any]:
        """What a metrics scrape shows of the cluster: the scheduler's counts, and per
        worker its queue here and its engine's last stats (plain values)."""
        control = self.control
        out = await self.summary()
        queues = control.scheduler.queue_lengths()
        stats = control.worker_stats()
        workers = {}
        for worker_id, info in control.workers.items():
            s = stats.get(worker_id)
            workers[worker_id] = {
                "model": info.model, "queued": queues.get(worker_id, 0),
                "running": s.running if s else 0, "waiting": s.waiting if s else 0,
                "kv_capacity_blocks": s.kv_capacity_blocks if s else
                (info.kv_capacity_blocks or 0),
                "kv_used_blocks": s.kv_used_blocks if s else 0,
                "kv_pinned_blocks": s.kv_pinned_blocks if s else 0,
                "kv_cached_blocks": s.kv_cached_blocks if s else 0,
                "block_size": info.block_size,
                "prefix_hit_tokens": s.prefix_hit_tokens if s else 0,
                "prefix_miss_tokens": s.prefix_miss_tokens if s else 0}
        out["workers"] = workers
        return out

    async def decisions(self) -> list[tuple[str, list]]:
        """The control's decisions so far, as (record type, fields) pairs; empty
        unless recording."""
        return [(type(d).__name__, list(d)) for d in self.control.scheduler.decisions]

    # -- internals -----------------------------------------------------------------
    async def _in_turn(self, caller: str, seq: int, act: Callable[[float], None],
                       kind: str = "", sent_at: float = 0.0) -> None:
        """Run `act(now)` as call `seq` of `caller`, after its earlier ones, as one
        control batch; then send the workers what was decided. `kind` names the call
        for the load probe."""
        entered = time.time()
        if caller:
            await self._order.turn(caller, seq)
        try:
            now = self.clock.now()
            with self.control.batch(now):
                act(now)
            self._flush(now)
        finally:
            if caller:
                self._order.done(caller, seq)
        if kind:
            self._probed(kind, sent_at, entered)

    def _probed(self, kind: str, sent_at: float, entered: float) -> None:
        """A call is done with: its latency, then the sizes of what it sent."""
        self.probe.took(kind, sent_at, entered)
        transport = self.transport
        if transport.to_size:
            for request_id, send in transport.to_size:
                self.probe.sized(request_id, "worker", len(wire.encode(send)))
            transport.to_size = []

    def _program_over(self, program_id: str, now: float) -> None:
        """Everything kept of the program goes: the control's state, and its sessions'
        prompts here and on the workers."""
        self.control.program_ended(program_id, now)
        for session_id in self.sessions.forget_program(program_id):
            self.transport.session_over(session_id)

    def _received(self, request: LLMRequest) -> LLMRequest:
        """A runner's call, with its program's arrival moved to the run clock."""
        request.program_arrival = self.clock.to_run(request.program_arrival)
        return request

    # -- supervision ---------------------------------------------------------------
    async def _watch(self) -> None:
        """Ask every worker whether it is alive; one that died or does not answer
        leaves routing, and its calls are routed again."""
        while True:
            await asyncio.sleep(HEALTH_INTERVAL_S)
            workers = list(self.transport.handles.items())
            answers = await asyncio.gather(
                *(asyncio.wait_for(h.ping.remote(), self.health_timeout_s)
                  for _, h in workers),
                return_exceptions=True)
            for (worker_id, _), answer in zip(workers, answers):
                if isinstance(answer, asyncio.TimeoutError):
                    self._lose(worker_id, f"it did not answer a health check within "
                                          f"{self.health_timeout_s:g} s (hung?)")
                elif isinstance(answer, RayActorError):
                    self._lose(worker_id, f"its process died ({type(answer).__name__})")
                elif answer is False:
                    self._lose(worker_id, "its engine failed")

    def _lose(self, worker_id: str, reason: str) -> None:
        """Take a worker out of routing: the engine and its KV are gone, so its queued
        and in-flight calls are routed to the others (those in flight restart)."""
        if worker_id not in self.transport.handles:
            return
        self.transport.drop_worker(worker_id)
        self._watching.discard(worker_id)
        self.lost[worker_id] = reason
        log.warning("worker %s left routing: %s", worker_id, reason)
        now = self.clock.now()
        with self.control.batch(now):
            self.control.remove_worker(worker_id, now)
            self.control.pump_all(now)
        self._flush(now)

    def _flush(self, now: float) -> None:
        """Send the workers what the control decided; calls left with no worker to
        serve them fail to their callers with the reason."""
        control = self.control
        if control.watches_steps():
            transport, watching = self.transport, self._watching
            for worker_id in transport.handles:
                wanted = control.step_ends_matter(worker_id)
                if wanted != (worker_id in watching):
                    (watching.add if wanted else watching.discard)(worker_id)
                    transport.watch(worker_id, wanted)
        self.transport.flush()
        for done in self.control.take_stranded(now):
            self._resolve(done)

    def _resolve(self, done: RequestDone) -> None:
        future = self._futures.pop(done.request_id, None)
        if future is not None and not future.done():
            future.set_result(done)

    def _wake_at(self, at: float) -> None:
        """The control wants `on_timer` at run time `at`."""
        if at >= self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
        loop = asyncio.get_running_loop()
        delay = max(0.0, self.clock.to_wall(at) - self.clock.to_wall(self.clock.now()))
        self._timer_at = at
        self._timer = loop.call_later(delay, self._on_timer)

    def _on_timer(self) -> None:
        self._timer, self._timer_at = None, math.inf
        now = self.clock.now()
        with self.control.batch(now):
            self.control.on_timer(now)
        self._flush(now)
        following = self.control.next_timer()
        if math.isfinite(following):
            self._wake_at(following)
