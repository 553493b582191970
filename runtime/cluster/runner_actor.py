"""Program runner actors: they execute user step code.

A runner runs many programs concurrently on its event loop; step bodies that are plain
functions run in threads. LLM calls go to the scheduler actor; tools run here, under
toolmgr. Finished spans travel back with each program's result. Each tool call's
measured duration goes to the scheduler for the cluster's duration model, and each
program's start and end, so that every policy and worker drops it when it is over.
"""
from __future__ import annotations

import itertools
import time
import uuid
from typing import Any

import ray
from ray.exceptions import RayActorError

from agentrt.runtime import tracing, wire
from agentrt.runtime.cluster.clock import RunClock
from agentrt.runtime.cluster.session_sync import SessionSender, SyncMismatch
from agentrt.runtime.runner.choices import PlanningSettings
from agentrt.runtime.core.budget import Price
from agentrt.runtime.core.messages import LLMRequest, RequestDone
from agentrt.runtime.runner.errors import SchedulerLost
from agentrt.runtime.runner.tokenizers import Tokenizers
from agentrt.runtime.runner.execution import execute_program
from agentrt.runtime.journal import JournalConnections, JournalError, ProgramJournal
from agentrt.runtime.results import FAILED, ProgramResult
from agentrt.toolmgr import ToolManager, ToolRegistry


def _lost(error: BaseException) -> SchedulerLost:
    return SchedulerLost(
        f"the scheduler actor is gone ({type(error).__name__}), so no LLM call can be "
        f"served in this run; see the Ray logs for why it died, and run the programs "
        f"again")


class ActorBackend:
    """The ChatBackend that talks to the scheduler actor. Every call is numbered, so
    the scheduler takes this runner's calls in the order they were made (a tool's
    timing before the next turn it enables, a step's end after its last call).

    A call's prompt (chain and messages) goes as a delta on what the scheduler holds
    of its session (`session_sync`); one the scheduler answers `SyncMismatch` goes
    again whole. A session's state goes at its release and its program's end.

    When the scheduler is gone, calls raise SchedulerLost; tidying up (a program's or
    a session's end) is skipped, since nothing is left to tidy."""

    def __init__(self, scheduler: Any) -> None:
        self._scheduler = scheduler
        self._caller = uuid.uuid4().hex
        self._calls = itertools.count()
        self.sync = SessionSender()
        self.lost = False
        """Whether a call found the scheduler gone: a program that did not succeed
        since then failed for it, not for its own sake (execution journals it as not
        final, so a resume runs it again)."""

    def _seq(self) -> tuple[str, int]:
        return self._caller, next(self._calls)

    async def program_started(self, program_id: str) -> None:
        await self._call(self._scheduler.program_started.remote(program_id, *self._seq()))

    async def program_finished(self, program_id: str) -> None:
        self.sync.forget_program(program_id)
        await self._tidy(self._scheduler.program_ended.remote(program_id, *self._seq()))

    async def chat(self, request: LLMRequest) -> RequestDone:
        for attempt in range(2):
            if attempt:  # the scheduler lacked the base: the whole prompt
                self.sync.forget(request.session_id)
            data = wire.encode(self.sync.request(request))
            ref = self._scheduler.chat.remote(data, *self._seq(), time.time())
            done = wire.decode(await self._call(ref))
            if not isinstance(done, SyncMismatch):
                return done
        raise RuntimeError(f"the scheduler refused a whole prompt: {done.reason}")

    async def chat_forks(self, requests: list[LLMRequest]) -> list[RequestDone]:
        for attempt in range(2):
            if attempt:
                self.sync.forget(requests[0].session_id)
            data = [wire.encode(self.sync.request(r)) for r in requests]
            ref = self._scheduler.chat_forks.remote(data, *self._seq(), time.time())
            dones = [wire.decode(done) for done in await self._call(ref)]
            if not isinstance(dones[0], SyncMismatch):
                return dones
        raise RuntimeError(f"the scheduler refused a whole prompt: {dones[0].reason}")

    async def abort(self, request_id: str) -> bool:
        return await self._tidy(self._scheduler.abort.remote(request_id, *self._seq()),
                                default=False)

    async def release_session(self, session_id: str) -> None:
        self.sync.forget(session_id)
        await self._tidy(self._scheduler.release_session.remote(session_id, *self._seq()))

    async def _call(self, ref: Any) -> Any:
        try:
            return await ref
        except RayActorError as error:
            self.lost = True
            raise _lost(error) from None

    @staticmethod
    async def _tidy(ref: Any, default: Any = None) -> Any:
        try:
            return await ref
        except RayActorError:
            return default

    def tool_finished(self, session_id: str, tool: str, seconds: float,
                      prior_s: float | None) -> None:
        self._scheduler.tool_finished.remote(session_id, tool, seconds, prior_s, *self._seq())


@ray.remote(num_cpus=0, max_concurrency=10_000)
class ProgramRunner:
    def __init__(self, scheduler: Any, default_model: str, served_models: list[str],
                 block_size: int, prices: dict[str, tuple[float, float]],
                 planning: dict[str, Any] | None = None,
                 clock: RunClock | None = None) -> None:
        tracing.setup("agentrt-runner")
        self._backend = ActorBackend(scheduler)
        self._tools = ToolManager(ToolRegistry())
        self._planning = PlanningSettings.from_plain(planning) if planning else None
        self._tokenizer = Tokenizers(self._planning.pools if self._planning else ())
        self._model = default_model
        self._served = tuple(served_models)
        self._block_size = block_size
        self._prices = {m: Price(*p) for m, p in prices.items()}
        self._clock = clock if clock is not None else RunClock(time.time())
        self._journals = JournalConnections()  # opened on a program's first use

    async def run_program(self, program: Any, args: tuple, kwargs: dict, program_id: str,
                          arrival: float, parent: dict[str, str],
                          journal: dict[str, Any] | None = None) -> bytes:
        """`journal`: {url, run_id, attempt} when the run journals (runtime.journal)."""
        program_journal = None
        if journal is not None:
            try:
                program_journal = await ProgramJournal.load(
                    self._journals.get(journal["url"]), journal["run_id"], program_id,
                    journal["attempt"])
            except JournalError as exc:  # the program cannot run safely without it
                return wire.encode(ProgramResult(
                    program_id, program.name, program.options.tenant, FAILED, arrival,
                    time.time(), error=f"{type(exc).__name__}: {exc}"))
        result = await execute_program(
            program, tuple(args), dict(kwargs), program_id=program_id, arrival=arrival,
            backend=self._backend, tools=self._tools, tokenizer=self._tokenizer,
            default_model=self._model, served_models=self._served,
            block_size=self._block_size, prices=self._prices, clock=time.time,
            parent=parent, planning=self._planning, time_scale=self._clock.scale,
            to_wall=self._clock.to_wall, journal=program_journal)
        result.spans = tracing.drain(tracing.trace_id_of(parent))
        return wire.encode(result)

    async def held_sessions(self) -> list[str]:
        """Sessions whose prompt state this runner keeps (none once its programs end)."""
        return self._backend.sync.sessions()

    async def leftover_spans(self) -> list[dict[str, Any]]:
        return tracing.drain()

    async def flush_traces(self) -> bool:
        """Send spans still batched for OTLP before this actor is stopped."""
        return tracing.flush()
