"""Small programs used by the Ray integration tests."""
from __future__ import annotations

import time

import agentrt

CALLS = []


@agentrt.tool(executor="inline")
def add(a: int, b: int) -> int:
    return a + b


@agentrt.tool(executor="thread")
def explode(reason: str) -> str:
    raise RuntimeError(reason)


@agentrt.tool(executor="thread", timeout_s=30)
def slow(seconds: float) -> str:
    time.sleep(seconds)
    return "done"


def tool_call(name: str, **arguments) -> dict:
    import json
    return {"id": f"call-{name}", "type": "function",
            "function": {"name": name, "arguments": json.dumps(arguments)}}


@agentrt.step(tools=[add, explode], max_tokens=64)
async def chatty(ctx, topic: str, turns: int = 3) -> dict:
    messages = [{"role": "system", "content": "You are terse."},
                {"role": "user", "content": f"Tell me about {topic}."}]
    cached = []
    for _ in range(turns):
        reply = await ctx.chat(messages)
        cached.append(reply.usage.cached_tokens)
        messages.append(reply.message)
        result = await ctx.call_tool(tool_call("add", a=2, b=3))
        messages.append(result.to_message())
    failure = await ctx.call_tool(tool_call("explode", reason="boom"))
    return {"cached": cached, "tool_error": failure.error, "sum": result.output}


@agentrt.step(max_tokens=32)
def plain(ctx, topic: str) -> str:
    """A synchronous step: ctx calls block."""
    reply = ctx.chat([{"role": "user", "content": f"One word on {topic}."}])
    return f"{topic}:{reply.usage.completion_tokens}"


@agentrt.step(max_tokens=16)
async def join(ctx, left: dict, right: str) -> dict:
    return {"left": left["sum"], "right": right}


@agentrt.program
def fan_in(topic: str):
    return join(chatty(topic), plain(topic))


@agentrt.program(budget_tokens=600)
def thrifty(topic: str):
    return chatty(topic, turns=20)


@agentrt.step(max_tokens=16)
async def quick(ctx) -> str:
    return "ready"


@agentrt.step(tools=[slow], max_tokens=16)
async def waits(ctx, seconds: float, ready: str) -> str:
    result = await ctx.call_tool(tool_call("slow", seconds=seconds))
    return result.output


@agentrt.program(deadline_s=0.5)
def hurried(seconds: float):
    return waits(seconds, quick())


def not_a_tool(x: int) -> int:
    return x


@agentrt.step(tools=[add])
async def uses_undeclared(ctx) -> dict:
    result = await ctx.call_tool(tool_call("not_a_tool", x=1))
    return {"ok": result.ok, "error": result.error, "error_type": result.error_type}


@agentrt.program
def sloppy():
    return uses_undeclared()


@agentrt.step(tools=[slow], max_tokens=200)
async def steady_turns(ctx, topic: str, turns: int, tool_s: float) -> int:
    """Turns of a long reply and a slow tool: calls stay in flight for a while."""
    messages = [{"role": "user", "content": f"Work through {topic}, step by step."}]
    for _ in range(turns):
        reply = await ctx.chat(messages)
        messages.append(reply.message)
        result = await ctx.call_tool(tool_call("slow", seconds=tool_s))
        messages.append(result.to_message())
    return len(messages)


@agentrt.program
def steady(topic: str, turns: int = 4, tool_s: float = 0.3):
    return steady_turns(topic, turns, tool_s)


@agentrt.step(max_tokens=1_000_000)
async def greedy_call(ctx) -> str:
    reply = await ctx.chat([{"role": "user", "content": "Write everything."}])
    return reply.message["content"]


@agentrt.program
def greedy():
    return greedy_call()


@agentrt.step(max_tokens=16)
def sleepy_sync(ctx, seconds: float) -> str:
    """A plain function that outlives its program's deadline, then calls the model."""
    time.sleep(seconds)
    reply = ctx.chat([{"role": "user", "content": "Too late?"}])
    return reply.message["content"]


@agentrt.program(deadline_s=0.5)
def overslept(seconds: float):
    return sleepy_sync(seconds)
