"""The decorators outside a build: tools stay plain functions, steps refuse to run,
options are frozen pydantic models; the step context's reply shapes."""

from __future__ import annotations

import asyncio

import pydantic
import pytest

from agentrt.programs import (
    ChatReply,
    GraphUsageError,
    ProgramDef,
    ProgramOptions,
    Step,
    StepContext,
    Tool,
    Usage,
    program,
    step,
    tool,
)
from agentrt.toolmgr import RegisteredTool, ToolResult


@tool(timeout_s=5, executor="inline", duration_prior_s=0.5)
def grep(pattern: str, path: str = ".") -> str:
    """Find lines matching a pattern."""
    return f"{pattern} in {path}"


@tool
async def fetch(url: str) -> dict:
    return {"url": url}


@step(tools=[grep, fetch], model="big", max_tokens=64, name="investigate")
async def find(ctx, question):
    return question


def test_tool_object_carries_spec_and_registered_tool():
    assert isinstance(grep, Tool) and grep.name == "grep" and grep.__name__ == "grep"
    assert isinstance(grep.registered, RegisteredTool) and grep.spec is grep.registered.spec
    assert (grep.spec.timeout_s, grep.spec.executor, grep.spec.duration_prior_s) == (5.0, "inline", 0.5)
    assert grep.spec.description == "Find lines matching a pattern."
    assert tool(name="web_fetch")(lambda url: url).name == "web_fetch"


def test_calling_a_tool_outside_a_build_calls_the_function():
    assert grep("todo", path="src") == "todo in src"
    assert asyncio.run(fetch("http://x")) == {"url": "http://x"}


def test_step_object_and_options():
    assert isinstance(find, Step) and find.name == "investigate" and find.is_async
    assert find.options.tools == ("grep", "fetch") and find.tools == (grep, fetch)
    assert (find.options.model, find.options.max_tokens) == ("big", 64)
    with pytest.raises(pydantic.ValidationError):
        find.options.model = "small"  # type: ignore[misc]


def test_calling_a_step_outside_a_build_says_where_to_call_it():
    with pytest.raises(GraphUsageError, match="call it inside a @program function"):
        find("why?")
    assert asyncio.run(find.fn(None, "why?")) == "why?"


def test_program_options_are_frozen_with_defaults():
    @program(budget_tokens=10_000, deadline_s=30)
    def workflow(question):
        return find(question)

    assert isinstance(workflow, ProgramDef) and workflow.name == "workflow"
    assert workflow.options == ProgramOptions(
        name="workflow", budget_tokens=10_000, budget_usd=None, deadline_s=30.0, tenant="default"
    )
    with pytest.raises(pydantic.ValidationError, match="extra_forbidden"):
        ProgramOptions(name="p", budget=3)
    graph = workflow("why?")  # calling a ProgramDef builds it
    assert graph.name == "workflow" and [n.node_id for n in graph.nodes] == ["investigate"]


def test_program_decorator_without_parentheses():
    @program
    def bare():
        return None

    assert bare.options.tenant == "default" and bare.build().outputs is None


def test_chat_reply_message_includes_tool_calls():
    call = {"id": "call_1", "type": "function", "function": {"name": "grep", "arguments": '{"pattern": "x"}'}}
    reply = ChatReply("", [call], "tool_calls", Usage(100, 20, 64))
    assert reply.message == {"role": "assistant", "content": "", "tool_calls": [call]}
    assert ChatReply("hi").message == {"role": "assistant", "content": "hi"}
    assert reply.usage.total_tokens == 120


class FakeContext:
    program_id = "p1"
    step_id = "investigate"
    session_id = "s1"

    async def chat(self, messages, tools=None, model=None, max_tokens=None, **sampling):
        return ChatReply("done")

    async def call_tool(self, call):
        return ToolResult(call["id"], call["function"]["name"], True, "out")

    async def call_tools(self, calls):
        return [await self.call_tool(c) for c in calls]


def test_a_fake_context_satisfies_the_protocol_and_runs_a_step_body():
    ctx = FakeContext()
    assert isinstance(ctx, StepContext)

    @step(tools=[grep])
    async def ask(ctx, question):
        reply = await ctx.chat([{"role": "user", "content": question}])
        return reply.text

    assert asyncio.run(ask.fn(ctx, "q")) == "done"
