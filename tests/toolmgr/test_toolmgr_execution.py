"""Executors and the tool manager: every failure is an error result, never an exception."""

from __future__ import annotations

import asyncio
import threading

import pytest

from agentrt.toolmgr import (
    DurationModel,
    InlineExecutor,
    RegisteredTool,
    ThreadExecutor,
    ToolManager,
    ToolRegistry,
    ToolResult,
    make_executor,
)


class FakeClock:
    """Advances by ``step`` seconds per reading, so durations are exact."""

    def __init__(self, step: float = 0.5) -> None:
        self.now = 100.0
        self.step = step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def add(a: int, b: int = 1) -> int:
    return a + b


async def async_add(a: int, b: int = 1) -> int:
    await asyncio.sleep(0)
    return a + b


def thread_name() -> str:
    return threading.current_thread().name


def boom(message: str) -> None:
    raise RuntimeError(message)


def raises_timeout() -> None:
    raise TimeoutError("upstream timed out")


async def hang() -> None:
    await asyncio.Event().wait()


def make_manager(durations: DurationModel | None = None) -> ToolManager:
    registry = ToolRegistry()
    registry.register(add, executor="inline")
    registry.register(async_add, executor="inline", duration_prior_s=2.0)
    registry.register(thread_name)
    registry.register(boom)
    registry.register(raises_timeout)
    registry.register(hang, executor="inline", timeout_s=0.05)
    return ToolManager(registry, durations)


def call(manager: ToolManager, name: str, arguments, clock=None) -> ToolResult:
    async def go() -> ToolResult:
        return await manager.call(name, arguments, "call-1", **({"clock": clock} if clock else {}))

    try:
        return asyncio.run(go())
    finally:
        manager.close()


@pytest.mark.parametrize("executor", [InlineExecutor(), ThreadExecutor()])
@pytest.mark.parametrize("fn", [add, async_add])
def test_executors_run_sync_and_async_functions(executor, fn):
    tool = RegisteredTool.from_function(fn)
    result = asyncio.run(executor.execute(tool, {"a": 2, "b": 3}, "c", FakeClock()))
    executor.shutdown()
    assert (result.ok, result.output, result.started_at, result.duration_s) == (True, 5, 100.5, 0.5)


def test_thread_executor_runs_sync_functions_off_the_loop_thread():
    result = call(make_manager(), "thread_name", {})
    assert result.ok and result.output.startswith("tool")


def test_make_executor_lists_valid_names():
    assert isinstance(make_executor("inline"), InlineExecutor)
    with pytest.raises(ValueError, match="unknown executor 'docker'; valid executors: inline, ray, "
                       "subprocess, thread"):
        make_executor("docker")


def test_success_result_and_message():
    result = call(make_manager(), "add", '{"a": 2, "b": 3}', FakeClock())
    assert (result.call_id, result.name, result.ok, result.output, result.error) == (
        "call-1", "add", True, 5, None)
    assert (result.started_at, result.duration_s, result.timings.run_s) == (100.5, 0.5, 0.5)
    assert (result.executor, result.error_type, result.truncated) == ("inline", None, False)
    assert result.to_message() == {"role": "tool", "tool_call_id": "call-1", "content": "5"}


def test_exception_becomes_error_result_with_type_and_message():
    result = call(make_manager(), "boom", {"message": "disk full"})
    assert (result.ok, result.error) == (False, "RuntimeError: disk full")
    assert result.content() == "ERROR: RuntimeError: disk full"


def test_timeout_becomes_error_result():
    result = call(make_manager(), "hang", {})
    assert not result.ok
    assert result.error == "tool 'hang' timed out after 0.05s; raise its timeout_s or make the call cheaper"


def test_a_tools_own_timeout_error_is_not_mistaken_for_ours():
    result = call(make_manager(), "raises_timeout", {})
    assert result.error == "TimeoutError: upstream timed out"


def test_unknown_tool_is_an_error_result_naming_valid_tools():
    result = call(make_manager(), "ad", {})
    assert not result.ok and result.duration_s == 0.0
    assert "unknown tool 'ad'; known tools: add, async_add, boom" in result.error


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ("{a: 1}", "Arguments are not valid JSON (Expecting property name enclosed in double quotes at position 1): '{a: 1}'."),
        ("[1, 2]", "Arguments must be a JSON object, got list."),
        ('{"a": "x"}', "Argument 'a': input should be a valid integer"),
    ],
)
def test_bad_arguments_are_error_results_quoting_the_problem(arguments, expected):
    result = call(make_manager(), "add", arguments)
    assert not result.ok
    assert result.error.startswith("tool 'add' rejected its arguments: ")
    assert expected in result.error


def test_durations_recorded_for_run_calls_not_for_rejected_ones():
    durations = DurationModel()
    manager = make_manager(durations)

    async def go() -> None:
        clock = FakeClock(0.25)
        await manager.call("add", {"a": 1}, "1", clock)
        await manager.call("boom", {"message": "x"}, "2", clock)
        await manager.call("add", {"a": "x"}, "3", clock)
        await manager.call("nope", {}, "4", clock)

    asyncio.run(go())
    manager.close()
    assert (durations.count("add"), durations.count("boom"), durations.count("nope")) == (1, 1, 0)
    assert durations.mean("add") == pytest.approx(0.25)  # every run call took one clock step


def test_spec_duration_prior_becomes_the_duration_models_prior():
    durations = DurationModel()
    make_manager(durations).close()
    assert (durations.source("async_add"), durations.mean("async_add")) == ("prior", 2.0)


def test_call_openai_reads_the_tool_call_dict():
    manager = make_manager()
    tool_call = {"id": "call_7", "type": "function", "function": {"name": "add", "arguments": '{"a": 4}'}}
    result = asyncio.run(manager.call_openai(tool_call))
    bad = asyncio.run(manager.call_openai({"id": "x"}))
    manager.close()
    assert (result.call_id, result.output) == ("call_7", 5)
    assert not bad.ok and bad.error.startswith("malformed tool call")


def test_content_serialises_non_string_output():
    assert ToolResult("c", "t", True, {"a": [1, 2]}).content() == '{"a": [1, 2]}'
    assert ToolResult("c", "t", True, "plain").content() == "plain"
    assert ToolResult("c", "t", True, {"when": object}).content().startswith('{"when": "<class')
