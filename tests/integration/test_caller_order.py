"""The scheduler actor takes each runner's calls in the order the runner made them,
whatever order Ray starts them in."""
from __future__ import annotations

import asyncio

from agentrt.runtime.cluster.scheduler_actor import CallerOrder


async def submit_all(arrival_order: list[tuple[str, int]]) -> list[tuple[str, int]]:
    order, through = CallerOrder(), []

    async def call(caller: str, seq: int) -> None:
        await order.turn(caller, seq)
        through.append((caller, seq))
        order.done(caller, seq)

    await asyncio.gather(*(call(c, s) for c, s in arrival_order))
    return through


def test_calls_of_one_caller_go_through_in_their_order():
    arrivals = [("a", 2), ("b", 1), ("a", 0), ("b", 0), ("a", 1), ("a", 3)]
    through = asyncio.run(submit_all(arrivals))
    assert [s for c, s in through if c == "a"] == [0, 1, 2, 3]
    assert [s for c, s in through if c == "b"] == [0, 1]


def test_calls_in_order_are_never_held():
    arrivals = [("a", 0), ("b", 0), ("a", 1)]
    assert asyncio.run(submit_all(arrivals)) == arrivals
