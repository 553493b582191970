"""Tools inside programs (execute_program, in-process): the model recovers from its
own tool errors, a deadline ends a hanging sandboxed tool's tree, failures carry
`error.type` on their spans."""
from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

import agentrt
from agentrt.runtime import tracing
from agentrt.runtime.results import DEADLINE_MISSED, SUCCEEDED
from agentrt.toolmgr import ToolManager, ToolManagerSettings, ToolRegistry, WorkspacePool
from tests.toolmgr import sandbox_tools as st
from tests.toolmgr.program_harness import ScriptedBackend, run_program, tool_call
from tests.toolmgr.test_toolmgr_subprocess import gone


@agentrt.tool
def lookup(city: str, days: int = 1) -> dict:
    """Weather forecast for a city."""
    return {"city": city, "days": days, "sky": "clear"}


@agentrt.tool
def shout(text: str) -> str:
    return text.upper() * 50


@agentrt.step(tools=[lookup, shout])
async def assistant(ctx, question: str) -> str:
    messages = [{"role": "user", "content": question}]
    for _ in range(6):
        reply = await ctx.chat(messages)
        messages.append(reply.message)
        if not reply.tool_calls:
            return reply.text
        for result in await ctx.call_tools(reply.tool_calls):
            messages.append(result.to_message())
    return "gave up"


@agentrt.program
def ask(question: str):
    return assistant(question)


def run(coro, timeout_s: float = 60):
    return asyncio.run(asyncio.wait_for(coro, timeout_s))


def tool_messages(request) -> list[str]:
    return [m["content"] for m in request.messages if m["role"] == "tool"]


def test_wrong_tool_names_and_bad_arguments_go_back_to_the_model_and_it_recovers():
    tracing.setup("agentrt-tests")
    tracing.drain()
    backend = ScriptedBackend(script=[
        [tool_call("c1", "weather", city="Oslo")],          # a tool that does not exist
        [tool_call("c2", "lookup", town="Oslo")],           # a field that does not exist
        [tool_call("c3", "lookup", city="Oslo", days=2)],   # right
        "Clear skies in Oslo.",
    ])
    tools = ToolManager(ToolRegistry())
    result = run(run_program(ask, tools, backend, question="weather in Oslo?"))
    tools.close()

    assert result.status == SUCCEEDED and result.outputs == "Clear skies in Oslo."
    assert (result.tool_calls, result.tool_errors) == (3, 2)
    seen = tool_messages(backend.requests[-1])
    assert seen[0] == ("ERROR: there is no tool 'weather' here; the tools you can call are: "
                       "lookup, shout. Call one of those, with arguments that fit its "
                       "parameters.")
    assert seen[1].startswith("ERROR: tool 'lookup' rejected its arguments: ")
    assert "Argument 'city' is required but missing." in seen[1]
    assert "Argument 'town' is not a parameter of this tool (parameters: city, days)" in seen[1]
    assert json.loads(seen[2]) == {"city": "Oslo", "days": 2, "sky": "clear"}

    spans = [s for s in tracing.drain() if s["name"].startswith("execute_tool")]
    failed = [s for s in spans if s["status"] == "ERROR"]
    assert [s["attributes"]["error.type"] for s in failed] == ["UnknownToolError",
                                                               "ToolArgumentsError"]
    assert failed[0]["events"][0]["name"] == "exception"
    assert failed[0]["events"][0]["attributes"]["exception.type"] == "UnknownToolError"
    ok = [s for s in spans if s["status"] != "ERROR"][0]["attributes"]
    assert ok["agentrt.tool.executor"] == "thread" and ok["agentrt.tool.run_s"] >= 0
    assert [t for t, _ in backend.tool_times] == ["lookup"]  # refused calls never ran


def test_a_registered_tool_the_step_did_not_declare_is_refused_too():
    other = ToolRegistry()
    other.register(st.echo)  # registered in the runner, not declared by the step
    backend = ScriptedBackend(script=[[tool_call("c1", "echo", text="x")], "ok"])
    tools = ToolManager(other)
    result = run(run_program(ask, tools, backend, question="?"))
    tools.close()
    assert result.status == SUCCEEDED and result.tool_errors == 1
    assert "there is no tool 'echo' here" in tool_messages(backend.requests[-1])[0]


