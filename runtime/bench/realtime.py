"""Program traces on real-clock engines, through the same cluster control the simulator
and the Ray runtime drive: the simulator's counterpart on the wall clock.

    RealtimeRun(programs, cfg, engines).run()
        ARRIVE (closed loop: `cfg.concurrency` programs in flight, spread over `ramp_s`)
          ─▶ ProgramPlayer turns ─▶ ClusterControl (queue, route, retention decisions)
          ─▶ engine.submit ... engine emits RequestDone ─▶ control.on_step
          ─▶ player: tool wait (loop.call_later) or step / program end

The engines are `RealtimeEngine`s started here (a vLLM engine, or `InlineEngine`); the
player (`runtime.sim.player`) grows each session exactly as the simulator does, so the
same `ProgramSpec`s send the same counted calls (same prompts, reply lengths, tools and
tool durations) to a real engine and to a simulated one. Retention decisions go to the
engine that ran the call (`Transport.retain`). Single process, one asyncio loop; no
stealing or host tier (realtime engines here have neither). The run clock is
`time.monotonic()`, the realtime engines' default clock, so that a retention decision's
deadline means the same to the control and to the engine.
"""
from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from agentrt.programs.workloads.spec import ProgramSpec
from agentrt.runtime.core.control import ClusterControl
from agentrt.runtime.core.messages import EngineEvent, LLMRequest, RequestDone
from agentrt.runtime.sim.config import SimConfig
from agentrt.runtime.sim.player import DoneOutcome, ProgramPlayer


@dataclass
class RealtimeResult:
    """Per program: arrival and finish (run seconds); per call: the RequestDone."""

    arrivals: dict[str, float] = field(default_factory=dict)
    finished: dict[str, float] = field(default_factory=dict)
    calls: list[RequestDone] = field(default_factory=list)
    wall_s: float = 0.0
    decided: dict[str, int] = field(default_factory=dict)

    @property
    def jct(self) -> dict[str, float]:
        return {p: self.finished[p] - self.arrivals[p] for p in self.finished}

    @property
    def mean_jct(self) -> float:
        jct = self.jct
        return sum(jct.values()) / len(jct) if jct else float("nan")

    @property
    def cached_fraction(self) -> float:
        prompt = sum(d.prompt_tokens for d in self.calls)
        return sum(d.cached_tokens for d in self.calls) / prompt if prompt else 0.0


class RealtimeRun:
    """See the module doc. `cfg` gives the control's policies and the arrival process
    ("closed" only); `engines` are started by `run` and stopped by the caller."""

    def __init__(self, programs: Iterable[ProgramSpec], cfg: SimConfig,
                 engines: Sequence, cost=None) -> None:
        if cfg.arrival != "closed":
            raise ValueError(f"RealtimeRun plays closed-loop arrivals; got {cfg.arrival!r}")
        self.cfg, self.programs = cfg, list(programs)
        self.engines = {e.worker_id: e for e in engines}
        self.control = ClusterControl(cfg.control_settings(), self, cost=cost)
        self.player = ProgramPlayer(cfg.model, cfg.block_size)
        self.result = RealtimeResult()
        self._waiting: deque[ProgramSpec] = deque()
        self._running = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._done: asyncio.Event | None = None
        self._error: BaseException | None = None

    @staticmethod
    def now() -> float:
        return time.monotonic()

    async def run(self, timeout_s: float) -> RealtimeResult:
        """Play every program; raises TimeoutError after `timeout_s` wall seconds."""
        self._loop, self._done = asyncio.get_running_loop(), asyncio.Event()
        for worker_id, engine in self.engines.items():
            if engine.info.capabilities.clock != "realtime":
                raise ValueError(f"{worker_id} is not a realtime engine")
            await engine.start(lambda events, w=worker_id: self._guard(self._on_events,
                                                                        w, events))
            self.control.add_worker(engine.info, self.now())
        first = self.programs[:self.cfg.concurrency]
        self._waiting.extend(self.programs[self.cfg.concurrency:])
        spacing = self.cfg.ramp_s / max(1, len(first))
        for i, spec in enumerate(first):
            self._loop.call_later(i * spacing, self._guard, self._arrive, spec)
        started = time.monotonic()
        await asyncio.wait_for(self._done.wait(), timeout_s)
        if self._error is not None:
            raise self._error
        self.result.wall_s = time.monotonic() - started
        self.result.decided = dict(self.control.retention.decided)
        return self.result

    # -- events --------------------------------------------------------------------
    def _guard(self, handler, *args) -> None:
        """Run an event handler as one control batch; a failure ends the run."""
        if self._done.is_set():
            return
        try:
            with self.control.batch(self.now()):
                handler(*args)
        except BaseException as error:  # surfaced by run()
            self._error = error
            self._done.set()

    def _arrive(self, spec: ProgramSpec) -> None:
        now = self.now()
        self._running += 1
        self.result.arrivals[spec.program_id] = now
        self.control.program_started(spec.program_id, now)
        _, requests = self.player.start(spec, now)
        for request in requests:
            self.control.submit(request, now)

    def _on_events(self, worker_id: str, events: list[EngineEvent]) -> None:
        engine = self.engines[worker_id]
        self.control.on_step(worker_id, events, engine.stats(), self.now(), self._deliver)

    def _deliver(self, done: RequestDone) -> None:
        self.result.calls.append(done)
        self._follow(done.session_id, self.player.on_done(done, self.now()))

    def _tool_done(self, session_id: str) -> None:
        now = self.now()
        step = self.player.step_of(session_id)
        turn = step.spec.turns[step.turn]
        self.control.tool_finished(session_id, turn.tool, turn.tool_duration, now)
        self._follow(session_id, self.player.after_tool(session_id, now))

    def _follow(self, session_id: str, outcome: DoneOutcome) -> None:
        now = self.now()
        if outcome.tool_duration is not None:
            self._loop.call_later(outcome.tool_duration, self._guard, self._tool_done,
                                  session_id)
            return
        if outcome.step_finished:
            self.control.session_ended(session_id, now)
        for request in outcome.new_requests:
            self.control.submit(request, now)
        if outcome.program_finished:
            program_id = outcome.step.program.spec.program_id
            self.result.finished[program_id] = now
            self.control.program_ended(program_id, now)
            self._running -= 1
            if self._waiting:
                self._arrive(self._waiting.popleft())
            elif not self._running:
                self._done.set()

    # -- the Transport -------------------------------------------------------------
    def send(self, worker_id: str, requests: list[LLMRequest]) -> None:
        now = self.now()
        for request in requests:
            self.engines[worker_id].submit(request, now)

    def abort(self, worker_id: str, request_id: str) -> None:
        self.engines[worker_id].abort(request_id, self.now())

    def release(self, worker_id: str, session_id: str) -> None:
        self.engines[worker_id].release(session_id, self.now())

    def retain(self, worker_id, session_id, prefix, decision, program_id) -> None:
        self.engines[worker_id].retain(session_id, prefix, decision, self.now(), program_id)

    def prefetch(self, worker_id, session_id, prefix) -> None:
        """No host tier on realtime engines here."""

    def pause_hint(self, worker_id, session_id, prefix, hint) -> None:
        """No eviction hints on realtime engines here."""

    def resume_hint(self, worker_id, session_id, prefix) -> None:
        """No eviction hints on realtime engines here."""

    def move(self, move) -> None:
        raise RuntimeError("RealtimeRun runs without stealing (configure stealing=False)")

    def wake_at(self, at: float) -> None:
        self._loop.call_later(max(0.0, at - self.now()), self._guard, self._timer)

    def _timer(self) -> None:
        self.control.on_timer(self.now())
