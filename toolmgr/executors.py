"""Executors: how a tool's function runs, picked by name from the tool's spec.

    executor     runs the function            a timeout or cancellation ...
    thread       in a worker thread (default)  abandons it: a thread cannot be killed;
                                               it runs on, its result is discarded
    subprocess   in a sandboxed child process  kills the child's whole process tree
                 (subprocess_executor)         (SIGTERM, then SIGKILL after a grace)
    ray          as a Ray task (ray_executor)  cancels the task, force-killing its worker
    inline       in the event loop             cannot interrupt code that does not yield;
                                               it is detected and reported afterwards

The contract every executor keeps is in ``executor_base``. Async functions run in the
event loop under every in-process executor (``thread`` included, where they do not
need a thread); the loop time their code holds between yields is measured, and a
stretch past ``CallOptions.blocking_threshold_s`` is reported on the result.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar

from agentrt.toolmgr.executor_base import (
    CallOptions, Clock, Outcome, TimedExecutor, ToolExecutor, timeout_message,
)
from agentrt.toolmgr.loop_guard import LoopHold, call_timed, run_timed
from agentrt.toolmgr.ray_executor import RayExecutor
from agentrt.toolmgr.registry import RegisteredTool
from agentrt.toolmgr.result import TIMEOUT
from agentrt.toolmgr.subprocess_executor import SubprocessExecutor

log = logging.getLogger("agentrt.toolmgr")


def blocked_warning(tool: RegisteredTool, hold: LoopHold, threshold_s: float) -> str:
    return (f"tool {tool.name!r} held the event loop for {hold.longest_s:.3f}s without "
            f"yielding (threshold {threshold_s:g}s): every other program on this runner "
            "waited that long. Tools that block must not run in the loop; declare it "
            "executor='thread' or executor='subprocess'.")


def _report_hold(tool: RegisteredTool, hold: LoopHold, options: CallOptions,
                 outcome: Outcome) -> Outcome:
    outcome.blocked_loop_s = hold.longest_s
    if hold.longest_s > options.blocking_threshold_s:
        warning = blocked_warning(tool, hold, options.blocking_threshold_s)
        outcome.warnings.append(warning)
        log.warning(warning)
    return outcome


async def _run_in_loop(tool: RegisteredTool, arguments: dict[str, Any],
                       options: CallOptions) -> Outcome:
    """An async function under its timeout, every stretch in the loop timed."""
    hold = LoopHold()
    try:
        async with asyncio.timeout(tool.spec.timeout_s) as deadline:
            value = await run_timed(tool.fn(**arguments), hold)
    except TimeoutError as exc:
        if not deadline.expired():  # the tool's own TimeoutError
            return _report_hold(tool, hold, options, Outcome.raised(exc))
        return _report_hold(tool, hold, options,
                            Outcome(error=timeout_message(tool), error_type=TIMEOUT))
    except Exception as exc:  # noqa: BLE001 - a tool failure is data
        return _report_hold(tool, hold, options, Outcome.raised(exc))
    return _report_hold(tool, hold, options, Outcome(value=value))


class InlineExecutor(TimedExecutor):
    """Runs the function in the event loop: awaits async functions, calls sync ones.

    Choosing it declares the function non-blocking. What it can enforce: the timeout of
    an async function that yields (``await``s) often enough. What it cannot: stopping a
    sync function, or an async one between two yields, since the loop itself is busy
    running it. It detects both afterwards: a call whose wall time went past
    ``timeout_s`` is a ``timeout`` error even if the function returned a value (the
    value is discarded), and a stretch held past the blocking threshold is a warning
    on the result. Deadlines of every program on the runner slip meanwhile.
    """

    name: ClassVar[str] = "inline"
    enforces_own_timeout: ClassVar[bool] = True

    async def _run(self, tool: RegisteredTool, arguments: dict[str, Any],
                   options: CallOptions) -> Outcome:
        start = time.perf_counter()
        if tool.is_async:
            outcome = await _run_in_loop(tool, arguments, options)
        else:
            hold = LoopHold()
            try:
                outcome = Outcome(value=call_timed(tool.fn, arguments, hold))
            except Exception as exc:  # noqa: BLE001 - a tool failure is data
                outcome = Outcome.raised(exc)
            _report_hold(tool, hold, options, outcome)
        wall = time.perf_counter() - start
        if outcome.error_type != TIMEOUT and wall > tool.spec.timeout_s:
            outcome.value = None
            outcome.error_type = TIMEOUT
            outcome.error = (
                f"tool {tool.name!r} ran {wall:.2f}s in the event loop, past its "
                f"timeout_s of {tool.spec.timeout_s:g}s; the inline executor cannot "
                "interrupt code that does not yield, so its result is discarded. "
                "Declare it executor='thread' or executor='subprocess'.")
        return outcome


class _ThreadCall:
    """One call handed to the pool; ``done`` once its function has returned or raised."""

    __slots__ = ("done",)

    def __init__(self) -> None:
        self.done = False


class ThreadExecutor(TimedExecutor):
    """Runs sync functions in a thread pool owned by this executor; async ones in the
    loop (as ``inline`` does, blocking detection included). Call ``shutdown()`` when done.

    A thread cannot be killed from Python. When a call times out or is cancelled (its
    program's deadline, an abort) its thread runs on until the function returns; the
    call is over for the caller at once, and whatever the function returns later is
    discarded (``abandoned_running`` counts such threads). Tools that must be stoppable
    belong on the ``subprocess`` executor.
    """

    name: ClassVar[str] = "thread"
    enforces_own_timeout: ClassVar[bool] = False

    def __init__(self, max_workers: int | None = None) -> None:
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="tool")
        self._lock = threading.Lock()
        self._abandoned: set[_ThreadCall] = set()  # given up, thread still running

    @property
    def abandoned_running(self) -> int:
        """Threads still running a call whose caller gave up (timeout or cancellation)."""
        with self._lock:
            return len(self._abandoned)

    async def _run(self, tool: RegisteredTool, arguments: dict[str, Any],
                   options: CallOptions) -> Outcome:
        if tool.is_async:
            return await _run_in_loop(tool, arguments, options)
        call = _ThreadCall()
        future = self._pool.submit(self._in_thread, call, tool.fn, arguments)
        try:
            return Outcome(value=await asyncio.wrap_future(future))
        except asyncio.CancelledError:
            if not future.cancel():  # already running: it cannot be stopped
                self._abandon(call, tool)
            raise

    def _in_thread(self, call: _ThreadCall, fn: Callable[..., Any],
                   arguments: dict[str, Any]) -> Any:
        try:
            return fn(**arguments)
        finally:
            with self._lock:
                call.done = True
                self._abandoned.discard(call)

    def _abandon(self, call: _ThreadCall, tool: RegisteredTool) -> None:
        with self._lock:
            if call.done:
                return
            self._abandoned.add(call)
        log.warning("tool %r was given up (timeout or cancellation) but its thread cannot "
                    "be killed; it runs on and its result will be discarded", tool.name)

    def _timed_out(self, tool: RegisteredTool) -> Outcome:
        outcome = super()._timed_out(tool)
        outcome.warnings.append("the tool's thread cannot be killed: it runs on until the "
                                "function returns, and its result will be discarded")
        return outcome

    def shutdown(self) -> None:
        """Stop accepting work; does not wait for threads still running a tool."""
        self._pool.shutdown(wait=False, cancel_futures=True)


EXECUTORS: dict[str, Callable[[], ToolExecutor]] = {
    InlineExecutor.name: InlineExecutor,
    ThreadExecutor.name: ThreadExecutor,
    SubprocessExecutor.name: SubprocessExecutor,
    RayExecutor.name: RayExecutor,
}


def make_executor(name: str) -> ToolExecutor:
    """A new executor of kind ``name``; raises ``ValueError`` listing the valid names."""
    try:
        return EXECUTORS[name]()
    except KeyError:
        valid = ", ".join(sorted(EXECUTORS))
        raise ValueError(f"unknown executor {name!r}; valid executors: {valid}") from None


__all__ = ["EXECUTORS", "CallOptions", "Clock", "InlineExecutor", "ThreadExecutor",
           "ToolExecutor", "make_executor"]
