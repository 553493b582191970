"""Executors: how a tool's function runs, picked by name from the tool's spec.

Contract of ``ToolExecutor.execute``: run the tool once with already validated keyword
arguments, under the spec's timeout, and return a ``ToolResult``. It never raises for
anything the tool does (exception, timeout, bad return): those become error results.
Only cancellation of the awaiting task propagates (``asyncio.CancelledError``).

Timeouts abandon the call; they cannot stop code that is already running. A sync
function on the ``inline`` executor blocks the loop until it returns (the timeout is
only noticed afterwards), and a thread keeps running after its call timed out.
"""

from __future__ import annotations

import asyncio
import functools
from abc import ABC, abstractmethod
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from agentrt.toolmgr.registry import RegisteredTool
from agentrt.toolmgr.result import ToolResult

Clock = Callable[[], float]


class ToolExecutor(Protocol):
    name: ClassVar[str]

    async def execute(
        self, tool: RegisteredTool, arguments: dict[str, Any], call_id: str, clock: Clock
    ) -> ToolResult: ...

    def shutdown(self) -> None:
        """Release resources; ``execute`` must not be called afterwards."""


@dataclass(slots=True)
class _Raised:
    """Marks an exception the tool raised (``exc``), or a timeout (``exc is None``)."""

    exc: Exception | None

    def describe(self, tool: RegisteredTool) -> str:
        if self.exc is None:
            return (
                f"tool {tool.name!r} timed out after {tool.spec.timeout_s:g}s; raise its "
                "timeout_s or make the call cheaper"
            )
        return f"{type(self.exc).__name__}: {self.exc}"


class _TimedExecutor(ABC):
    """Timing, timeout and error capture shared by the executors; subclasses only say
    how to start the function (``_start``)."""

    name: ClassVar[str] = ""

    async def execute(
        self, tool: RegisteredTool, arguments: dict[str, Any], call_id: str, clock: Clock
    ) -> ToolResult:
        started = clock()
        try:
            outcome = await asyncio.wait_for(self._guarded(tool, arguments), tool.spec.timeout_s)
        except TimeoutError:
            outcome = _Raised(None)
        elapsed = clock() - started
        if isinstance(outcome, _Raised):
            error = outcome.describe(tool)
            return ToolResult.failure(call_id, tool.name, error, started, elapsed)
        return ToolResult(call_id, tool.name, True, outcome, None, started, elapsed)

    async def _guarded(self, tool: RegisteredTool, arguments: dict[str, Any]) -> Any:
        # Catching here keeps a TimeoutError raised *by the tool* apart from ours.
        try:
            return await self._start(tool, arguments)
        except Exception as exc:  # noqa: BLE001 - a tool failure is data, not a crash
            return _Raised(exc)

    @abstractmethod
    async def _start(self, tool: RegisteredTool, arguments: dict[str, Any]) -> Any:
        """Run the tool's function and return its output (or raise what it raised)."""

    def shutdown(self) -> None:
        return None


class InlineExecutor(_TimedExecutor):
    """Runs the function in the event loop: awaits async functions, calls sync ones.

    For async tools and for sync tools that return in microseconds; a slow sync tool
    here stalls every other coroutine in the loop.
    """

    name: ClassVar[str] = "inline"

    async def _start(self, tool: RegisteredTool, arguments: dict[str, Any]) -> Any:
        if tool.is_async:
            return await tool.fn(**arguments)
        return tool.fn(**arguments)


class ThreadExecutor(_TimedExecutor):
    """Runs sync functions in a thread pool owned by this executor; awaits async ones
    in the loop (they do not block it). Call ``shutdown()`` when done."""

    name: ClassVar[str] = "thread"

    def __init__(self, max_workers: int | None = None) -> None:
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="tool")

    async def _start(self, tool: RegisteredTool, arguments: dict[str, Any]) -> Any:
        if tool.is_async:
            return await tool.fn(**arguments)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, functools.partial(tool.fn, **arguments))

    def shutdown(self) -> None:
        """Stop accepting work; does not wait for threads still running a tool."""
        self._pool.shutdown(wait=False, cancel_futures=True)


EXECUTORS: dict[str, type[_TimedExecutor]] = {
    InlineExecutor.name: InlineExecutor,
    ThreadExecutor.name: ThreadExecutor,
}


def make_executor(name: str) -> ToolExecutor:
    """A new executor of kind ``name``; raises ``ValueError`` listing the valid names."""
    try:
        return EXECUTORS[name]()
    except KeyError:
        valid = ", ".join(sorted(EXECUTORS))
        raise ValueError(f"unknown executor {name!r}; valid executors: {valid}") from None
