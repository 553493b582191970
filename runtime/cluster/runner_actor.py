"""Program runner actors: they execute user step code.

A runner runs many programs concurrently on its event loop; step bodies that are plain
functions run in threads. LLM calls go to the scheduler actor; tools run here, under
toolmgr. Finished spans travel back with each program's result. Each tool call's
measured duration and each program's end go to the scheduler for the workers' duration
models and TTL policies (`runtime.cluster.retention`), without waiting for a reply.
"""
from __future__ import annotations

import itertools
import time
import uuid
from typing import Any

import ray

from agentrt.runtime import tracing, wire
from agentrt.runtime.cluster.retention import ProgramEnded, ToolTiming
from agentrt.runtime.runner.choices import PlanningSettings
from agentrt.runtime.core.budget import Price
from agentrt.runtime.core.messages import LLMRequest, RequestDone
from agentrt.runtime.engines.tokenizer import SimpleTokenizer
from agentrt.runtime.runner.execution import execute_program
from agentrt.toolmgr import ToolManager, ToolRegistry


class ActorBackend:
    """The ChatBackend that talks to the scheduler actor."""

    def __init__(self, scheduler: Any) -> None:
        self._scheduler = scheduler
        # Calls are numbered so the scheduler takes them in the order they were made.
        self._caller = uuid.uuid4().hex
        self._calls = itertools.count()

    async def chat(self, request: LLMRequest) -> RequestDone:
        ref = self._scheduler.chat.remote(wire.encode(request), self._caller,
                                          next(self._calls))
        return wire.decode(await ref)

    async def chat_forks(self, requests: list[LLMRequest]) -> list[RequestDone]:
        ref = self._scheduler.chat_forks.remote([wire.encode(r) for r in requests],
                                                self._caller, next(self._calls))
        return [wire.decode(done) for done in await ref]

    async def abort(self, request_id: str) -> None:
        await self._scheduler.abort.remote(request_id)

    async def release_session(self, session_id: str) -> None:
        await self._scheduler.release_session.remote(session_id)

    def tool_finished(self, tool: str, seconds: float, prior_s: float | None) -> None:
        self._scheduler.learn.remote(wire.encode(ToolTiming(tool, seconds, prior_s)))

    def program_finished(self, program_id: str, llm_calls: int) -> None:
        self._scheduler.learn.remote(wire.encode(ProgramEnded(program_id, llm_calls)))


@ray.remote(num_cpus=0, max_concurrency=10_000)
class ProgramRunner:
    def __init__(self, scheduler: Any, default_model: str, served_models: list[str],
                 block_size: int, prices: dict[str, tuple[float, float]],
                 planning: dict[str, Any] | None = None) -> None:
        tracing.setup("agentrt-runner")
        self._backend = ActorBackend(scheduler)
        self._tools = ToolManager(ToolRegistry())
        self._tokenizer = SimpleTokenizer()
        self._model = default_model
        self._served = tuple(served_models)
        self._block_size = block_size
        self._prices = {m: Price(*p) for m, p in prices.items()}
        self._planning = PlanningSettings.from_plain(planning) if planning else None

    async def run_program(self, program: Any, args: tuple, kwargs: dict, program_id: str,
                          arrival: float, parent: dict[str, str]) -> bytes:
        result = await execute_program(
            program, tuple(args), dict(kwargs), program_id=program_id, arrival=arrival,
            backend=self._backend, tools=self._tools, tokenizer=self._tokenizer,
            default_model=self._model, served_models=self._served,
            block_size=self._block_size, prices=self._prices, clock=time.time,
            parent=parent, planning=self._planning)
        self._backend.program_finished(program_id, result.llm_calls)
        result.spans = tracing.drain(tracing.trace_id_of(parent))
        return wire.encode(result)

    async def leftover_spans(self) -> list[dict[str, Any]]:
        return tracing.drain()

    async def flush_traces(self) -> bool:
        """Send spans still batched for OTLP before this actor is stopped."""
        return tracing.flush()
