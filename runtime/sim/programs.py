"""Programs, not traces, in the simulator: `@program`s run by the same runner code as on
Ray (`execute_program`: step contexts, sampling and forks, the planner session, budgets
and deadlines), their LLM calls served by simulated engines through the same cluster
control, all on the virtual clock (`runtime.sim.loop`).

    ProgramSimulation(program, inputs, config).run()
      ARRIVE ─▶ execute_program(...) as a task on the VirtualLoop
                 ctx.chat / ctx.sample ─▶ SimBackend ─▶ ClusterControl.submit
                 ◀── RequestDone, delivered at the STEP_END that finished the call
      a program's end lets the next one in (closed loop) ─▶ ProgramResult

Step bodies must be `async def` (a plain function would run in a thread, off the
virtual clock) and their tools run inline; a tool that models time awaits
`asyncio.sleep`, which the virtual clock honours.
"""
from __future__ import annotations

import asyncio
import inspect
import math
import time
from typing import Any, Sequence

from agentrt.programs import ProgramDef
from agentrt.runtime.config import DEFAULT_PRICES
from agentrt.runtime.core.budget import Price
from agentrt.runtime.core.messages import LLMRequest, RequestDone
from agentrt.runtime.engines.simulated.responder import Responder
from agentrt.runtime.engines.tokenizer import SimpleTokenizer
from agentrt.runtime.results import ProgramResult
from agentrt.runtime.runner.choices import PlanningSettings
from agentrt.runtime.runner.execution import execute_program
from agentrt.runtime.sim.config import SimConfig
from agentrt.runtime.sim.driver import Simulation
from agentrt.runtime.sim.events import ARRIVE, SAMPLE
from agentrt.runtime.sim.loop import VirtualLoop
from agentrt.toolmgr import ToolManager, ToolRegistry
from agentrt.toolmgr.executors import InlineExecutor


class SimBackend:
    """The runner's ChatBackend in the simulator: straight into the cluster control,
    each call one control batch at the virtual `now`."""

    def __init__(self, sim: ProgramSimulation) -> None:
        self.sim = sim
        self.futures: dict[str, asyncio.Future] = {}

    def _call(self, act) -> None:
        control, now = self.sim.control, self.sim.now
        with control.batch(now):
            act(now)

    async def program_started(self, program_id: str) -> None:
        self._call(lambda now: self.sim.control.program_started(program_id, now))

    async def program_finished(self, program_id: str) -> None:
        self._call(lambda now: self.sim.control.program_ended(program_id, now))

    async def chat(self, request: LLMRequest) -> RequestDone:
        future = asyncio.get_running_loop().create_future()
        self.futures[request.request_id] = future
        self.sim.arrivals[request.request_id] = self.sim.now
        self._call(lambda now: self.sim.control.submit(request, now))
        return await future

    async def chat_forks(self, requests: list[LLMRequest]) -> list[RequestDone]:
        loop = asyncio.get_running_loop()
        futures = [loop.create_future() for _ in requests]
        for request, future in zip(requests, futures):
            self.futures[request.request_id] = future
            self.sim.arrivals[request.request_id] = self.sim.now
        self._call(lambda now: self.sim.control.submit_forks(requests, now))
        return list(await asyncio.gather(*futures))

    async def abort(self, request_id: str) -> bool:
        self.futures.pop(request_id, None)
        self.sim.arrivals.pop(request_id, None)
        sent = []
        self._call(lambda now: sent.append(self.sim.control.abort(request_id, now)))
        return sent[0]

    async def release_session(self, session_id: str) -> None:
        self._call(lambda now: self.sim.control.session_ended(session_id, now))

    def tool_finished(self, session_id: str, tool: str, seconds: float,
                      prior_s: float | None) -> None:
        self._call(lambda now: self.sim.control.tool_finished(session_id, tool, seconds,
                                                              now, prior_s))

    def resolve(self, done: RequestDone) -> None:
        future = self.futures.pop(done.request_id, None)
        if future is not None and not future.done():
            future.set_result(done)


