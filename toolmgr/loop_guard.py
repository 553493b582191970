"""How long tool code held the event loop: the evidence that an "inline" tool blocked.

Code that runs in the event loop cannot be interrupted by it: a timeout, a deadline or
a cancellation is only delivered when the code yields. What the loop can do is measure,
for each stretch of the tool's code between two yields, how long it ran, and report a
tool whose longest stretch went past a threshold. ``call_timed`` measures a sync
function (one stretch: the whole call), ``run_timed`` an async one (one stretch per
resumption of its coroutine). Times are wall seconds of ``time.perf_counter``, not of
the caller's clock, because blocking is about real time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Coroutine, Generator
from dataclasses import dataclass
from typing import Any


@dataclass(slots=True)
class LoopHold:
    """What one call's code did to the loop: its longest uninterrupted stretch and the
    sum of all stretches, in wall seconds."""

    longest_s: float = 0.0
    total_s: float = 0.0

    def note(self, seconds: float) -> None:
        self.longest_s = max(self.longest_s, seconds)
        self.total_s += seconds


def call_timed(fn: Callable[..., Any], kwargs: dict[str, Any], hold: LoopHold) -> Any:
    """``fn(**kwargs)``, noting the call as one stretch in ``hold`` (also when it raises)."""
    start = time.perf_counter()
    try:
        return fn(**kwargs)
    finally:
        hold.note(time.perf_counter() - start)


async def run_timed(coro: Coroutine[Any, Any, Any], hold: LoopHold) -> Any:
    """Await ``coro``, noting each of its stretches between yields in ``hold``."""
    return await _Stretches(coro, hold)


class _Stretches:
    """An awaitable that drives ``coro`` step by step (as a task would) and times
    each step; whatever the coroutine yields to the task passes through unchanged."""

    __slots__ = ("_coro", "_hold")

    def __init__(self, coro: Coroutine[Any, Any, Any], hold: LoopHold) -> None:
        self._coro = coro
        self._hold = hold

    def __await__(self) -> Generator[Any, Any, Any]:
        inner = self._coro.__await__()
        to_send: Any = None
        to_throw: BaseException | None = None
        while True:
            start = time.perf_counter()
            try:
                yielded = inner.send(to_send) if to_throw is None else inner.throw(to_throw)
            except StopIteration as stop:
                return stop.value
            finally:
                self._hold.note(time.perf_counter() - start)
            try:
                to_send, to_throw = (yield yielded), None
            except GeneratorExit:
                inner.close()
                raise
            except BaseException as exc:  # noqa: BLE001 - delivered to the coroutine
                to_send, to_throw = None, exc
