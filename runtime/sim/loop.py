"""An asyncio event loop on the simulator's virtual clock.

Programs written against asyncio (step bodies, the runner's `execute_program`, the
planner session, deadlines with `asyncio.wait_for`, tools that `await asyncio.sleep`)
run unchanged on it, while simulated engines step on the discrete-event queue:

    loop.time()          the simulation's `now`, not the wall clock
    ready callbacks      run as usual, at the current virtual time
    the loop would block (nothing ready): instead of waiting, the selector
        - handles the next simulator event if it comes no later than the next loop
          timer (its time becomes `now`; its handler may resolve futures), or
        - moves `now` to the next loop timer (a sleep, a timeout), or
        - raises `Stalled` when neither exists: every program waits on something that
          can never happen.

One simulator event is handled per wake, so the programs a finished call resumes run
before the next event at the same instant, as the trace player's do; workers start
their next steps once those reactions are in (`EventSource.settle`). Nothing reads the
wall clock, and no thread or real I/O is involved (tools run inline), so a run is as
deterministic as the rest of the simulator.
"""
from __future__ import annotations

import asyncio
import math
import selectors
from typing import Callable, Protocol


class Stalled(RuntimeError):
    """The simulation can make no progress: programs wait, nothing is scheduled."""


class EventSource(Protocol):
    """What the loop asks the simulator when every program waits."""

    def settle(self) -> None:
        """Every reaction at the current instant is in: act on them (start steps)."""
        ...

    def next_event_time(self) -> float: ...
    def handle_next_event(self) -> None:
        """Pop the earliest event, set the clock to its time, handle it."""
        ...


class _VirtualSelector(selectors.DefaultSelector):
    """Polls real file descriptors (only the loop's own wake-up pipe) without
    blocking; where the loop would block, time moves instead."""

    def __init__(self, loop_time: Callable[[], float], idle: Callable[[float], None]) -> None:
        super().__init__()
        self._idle = idle

    def select(self, timeout: float | None = None):
        ready = super().select(0)
        if ready or timeout == 0:
            return ready
        self._idle(math.inf if timeout is None else timeout)
        return []


class VirtualLoop(asyncio.SelectorEventLoop):
    def __init__(self, source: EventSource, start: float = 0.0) -> None:
        self._now = start
        self._source = source
        super().__init__(selector=_VirtualSelector(self.time, self._idle))

    def time(self) -> float:
        return self._now

    def next_timer_at(self) -> float:
        """When the loop's earliest pending timer fires (inf without one): a sleep or a
        timeout of some program, which may submit work then."""
        return min((h.when() for h in self._scheduled if not h.cancelled()), default=math.inf)

    def set_time(self, now: float) -> None:
        """The simulator's clock moved to `now` (never backwards)."""
        if now < self._now:
            raise ValueError(f"virtual time cannot go back from {self._now} to {now}")
        self._now = now

    def _idle(self, timeout: float) -> None:
        self._source.settle()
        timer_at = self._now + timeout
        event_at = self._source.next_event_time()
        if event_at <= timer_at and math.isfinite(event_at):
            self._source.handle_next_event()
        elif math.isfinite(timer_at):
            self._now = timer_at
        else:
            raise Stalled("every program waits and nothing is scheduled: a call no "
                          "engine will finish, or an await on something that never "
                          "happens in a simulation (threads, real I/O)")
