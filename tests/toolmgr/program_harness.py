"""Running programs in-process for tool tests: `execute_program` on a scripted fake
backend (no Ray, no engine)."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from agentrt.runtime.config import DEFAULT_PRICES
from agentrt.runtime.core.messages import LLMRequest, RequestDone, ToolCallSpec
from agentrt.runtime.engines.tokenizer import SimpleTokenizer
from agentrt.runtime.results import ProgramResult
from agentrt.runtime.runner.execution import execute_program
from agentrt.toolmgr import ToolManager

MODEL = "llama-3.1-8b"


def tool_call(call_id: str, name: str, **arguments: Any) -> ToolCallSpec:
    return ToolCallSpec(call_id, name, json.dumps(arguments))


@dataclass
class ScriptedBackend:
    """Answers chat calls in order from `script`: a list of tool calls for a reply that
    calls tools, a string for a final text reply. Keeps every request it got."""

    script: list[list[ToolCallSpec] | str] = field(default_factory=list)
    requests: list[LLMRequest] = field(default_factory=list)
    tool_times: list[tuple[str, float]] = field(default_factory=list)
    programs: list[tuple[str, str]] = field(default_factory=list)

    async def program_started(self, program_id: str) -> None:
        self.programs.append(("started", program_id))

    async def program_finished(self, program_id: str) -> None:
        self.programs.append(("finished", program_id))

    def tool_finished(self, session_id: str, tool: str, seconds: float,
                      prior_s: float | None) -> None:
        self.tool_times.append((tool, seconds))

    async def chat(self, request: LLMRequest) -> RequestDone:
        self.requests.append(request)
        step = self.script.pop(0) if self.script else "done"
        calls = [] if isinstance(step, str) else step
        return RequestDone(request.request_id, request.session_id, request.program_id, "w0",
                           0.0, request.prompt_tokens, 0, request.prompt_tokens, 10,
                           text=step if isinstance(step, str) else "",
                           tool_calls=calls, finish_reason="tool_calls" if calls else "stop")

    async def chat_forks(self, requests: list[LLMRequest]) -> list[RequestDone]:
        return [await self.chat(r) for r in requests]

    async def abort(self, request_id: str) -> None:
        pass

    async def release_session(self, session_id: str) -> None:
        pass


async def run_program(program, tools: ToolManager, backend: ScriptedBackend | None = None,
                      program_id: str = "prog-0", **kwargs: Any) -> ProgramResult:
    return await execute_program(
        program, (), kwargs, program_id=program_id, arrival=time.time(),
        backend=backend or ScriptedBackend(), tools=tools, tokenizer=SimpleTokenizer(),
        default_model=MODEL, served_models=(MODEL,), block_size=16,
        prices=dict(DEFAULT_PRICES), clock=time.time)
