"""The executor contract and the timing, timeout and error capture all executors share.

Contract of ``ToolExecutor.execute``: run the tool once with already validated keyword
arguments, under the spec's timeout, and return a ``ToolResult`` whose ``executor``
names this executor. It never raises for anything the tool does (exception, timeout,
crash, bad return): those become error results with an ``error_type``. Only
cancellation of the awaiting task propagates (``asyncio.CancelledError``), after the
executor has done what it can to stop the call (see each executor for what that is).
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

from agentrt.toolmgr.registry import RegisteredTool
from agentrt.toolmgr.result import TIMEOUT, SandboxReport, ToolResult, exception_type

Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class CallOptions:
    """What a call needs besides its tool and arguments.

    ``workdir``: the program's workspace when the tool has one (a ``subprocess`` child
    runs there; otherwise it gets a scratch directory of its own). ``blocking_threshold_s``:
    how long code may hold the event loop at a stretch before the result says it
    blocked (see ``loop_guard``).
    """

    workdir: Path | None = None
    blocking_threshold_s: float = 0.1
    program_id: str | None = None


@dataclass(slots=True)
class Outcome:
    """What running the function gave: its value, or an error and its ``error_type``;
    plus warnings, the loop time it held and, for a child process, its sandbox."""

    value: Any = None
    error: str | None = None
    error_type: str | None = None
    warnings: list[str] = field(default_factory=list)
    blocked_loop_s: float = 0.0
    sandbox: SandboxReport | None = None

    @classmethod
    def raised(cls, exc: BaseException) -> Outcome:
        return cls(error=f"{type(exc).__name__}: {exc}", error_type=exception_type(exc))


class ToolExecutor(Protocol):
    name: ClassVar[str]

    async def execute(
        self, tool: RegisteredTool, arguments: dict[str, Any], call_id: str, clock: Clock,
        options: CallOptions | None = None,
    ) -> ToolResult: ...

    def shutdown(self) -> None:
        """Release resources; ``execute`` must not be called afterwards."""


def timeout_message(tool: RegisteredTool) -> str:
    return (f"tool {tool.name!r} timed out after {tool.spec.timeout_s:g}s; raise its "
            "timeout_s or make the call cheaper")


class TimedExecutor(ABC):
    """Timing, timeout and error capture; subclasses say how to run the function
    (``_run``) and may adjust a timed-out outcome (``_timed_out``)."""

    name: ClassVar[str] = ""
    enforces_own_timeout: ClassVar[bool] = False
    """True when ``_run`` applies ``timeout_s`` itself (and returns a timed-out outcome)."""

    async def execute(
        self, tool: RegisteredTool, arguments: dict[str, Any], call_id: str, clock: Clock,
        options: CallOptions | None = None,
    ) -> ToolResult:
        options = options or CallOptions()
        started = clock()
        timeout = None if self.enforces_own_timeout else tool.spec.timeout_s
        try:
            outcome = await asyncio.wait_for(self._guarded(tool, arguments, options), timeout)
        except TimeoutError:
            outcome = self._timed_out(tool)
        elapsed = clock() - started
        result = ToolResult(call_id, tool.name, outcome.error is None, outcome.value,
                            outcome.error, started, elapsed, error_type=outcome.error_type,
                            executor=self.name, warnings=outcome.warnings,
                            sandbox=outcome.sandbox)
        result.timings.run_s = elapsed
        result.timings.blocked_loop_s = outcome.blocked_loop_s
        return result

    async def _guarded(self, tool: RegisteredTool, arguments: dict[str, Any],
                       options: CallOptions) -> Outcome:
        # Catching here keeps a TimeoutError raised *by the tool* apart from ours.
        try:
            return await self._run(tool, arguments, options)
        except Exception as exc:  # noqa: BLE001 - a tool failure is data, not a crash
            return Outcome.raised(exc)

    @abstractmethod
    async def _run(self, tool: RegisteredTool, arguments: dict[str, Any],
                   options: CallOptions) -> Outcome:
        """Run the tool's function; return its outcome (or raise what it raised)."""

    def _timed_out(self, tool: RegisteredTool) -> Outcome:
        return Outcome(error=timeout_message(tool), error_type=TIMEOUT)

    def shutdown(self) -> None:
        return None
