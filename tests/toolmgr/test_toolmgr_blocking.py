"""Inline tools: what the loop cannot enforce is detected and reported; thread tools:
a call given up is abandoned, its late result discarded."""
from __future__ import annotations

import asyncio
import threading
import time

import pytest

from agentrt.toolmgr import ToolManager, ToolManagerSettings, ToolRegistry
from agentrt.toolmgr.loop_guard import LoopHold, run_timed


def sleeps(seconds: float) -> str:
    time.sleep(seconds)
    return "slept"


async def sleeps_between_yields(seconds: float) -> str:
    await asyncio.sleep(0)
    time.sleep(seconds)  # blocks the loop inside an async function
    await asyncio.sleep(0)
    return "done"


async def yields_politely(seconds: float) -> str:
    await asyncio.sleep(seconds)
    return "done"


def manager(*tools: tuple, threshold_s: float = 0.05) -> ToolManager:
    registry = ToolRegistry()
    for fn, options in tools:
        registry.register(fn, **options)
    return ToolManager(registry, settings=ToolManagerSettings(blocking_threshold_s=threshold_s))


def call(m: ToolManager, name: str, arguments: dict):
    try:
        return asyncio.run(asyncio.wait_for(m.call(name, arguments), 30))
    finally:
        m.close()


def test_an_inline_tool_past_its_timeout_is_a_timeout_even_though_it_returned(caplog):
    # The case, scaled down: timeout_s=1 / 20 s run becomes 0.1 s / 0.5 s.
    result = call(manager((sleeps, {"executor": "inline", "timeout_s": 0.1})), "sleeps",
                  {"seconds": 0.5})
    assert (result.ok, result.output, result.error_type) == (False, None, "timeout")
    assert "cannot interrupt code that does not yield" in result.error
    assert result.timings.blocked_loop_s >= 0.5
    assert result.span_attributes()["error.type"] == "timeout"
    assert "held the event loop" in caplog.text


def test_an_inline_tool_that_blocks_under_its_timeout_succeeds_with_a_warning():
    result = call(manager((sleeps, {"executor": "inline", "timeout_s": 5})), "sleeps",
                  {"seconds": 0.2})
    assert result.ok and result.output == "slept"
    assert result.timings.blocked_loop_s >= 0.2
    assert len(result.warnings) == 1 and "held the event loop for 0.2" in result.warnings[0]
    attributes = result.span_attributes()
    assert attributes["agentrt.tool.blocked_loop_s"] >= 0.2
    assert attributes["agentrt.tool.warnings"] == result.warnings


def test_blocking_inside_an_async_tool_is_measured_per_stretch():
    blocked = call(manager((sleeps_between_yields, {"executor": "inline"})),
                   "sleeps_between_yields", {"seconds": 0.2})
    polite = call(manager((yields_politely, {"executor": "inline"})), "yields_politely",
                  {"seconds": 0.2})
    assert blocked.ok and blocked.warnings and blocked.timings.blocked_loop_s >= 0.2
    assert polite.ok and not polite.warnings and polite.timings.blocked_loop_s < 0.05


def test_an_async_inline_tool_that_yields_is_stopped_at_its_timeout():
    started = time.monotonic()
    result = call(manager((yields_politely, {"executor": "inline", "timeout_s": 0.1})),
                  "yields_politely", {"seconds": 10})
    assert result.error_type == "timeout" and time.monotonic() - started < 2


def test_async_tools_on_the_thread_executor_are_watched_too():
    result = call(manager((sleeps_between_yields, {})), "sleeps_between_yields",
                  {"seconds": 0.2})
    assert result.executor == "thread" and result.warnings


def test_the_loop_keeps_running_while_a_thread_tool_blocks():
    m = manager((sleeps, {"timeout_s": 5}))

    async def go() -> int:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        task = asyncio.ensure_future(ticker())
        result = await m.call("sleeps", {"seconds": 0.3})
        task.cancel()
        assert result.ok and not result.warnings and result.timings.blocked_loop_s == 0.0
        return ticks

    try:
        assert asyncio.run(asyncio.wait_for(go(), 30)) >= 10
    finally:
        m.close()


RELEASE = threading.Event()
FINISHED: list[str] = []


def waits_for_release() -> str:
    RELEASE.wait(10)
    FINISHED.append("finished")
    return "late"


def test_a_thread_tool_given_up_runs_on_and_its_result_is_discarded():
    RELEASE.clear()
    FINISHED.clear()
    m = manager((waits_for_release, {"timeout_s": 0.1}))

    async def go():
        result = await m.call("waits_for_release", {})
        executor = m.executor("thread")
        assert executor.abandoned_running == 1 and FINISHED == []  # the thread still runs
        RELEASE.set()
        for _ in range(500):
            if executor.abandoned_running == 0:
                break
            await asyncio.sleep(0.01)
        return result, executor.abandoned_running

    try:
        result, still = asyncio.run(asyncio.wait_for(go(), 30))
    finally:
        m.close()
    assert (result.ok, result.error_type, result.output) == (False, "timeout", None)
    assert "cannot be killed" in result.warnings[0]
    assert FINISHED == ["finished"] and still == 0


def test_run_timed_passes_values_and_exceptions_through():
    hold = LoopHold()

    async def raises() -> None:
        await asyncio.sleep(0)
        raise ValueError("inner")

    async def go():
        assert await run_timed(yields_politely(0), hold) == "done"
        with pytest.raises(ValueError, match="inner"):
            await run_timed(raises(), hold)

    asyncio.run(go())
    assert hold.total_s >= hold.longest_s >= 0.0
