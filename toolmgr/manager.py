"""``ToolManager``: one tool call from name and JSON arguments to a ``ToolResult``."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import Any

from agentrt.toolmgr.durations import DurationModel
from agentrt.toolmgr.errors import ToolArgumentsError, UnknownToolError
from agentrt.toolmgr.executors import ToolExecutor, make_executor
from agentrt.toolmgr.registry import RegisteredTool, ToolRegistry
from agentrt.toolmgr.result import ToolResult


class ToolManager:
    """Runs registered tools and learns how long they take.

    Contract of ``call``: it never raises for a problem with the call or the tool; an
    unknown name, unparsable JSON, arguments that do not fit the schema, an exception in
    the tool and a timeout all come back as ``ToolResult(ok=False)`` whose ``error`` says
    what went wrong. Only cancellation of the caller propagates. Each executed call's
    elapsed time (including failed and timed-out calls, where it is a lower bound) is
    recorded into ``durations``; calls rejected before running are not.

    A tool's ``duration_prior_s`` becomes its prior in ``durations`` when the manager
    is created or, for tools registered later, on the tool's first call.

    Executors are created on first use from the spec's ``executor`` name, unless given
    in ``executors``; ``close()`` shuts down those this manager created.
    """

    def __init__(
        self,
        registry: ToolRegistry,
        durations: DurationModel | None = None,
        executors: Mapping[str, ToolExecutor] | None = None,
    ) -> None:
        self.registry = registry
        self.durations = durations if durations is not None else DurationModel()
        self._executors: dict[str, ToolExecutor] = dict(executors or {})
        self._owned: list[ToolExecutor] = []
        self._primed: set[str] = set()
        for registered in registry.tools():
            self._prime(registered)

    async def call(
        self,
        name: str,
        arguments: dict[str, Any] | str,
        call_id: str = "",
        clock: Callable[[], float] = time.monotonic,
    ) -> ToolResult:
        """Run tool ``name`` with ``arguments`` (a dict or JSON text of an object)."""
        try:
            tool = self.registry.get(name)
            kwargs = tool.validate_args(_parse_arguments(name, arguments))
        except (UnknownToolError, ToolArgumentsError) as exc:
            return ToolResult.failure(call_id, name, str(exc), started_at=clock())
        self._prime(tool)
        result = await self._executor(tool.spec.executor).execute(tool, kwargs, call_id, clock)
        self.durations.record(name, max(result.duration_s, 0.0))
        return result

    async def call_openai(
        self, tool_call: Mapping[str, Any], clock: Callable[[], float] = time.monotonic
    ) -> ToolResult:
        """Run an OpenAI-shaped tool call ``{"id", "function": {"name", "arguments"}}``."""
        function = tool_call.get("function")
        call_id = str(tool_call.get("id", ""))
        if not isinstance(function, Mapping) or not isinstance(function.get("name"), str):
            error = (
                "malformed tool call: expected {'id': ..., 'type': 'function', "
                f"'function': {{'name': ..., 'arguments': ...}}}}, got {dict(tool_call)!r}"
            )
            return ToolResult.failure(call_id, "", error, started_at=clock())
        arguments = function.get("arguments") or {}
        return await self.call(function["name"], arguments, call_id, clock)

    def _prime(self, tool: RegisteredTool) -> None:
        """Hand the spec's duration prior to the duration model, once per tool."""
        if tool.name in self._primed:
            return
        self._primed.add(tool.name)
        if tool.spec.duration_prior_s is not None:
            self.durations.set_prior(tool.name, tool.spec.duration_prior_s)

    def _executor(self, kind: str) -> ToolExecutor:
        executor = self._executors.get(kind)
        if executor is None:
            executor = self._executors[kind] = make_executor(kind)
            self._owned.append(executor)
        return executor

    def close(self) -> None:
        """Shut down the executors this manager created. Idempotent."""
        for executor in self._owned:
            executor.shutdown()
            self._executors = {k: v for k, v in self._executors.items() if v is not executor}
        self._owned.clear()


def _parse_arguments(name: str, arguments: dict[str, Any] | str) -> Any:
    if not isinstance(arguments, str):
        return arguments
    try:
        return json.loads(arguments) if arguments.strip() else {}
    except json.JSONDecodeError as exc:
        shown = arguments if len(arguments) <= 80 else arguments[:77] + "..."
        raise ToolArgumentsError(
            name, [f"Arguments are not valid JSON ({exc.msg} at position {exc.pos}): {shown!r}."]
        ) from None