def test_results_for_the_model_are_cut_to_the_cap_and_marked():
    backend = ScriptedBackend(script=[[tool_call("c1", "shout", text="a" * 100)], "ok"])
    tools = ToolManager(ToolRegistry(), settings=ToolManagerSettings(max_result_bytes=1000))
    result = run(run_program(ask, tools, backend, question="?"))
    tools.close()
    content = tool_messages(backend.requests[-1])[0]
    assert result.status == SUCCEEDED and len(content.encode()) <= 1000
    assert content.endswith("[agentrt: output truncated, 946 of 5000 bytes shown]")


hang = agentrt.tool(executor="subprocess", timeout_s=120,
                    sandbox={"kill_grace_s": 0.5})(st.spawn_and_hang)


@agentrt.step(tools=[hang])
async def hangs_async(ctx, pid_file: str) -> str:
    await ctx.call_tool({"id": "h1", "function": {"name": "spawn_and_hang",
                                                  "arguments": {"pid_file": pid_file}}})
    return "unreachable"


@agentrt.step(tools=[hang])
def hangs_in_a_thread(ctx, pid_file: str) -> str:
    ctx.call_tool({"id": "h1", "function": {"name": "spawn_and_hang",
                                            "arguments": {"pid_file": pid_file}}})
    return "unreachable"


@agentrt.program(deadline_s=2.5)
def deadline_async(pid_file: str):
    return hangs_async(pid_file)


@agentrt.program(deadline_s=2.5)
def deadline_sync(pid_file: str):
    return hangs_in_a_thread(pid_file)


@agentrt.program(deadline_s=2.5)
def deadline_tool_node(pid_file: str):
    return hang(pid_file)


@pytest.mark.parametrize("program", [deadline_async, deadline_sync, deadline_tool_node],
                         ids=["async-step", "sync-step", "tool-node"])
def test_a_deadline_ends_a_hanging_subprocess_tool_and_its_children(program, tmp_path):
    pid_file = tmp_path / "pids"
    tools = ToolManager(ToolRegistry())
    started = time.monotonic()
    result = run(run_program(program, tools, pid_file=str(pid_file)))
    elapsed = time.monotonic() - started
    tools.close()
    pids = [int(p) for p in pid_file.read_text().split()]
    assert result.status == DEADLINE_MISSED and len(pids) == 3
    assert all(gone(pid) for pid in pids), [p for p in pids if not gone(p)]
    assert elapsed < 2.5 + 0.5 + 2.0 + 1.0  # deadline + grace + SIGKILL bound + slack


def test_an_inline_blocking_tool_in_a_program_is_reported_on_its_span():
    tracing.setup("agentrt-tests")
    tracing.drain()
    blocker = agentrt.tool(executor="inline", timeout_s=0.1, name="blocker")(
        lambda seconds: time.sleep(seconds) or "slept")

    @agentrt.program
    def blocks():
        return blocker(0.4)

    tools = ToolManager(ToolRegistry())
    result = run(run_program(blocks, tools))
    tools.close()
    span = next(s for s in tracing.drain() if s["name"] == "execute_tool blocker")
    assert result.status == "failed" and "past its timeout_s of 0.1s" in result.error
    assert span["attributes"]["error.type"] == "timeout"
    assert span["attributes"]["agentrt.tool.blocked_loop_s"] >= 0.4
    assert "held the event loop" in span["attributes"]["agentrt.tool.warnings"][0]


def test_workspaces_of_a_failed_program_are_removed(tmp_path):
    workspaces = WorkspacePool(root=tmp_path, cap=2)
    seen: list[str] = []

    def breaks(workspace: str) -> None:
        seen.append(workspace)
        Path(workspace, "partial").write_text("x")
        raise RuntimeError("tool failed halfway")

    broken = agentrt.tool(name="breaks", resources={"workspace": workspaces})(breaks)

    @agentrt.program
    def fails():
        return broken()

    tools = ToolManager(ToolRegistry())
    result = run(run_program(fails, tools))
    tools.close()
    assert result.status == "failed" and "tool failed halfway" in result.error
    assert len(seen) == 1 and list(tmp_path.iterdir()) == []
