"""What a program's end does to calls still open: a call cancelled after it reached an
engine is charged the prompt it was given, one still queued costs nothing, and a step
still running in a thread past the end can call neither the model nor a tool."""
from __future__ import annotations

import asyncio
import threading
import time

import pytest

import agentrt
from agentrt.runtime.config import DEFAULT_PRICES, RuntimeConfig
from agentrt.runtime.cluster.driver import Runtime
from agentrt.runtime.runner.choices import ChoiceDeclarationError
from agentrt.toolmgr import ToolManager, ToolRegistry
from tests.toolmgr.program_harness import MODEL, ScriptedBackend, run_program


class HangingBackend(ScriptedBackend):
    """Calls never finish; abort answers whether the call had reached an engine."""

    def __init__(self, dispatched: bool) -> None:
        super().__init__()
        self.dispatched = dispatched
        self.aborted: list[str] = []

    async def chat(self, request):
        self.requests.append(request)
        await asyncio.Event().wait()

    async def abort(self, request_id: str) -> bool:
        self.aborted.append(request_id)
        return self.dispatched


@agentrt.step(max_tokens=400)
async def asks(ctx) -> str:
    reply = await ctx.chat([{"role": "user", "content": "word " * 300}])
    return reply.message["content"]


@agentrt.program(deadline_s=0.2, budget_usd=1.0)
def cut_short():
    return asks()


@pytest.mark.parametrize("dispatched", [True, False])
def test_a_call_cut_by_the_deadline_is_charged_its_prompt_only_if_it_reached_an_engine(
        dispatched):
    backend = HangingBackend(dispatched)
    result = asyncio.run(run_program(cut_short, ToolManager(ToolRegistry()), backend))
    assert result.status == "deadline_missed"
    [request] = backend.requests
    assert backend.aborted == [request.request_id]
    prompt_usd = DEFAULT_PRICES[MODEL].cost(request.prompt_tokens, 0)
    assert prompt_usd > 0
    assert result.spent_usd == pytest.approx(prompt_usd if dispatched else 0.0)


CALLED_AFTER_END: list[str] = []
WOKE = threading.Event()


@agentrt.tool(executor="inline")
def note(text: str) -> str:
    return text


@agentrt.step(tools=[note], max_tokens=16)
def dawdles(ctx, seconds: float) -> str:
    time.sleep(seconds)
    for attempt in (lambda: ctx.chat([{"role": "user", "content": "late"}]),
                    lambda: ctx.call_tool({"id": "c1", "type": "function", "function": {
                        "name": "note", "arguments": '{"text": "late"}'}})):
        try:
            attempt()
            CALLED_AFTER_END.append("went through")
        except agentrt.ProgramEnded as refused:
            CALLED_AFTER_END.append(str(refused))
    WOKE.set()
    return "late"


@agentrt.program(deadline_s=0.2)
def slow_thread():
    return dawdles(0.6)


def test_a_plain_step_past_its_programs_end_can_call_neither_model_nor_tool():
    CALLED_AFTER_END.clear()
    WOKE.clear()
    backend = ScriptedBackend()
    result = asyncio.run(run_program(slow_thread, ToolManager(ToolRegistry()), backend))
    assert result.status == "deadline_missed"
    assert WOKE.wait(10)
    assert backend.requests == []
    assert len(CALLED_AFTER_END) == 2
    assert all("ended (deadline_missed); a step still running cannot" in m
               for m in CALLED_AFTER_END)


@agentrt.step(model="gpt-unpriced", max_tokens=16)
async def pricey(ctx) -> str:
    return "x"


@agentrt.program(budget_usd=0.5)
def budgeted():
    return pricey()


def test_a_usd_budget_over_an_unpriced_model_is_refused_before_anything_runs():
    runtime = Runtime(RuntimeConfig(stand_ins={"gpt-unpriced": "llama-3.1-8b"}))
    with pytest.raises(ChoiceDeclarationError, match=r"model 'gpt-unpriced' has no price"):
        runtime.validate(budgeted, [{}])
