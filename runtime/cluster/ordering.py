"""Calls that must be handled in the order they were made.

Ray may start an async actor's calls out of order, so a caller whose calls depend on
each other (a runner's chat, tool timings and step ends; the scheduler's command
batches to a worker) numbers them 0, 1, 2, ... and the receiver lets each through only
after the earlier ones.
"""
from __future__ import annotations

import asyncio


class CallerOrder:
    """Lets each caller's calls through in the order of their sequence numbers
    (0, 1, 2, ... per caller), parking any that arrive early. Every call let through
    must report `done`, and every number must arrive (Ray delivers each call; callers
    stop work with explicit calls, never by cancelling them)."""

    def __init__(self) -> None:
        self._next: dict[str, int] = {}
        self._parked: dict[tuple[str, int], asyncio.Future] = {}

    async def turn(self, caller: str, seq: int) -> None:
        """Return once every earlier call of `caller` has been let through."""
        if self._next.get(caller, 0) != seq:
            future = asyncio.get_running_loop().create_future()
            self._parked[(caller, seq)] = future
            await future

    def done(self, caller: str, seq: int) -> None:
        """Call `seq` of `caller` is through: let the next one go."""
        self._next[caller] = seq + 1
        future = self._parked.pop((caller, seq + 1), None)
        if future is not None:
            future.set_result(None)

    def forget(self, caller: str) -> None:
        """The caller is gone: drop its counter and wake nothing (its parked calls
        are abandoned with it)."""
        self._next.pop(caller, None)
        for key in [k for k in self._parked if k[0] == caller]:
            self._parked.pop(key).cancel()
