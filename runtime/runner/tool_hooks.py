"""The runner's side of toolmgr: a program's tool scope and the spans of its tool calls.

`program_tools` wraps a program's run: on entry the ToolManager starts preparing the
resources its tools declare (overlapping with the program's first LLM calls, or before
its first step with `preparation="before_start"`); on exit, whatever the exit (end,
failure, deadline, abort), it cancels the program's tool calls still running and
cleans up its resources. `record_tool_span` puts a ToolResult on its `execute_tool`
span: the executor, the timings, truncation and, for a failure, `error.type`, the
status message and an `exception` event (OpenTelemetry semantic conventions).
"""
from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable
from typing import Any

from opentelemetry import trace as otel

from agentrt.toolmgr import ToolManager, ToolResult


@contextlib.asynccontextmanager
async def program_tools(tools: ToolManager, program_id: str,
                        used: Iterable[Any]) -> AsyncIterator[None]:
    """The tool scope of one program; `used`: its `@tool` objects (`graph.tools()`)."""
    try:
        await tools.open_program(program_id, [tool.registered for tool in used])
        yield
    finally:
        await asyncio.shield(tools.close_program(program_id))


def record_tool_span(span: otel.Span, result: ToolResult) -> None:
    span.set_attributes(result.span_attributes())
    if result.ok:
        return
    span.set_status(otel.Status(otel.StatusCode.ERROR, result.error or ""))
    span.add_event("exception", {"exception.type": result.error_type or "_OTHER",
                                 "exception.message": result.error or ""})
