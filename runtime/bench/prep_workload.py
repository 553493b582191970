"""A workload whose tool resources are slow to prepare, for `tool_overhead`.

Each program is one agent step of `turns` LLM calls (each takes `llm_s` on a fake
backend: queueing plus generation, no engine) with a tool call after every call but
the last; the tool needs a sandbox from a pool whose setup takes `prepare_s` (async,
like a container start through an API) and which holds at most `cap` sandboxes. The
same programs run twice on one ToolManager setting each: `overlap` (the sandbox is
prepared while the first LLM call runs) and `before_start` (prepared before the
program's first step). Programs run `concurrency` at a time, on the wall clock.
"""
from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any

import agentrt
from agentrt.runtime.config import DEFAULT_PRICES
from agentrt.runtime.core.messages import LLMRequest, RequestDone, ToolCallSpec
from agentrt.runtime.engines.tokenizer import SimpleTokenizer
from agentrt.runtime.runner.execution import execute_program
from agentrt.toolmgr import SandboxPool, ToolManager, ToolManagerSettings, ToolRegistry

MODEL = "llama-3.1-8b"


@dataclass(frozen=True, slots=True)
class PrepWorkload:
    programs: int = 64
    concurrency: int = 16
    turns: int = 3
    llm_s: float = 0.4
    prepare_s: float = 0.5
    cap: int = 16


@dataclass(slots=True)
class ProgramTimes:
    """Program times (arrival to end) of one run, in seconds."""

    preparation: str
    times: list[float]


class SlowBackend:
    """Every chat call takes `llm_s`; a reply calls the tool until the session's last
    turn."""

    def __init__(self, turns: int, llm_s: float) -> None:
        self.turns, self.llm_s = turns, llm_s
        self._seen: dict[str, int] = {}

    async def program_started(self, program_id: str) -> None: ...
    async def program_finished(self, program_id: str) -> None: ...
    async def abort(self, request_id: str) -> None: ...
    async def release_session(self, session_id: str) -> None: ...

    def tool_finished(self, session_id: str, tool: str, seconds: float,
                      prior_s: float | None) -> None: ...

    async def chat(self, request: LLMRequest) -> RequestDone:
        await asyncio.sleep(self.llm_s)
        turn = self._seen[request.session_id] = self._seen.get(request.session_id, -1) + 1
        calls = ([ToolCallSpec(f"{request.request_id}-t", "run_in_sandbox",
                               json.dumps({"command": f"step {turn}"}))]
                 if turn < self.turns - 1 else [])
        return RequestDone(request.request_id, request.session_id, request.program_id, "w0",
                           0.0, request.prompt_tokens, 0, request.prompt_tokens, 20,
                           text="" if calls else "done", tool_calls=calls,
                           finish_reason="tool_calls" if calls else "stop")

    async def chat_forks(self, requests: list[LLMRequest]) -> list[RequestDone]:
        return [await self.chat(r) for r in requests]


def build_program(workload: PrepWorkload) -> Any:
    async def start_sandbox(program_id: str) -> str:
        await asyncio.sleep(workload.prepare_s)
        return f"sandbox-{program_id}"

    sandboxes = SandboxPool("bench_sandbox", setup=start_sandbox, cap=workload.cap)

    def run_in_sandbox(sandbox: str, command: str) -> str:
        return f"{command}: ok in {sandbox}"

    tool = agentrt.tool(name="run_in_sandbox", executor="inline",
                        resources={"sandbox": sandboxes})(run_in_sandbox)

    @agentrt.step(tools=[tool], name="agent")
    async def agent(ctx, task: str) -> str:
        messages = [{"role": "user", "content": task}]
        while True:
            reply = await ctx.chat(messages)
            messages.append(reply.message)
            if not reply.tool_calls:
                return reply.text
            for result in await ctx.call_tools(reply.tool_calls):
                messages.append(result.to_message())

    @agentrt.program(name="sandboxed_agent")
    def sandboxed_agent(task: str):
        return agent(task)

    return sandboxed_agent


async def _run(workload: PrepWorkload, preparation: str) -> ProgramTimes:
    program = build_program(workload)
    tools = ToolManager(ToolRegistry(), settings=ToolManagerSettings(preparation=preparation))
    backend = SlowBackend(workload.turns, workload.llm_s)
    gate = asyncio.Semaphore(workload.concurrency)

    async def one(i: int) -> float:
        async with gate:
            arrival = time.time()
            result = await execute_program(
                program, (), {"task": f"task {i}"}, program_id=f"{preparation}-{i}",
                arrival=arrival, backend=backend, tools=tools, tokenizer=SimpleTokenizer(),
                default_model=MODEL, served_models=(MODEL,), block_size=16,
                prices=dict(DEFAULT_PRICES), clock=time.time)
            assert result.status == "succeeded", result.error
            return result.finished_at - arrival

    times = await asyncio.gather(*(one(i) for i in range(workload.programs)))
    tools.close()
    return ProgramTimes(preparation, list(times))


def run_prep_comparison(workload: PrepWorkload) -> list[ProgramTimes]:
    """The same programs with overlapped and with up-front preparation."""
    return [asyncio.run(_run(workload, mode)) for mode in ("overlap", "before_start")]
