"""``ToolManager``: one tool call from name and JSON arguments to a ``ToolResult``, and
the tool side of a program's life (its resources, its calls still running at its end)."""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from agentrt.toolmgr.durations import DurationModel
from agentrt.toolmgr.errors import ToolArgumentsError, UnknownToolError
from agentrt.toolmgr.executor_base import CallOptions, ToolExecutor
from agentrt.toolmgr.executors import make_executor
from agentrt.toolmgr.program_resources import CloseReport, Lease, ProgramResources, ResourceManager
from agentrt.toolmgr.registry import RegisteredTool, ToolRegistry
from agentrt.toolmgr.resource_pools import ResourceError
from agentrt.toolmgr.result import CANCELLED, ToolResult
from agentrt.toolmgr.settings import ToolManagerSettings
from agentrt.toolmgr.truncation import cap_result

_DEFAULT: Any = object()


@dataclass(slots=True)
class ProgramClose:
    """What ending a program did on the tool side: calls it cancelled, calls that were
    still running when ``close_timeout_s`` ran out, and its resources' cleanup."""

    cancelled_calls: int = 0
    unfinished_calls: int = 0
    resources: CloseReport = field(default_factory=CloseReport)


class ToolManager:
    """Runs registered tools, gives them their per-program resources, and learns how
    long they take.

    Contract of ``call``: it never raises for a problem with the call or the tool; an
    unknown name, unparsable JSON, arguments that do not fit the schema, a resource
    that could not be prepared, an exception in the tool and a timeout all come back as
    ``ToolResult(ok=False)`` whose ``error`` says what went wrong and whose
    ``error_type`` names it. Only cancellation of the caller propagates. Results are
    cut to ``settings.max_result_bytes`` unless the call passes another cap.

    Durations: each executed call's run time (including failed and timed-out calls,
    where it is a lower bound) goes into ``durations`` under the tool's name, and each
    resource preparation into ``preparations`` under its pool's name; calls rejected
    before running are not recorded. A tool's ``duration_prior_s`` becomes its prior
    in ``durations`` when the manager is created or, for tools registered later, on the
    tool's first call.

    Programs: ``open_program`` starts preparing a program's resources (see
    ``settings.preparation``); ``close_program`` cancels the program's calls still
    running (a subprocess tool's process tree is ended; a thread tool is abandoned and
    its result discarded), cleans up its resources, and refuses its later calls.

    Executors are created on first use from the spec's ``executor`` name, unless given
    in ``executors``; ``close()`` shuts down those this manager created.
    """

    def __init__(
        self,
        registry: ToolRegistry,
        durations: DurationModel | None = None,
        executors: Mapping[str, ToolExecutor] | None = None,
        settings: ToolManagerSettings | None = None,
    ) -> None:
        self.registry = registry
        self.durations = durations if durations is not None else DurationModel()
        self.preparations = DurationModel()
        self.settings = settings if settings is not None else ToolManagerSettings()
        self.resources = ResourceManager(on_prepared=self._prepared)
        self._executors: dict[str, ToolExecutor] = dict(executors or {})
        self._owned: list[ToolExecutor] = []
        self._primed: set[str] = set()
        self._calls: dict[str, set[asyncio.Task[ToolResult]]] = {}
        self._closed: deque[str] = deque(maxlen=self.settings.recent_programs)
        self._closed_set: set[str] = set()
        for registered in registry.tools():
            self._prime(registered)

    # -- programs ----------------------------------------------------------------------
    async def open_program(self, program_id: str,
                           tools: Iterable[RegisteredTool]) -> ProgramResources:
        """Start preparing the resources ``tools`` name for ``program_id``; with
        ``preparation="before_start"``, return only once all of them are prepared
        (or failed: a failure is reported to the calls that need the resource)."""
        scope = self.resources.open(program_id, tools)
        if self.settings.preparation == "before_start":
            await scope.ready()
        return scope

    async def close_program(self, program_id: str) -> ProgramClose:
        """End ``program_id`` on the tool side; see the class docstring. Waits at most
        ``settings.close_timeout_s`` for cancelled calls, then cleans up."""
        self._remember_closed(program_id)
        report = ProgramClose()
        calls = self._calls.pop(program_id, set())
        for task in calls:
            if not task.done():
                task.cancel()
                report.cancelled_calls += 1
        if calls:
            _, pending = await asyncio.wait(calls, timeout=self.settings.close_timeout_s)
            report.unfinished_calls = len(pending)
        report.resources = await self.resources.close(program_id)
        return report

    def _remember_closed(self, program_id: str) -> None:
        if len(self._closed) == self._closed.maxlen:
            self._closed_set.discard(self._closed[0])
        self._closed.append(program_id)
        self._closed_set.add(program_id)

    # -- calls -------------------------------------------------------------------------
    async def call(
        self,
        name: str,
        arguments: dict[str, Any] | str,
        call_id: str = "",
        clock: Callable[[], float] = time.monotonic,
        *,
        program_id: str | None = None,
        allowed: Collection[str] | None = None,
        max_result_bytes: int | None = _DEFAULT,
    ) -> ToolResult:
        """Run tool ``name`` with ``arguments`` (a dict or JSON text of an object), for
        ``program_id`` when given (its resources; cancelled when it closes). With
        ``allowed`` (a step's declared tools), any other name is refused with an error
        result that lists the allowed ones, whether or not it is registered."""
        cap = self.settings.max_result_bytes if max_result_bytes is _DEFAULT else max_result_bytes
        if allowed is not None and name not in allowed:
            return cap_result(self._refused(name, allowed, call_id, clock), cap)
        if program_id is None:
            return cap_result(await self._call(name, arguments, call_id, clock, None), cap)
        if program_id in self._closed_set:
            return ToolResult.failure(call_id, name, f"program {program_id!r} is over; its "
                                      "tool calls are refused", clock(), error_type=CANCELLED)
        task = asyncio.ensure_future(self._call(name, arguments, call_id, clock, program_id))
        calls = self._calls.setdefault(program_id, set())
        calls.add(task)
        task.add_done_callback(calls.discard)
        return cap_result(await task, cap)

    def _refused(self, name: str, allowed: Collection[str], call_id: str,
                 clock: Callable[[], float]) -> ToolResult:
        listed = ", ".join(allowed) if allowed else "none"
        error_type = "UndeclaredToolError" if name in self.registry else "UnknownToolError"
        return ToolResult.failure(
            call_id, str(name), f"there is no tool {name!r} here; the tools you can call "
            f"are: {listed}. Call one of those, with arguments that fit its parameters.",
            clock(), error_type=error_type)

    async def _call(self, name: str, arguments: dict[str, Any] | str, call_id: str,
                    clock: Callable[[], float], program_id: str | None) -> ToolResult:
        try:
            tool = self.registry.get(name)
            kwargs = tool.validate_args(_parse_arguments(name, arguments))
        except (UnknownToolError, ToolArgumentsError) as exc:
            return ToolResult.failure(call_id, name, str(exc), started_at=clock(),
                                      error_type=type(exc).__name__)
        self._prime(tool)
        if not tool.resources:
            return self._recorded(await self._execute(tool, kwargs, call_id, clock,
                                                      CallOptions(program_id=program_id)))
        return await self._call_with_resources(tool, kwargs, call_id, clock, program_id)

    async def _call_with_resources(self, tool: RegisteredTool, kwargs: dict[str, Any],
                                   call_id: str, clock: Callable[[], float],
                                   program_id: str | None) -> ToolResult:
        started, asked = clock(), self.resources.clock()
        scope = self.resources.get(program_id) if program_id is not None else None
        try:
            if scope is None:
                raise ResourceError(f"tool {tool.name!r} needs per-program resources "
                                    f"({', '.join(tool.spec.resources.values())}), which "
                                    "exist only inside a program (open_program)")
            leases = await scope.leases(tool)
        except ResourceError as exc:
            return ToolResult.failure(call_id, tool.name, str(exc), started,
                                      clock() - started, error_type="ResourceError")
        waited = self.resources.clock() - asked
        kwargs.update({param: lease.value for param, lease in leases.items()})
        workdir = next((w for lease in leases.values()
                        if (w := lease.pool.workdir(lease.value)) is not None), None)
        result = await self._execute(tool, kwargs, call_id, clock,
                                     CallOptions(workdir, program_id=program_id))
        _add_waits(result, leases.values(), asked, waited)
        return self._recorded(result)

    async def _execute(self, tool: RegisteredTool, kwargs: dict[str, Any], call_id: str,
                       clock: Callable[[], float], options: CallOptions) -> ToolResult:
        options = CallOptions(options.workdir, self.settings.blocking_threshold_s,
                              options.program_id)
        executor = self._executor(tool.spec.executor)
        return await executor.execute(tool, kwargs, call_id, clock, options)

    def _recorded(self, result: ToolResult) -> ToolResult:
        self.durations.record(result.name, max(result.timings.run_s, 0.0))
        return result

    def _prepared(self, lease: Lease) -> None:
        self.preparations.record(lease.pool.name, max(lease.prepare_s, 0.0))

    async def call_openai(
        self, tool_call: Mapping[str, Any], clock: Callable[[], float] = time.monotonic,
        *, program_id: str | None = None,
    ) -> ToolResult:
        """Run an OpenAI-shaped tool call ``{"id", "function": {"name", "arguments"}}``."""
        function = tool_call.get("function")
        call_id = str(tool_call.get("id", ""))
        if not isinstance(function, Mapping) or not isinstance(function.get("name"), str):
            error = (
                "malformed tool call: expected {'id': ..., 'type': 'function', "
                f"'function': {{'name': ..., 'arguments': ...}}}}, got {dict(tool_call)!r}"
            )
            return ToolResult.failure(call_id, "", error, started_at=clock(),
                                      error_type="MalformedToolCall")
        arguments = function.get("arguments") or {}
        return await self.call(function["name"], arguments, call_id, clock,
                               program_id=program_id)

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

    def executor(self, kind: str) -> ToolExecutor:
        """The executor of kind ``kind`` this manager uses (created if need be)."""
        return self._executor(kind)

    def close(self) -> None:
        """Shut down the executors this manager created. Idempotent."""
        for executor in self._owned:
            executor.shutdown()
            self._executors = {k: v for k, v in self._executors.items() if v is not executor}
        self._owned.clear()


def _add_waits(result: ToolResult, leases: Iterable[Lease], asked: float,
               waited: float) -> None:
    """Put the call's resource waits into its timings (manager clock), and into its
    start and duration (the waiting was part of the call for its caller)."""
    timings = result.timings
    for lease in leases:
        slot_wait = max(0.0, min(lease.granted_at, asked + waited) - asked)
        timings.resource_wait_s = max(timings.resource_wait_s, slot_wait)
        prepare_wait = max(0.0, lease.ready_at - max(asked, lease.granted_at))
        timings.prepare_wait_s = max(timings.prepare_wait_s, min(prepare_wait, waited))
        timings.prepare_s += lease.prepare_s
    result.started_at -= waited
    result.duration_s += waited


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