class ProgramSimulation(Simulation):
    """Runs `program` once per input in the simulator (closed loop of
    `config.concurrency` programs, or Poisson arrivals), and returns each program's
    `ProgramResult` from `run_programs()`; `run()` gives the simulator's metrics."""

    def __init__(self, program: ProgramDef | Sequence[ProgramDef],
                 inputs: Sequence[dict[str, Any]], config: SimConfig | None = None, *,
                 responder: Responder | None = None,
                 planning: PlanningSettings | None = None,
                 prices: dict[str, Price] | None = None,
                 program_ids: Sequence[str] | None = None) -> None:
        """`program`: one program for every input, or one per input."""
        self.loop = VirtualLoop(self)  # first: `now` is the loop's clock
        super().__init__([], config, responder=responder)
        self.inputs = list(inputs)
        many = not isinstance(program, ProgramDef)
        self.defs = list(program) if many else [program] * len(self.inputs)
        if len(self.defs) != len(self.inputs):
            raise ValueError(f"{len(self.defs)} programs for {len(self.inputs)} inputs; give "
                             "one program, or one per input")
        for p in dict.fromkeys(self.defs):
            _check_async_steps(p, self.inputs[self.defs.index(p)])
        self.ids = list(program_ids) if program_ids is not None else [
            f"{p.name}-{i:05d}" for i, p in enumerate(self.defs)]
        self.planning = planning
        self.prices = dict(prices if prices is not None else DEFAULT_PRICES)
        self.backend = SimBackend(self)
        self.arrivals: dict[str, float] = {}
        self.results: list[ProgramResult] = []
        self.tools = ToolManager(ToolRegistry(), executors={
            "inline": InlineExecutor(), "thread": InlineExecutor()})
        self.tokenizer = SimpleTokenizer()
        self.workers.defer_steps = True
        self._tasks: set[asyncio.Task] = set()
        self._finished: asyncio.Event | None = None

    def next_timer_at(self) -> float:
        return self.loop.next_timer_at()

    def settle(self) -> None:
        self.workers.flush_steps()

    # -- the loop's event source ---------------------------------------------------
    def next_event_time(self) -> float:
        return self.queue.peek_time()

    def handle_next_event(self) -> None:
        self.now, kind, payload = self.queue.pop()
        self._handle(kind, payload)

    @property
    def now(self) -> float:
        return self.loop.time()

    @now.setter
    def now(self, value: float) -> None:
        self.loop.set_time(value)

    # -- running -------------------------------------------------------------------
    def run_programs(self) -> list[ProgramResult]:
        """Run every program to its end; results in input order."""
        self.programs = [_Launch(pid, p, kwargs)
                         for pid, p, kwargs in zip(self.ids, self.defs, self.inputs)]
        start = time.perf_counter()
        self._schedule_arrivals()
        self._start_sampling()
        try:
            self.loop.run_until_complete(self._all_done())
        finally:
            self._cancel_leftovers()
            self.loop.close()
        self.result = self._result(time.perf_counter() - start)
        order = {pid: i for i, pid in enumerate(self.ids)}
        return sorted(self.results, key=lambda r: order[r.program_id])

    def _cancel_leftovers(self) -> None:
        """After a failed run, programs still waiting are cancelled and unwound (their
        cleanup releases what they hold), so nothing is left pending."""
        tasks = [t for t in self._tasks if not t.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            try:
                self.loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            except Exception:  # the run already failed; its first error is the one to see
                pass

    async def _all_done(self) -> None:
        self._finished = asyncio.Event()
        if len(self.results) < len(self.programs):
            await self._finished.wait()

    def _on_arrive(self, launch: _Launch) -> None:
        self._running_programs += 1
        task = self.loop.create_task(self._execute(launch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _execute(self, launch: _Launch) -> None:
        clock, now = self.loop.time, self.now
        result = await execute_program(
            launch.program, (), dict(launch.kwargs), program_id=launch.program_id,
            arrival=now, backend=self.backend, tools=self.tools, tokenizer=self.tokenizer,
            default_model=self.cfg.served_models()[0], served_models=self._served(),
            block_size=self.cfg.block_size, prices=self.prices, clock=clock,
            planning=self.planning)
        self.results.append(result)
        if len(self.results) == len(self.programs):
            self._finished.set()
        self._running_programs -= 1
        self.rec.program(result.program_id, result.tenant, arrival=result.arrival,
                         finished=result.finished_at, lower_bound=float("nan"))
        if self._waiting_programs:
            self.workers.external(self.now, ARRIVE, self._waiting_programs.popleft())

    def _on_request_done(self, done: RequestDone) -> None:
        arrival = self.arrivals.pop(done.request_id, done.queued_at)
        self.rec.request(arrival=arrival, first_scheduled=done.first_scheduled_at,
                         finished=done.finished_at, prompt=done.prompt_tokens,
                         cached=done.cached_tokens, prefilled=done.prefilled_tokens,
                         reprefilled=done.recomputed_tokens, output=done.output_tokens,
                         preemptions=done.preemptions)
        self.backend.resolve(done)

    def _on_sample(self, payload) -> None:
        """Samples go on while anything is scheduled: programs blocked on nothing at
        all must let the loop find out (`Stalled`) rather than sample forever."""
        running, self._running_programs = self._running_programs, 0
        super()._on_sample(payload)
        self._running_programs = running
        if not len(self.queue) and math.isfinite(self.loop.next_timer_at()):
            self.queue.push(self.now + self.cfg.sample_interval_s, SAMPLE, None)

    def _served(self) -> tuple[str, ...]:
        if self.planning is not None:
            return self.planning.served
        return (*self.cfg.served_models(), *sorted(self.cfg.stand_ins))


class _Launch:
    """One program to start: its id and its inputs."""

    __slots__ = ("program_id", "program", "kwargs", "arrival", "tenant")

    def __init__(self, program_id: str, program: ProgramDef, kwargs: dict[str, Any]) -> None:
        self.program_id, self.program, self.kwargs = program_id, program, kwargs
        self.arrival, self.tenant = 0.0, "default"


def _check_async_steps(program: ProgramDef, inputs: dict[str, Any]) -> None:
    """Every step must be `async def` in the simulator (checked on one input's graph,
    before anything runs)."""
    for node in program.build(**inputs).nodes:
        if node.kind == "step" and not inspect.iscoroutinefunction(node.target.fn):
            raise ValueError(
                f"step {node.name!r} is a plain function; the simulator runs steps on its "
                "virtual clock, so make it `async def` (a plain function would run in a "
                "thread, off that clock)")
