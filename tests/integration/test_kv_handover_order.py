"""A stolen session's KV hand-over on Ray workers (kv_move="transfer"), with the two
messages that make it up forced into each order Ray may deliver them in.

The thief's `Expect` comes in its command batch from the scheduler; the KV comes in a
`receive_kv` call from the source worker, which sends it when it applies its own batch
(`HandOver`). Nothing orders the two. The worker actors' class runs here without Ray:
two workers on one event loop, the source's call to its peer captured and delivered
when the test says."""
from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from agentrt.runtime import wire
from agentrt.runtime.cluster import commands as cmd
from agentrt.runtime.cluster import worker_actor
from agentrt.runtime.cluster.clock import RunClock
from agentrt.runtime.engines.factory import EngineFactory
from tests.core.builders import make_request

SESSION = "p0/s"


class _Calls:
    """A stand-in for an actor method: `.remote(...)` records the call."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def remote(self, *args: Any) -> None:
        self.calls.append(args)


class _Peer:
    def __init__(self) -> None:
        self.receive_kv = _Calls()


class _Scheduler:
    def __init__(self) -> None:
        self.report = _Calls()


def worker(worker_id: str) -> Any:
    plain = worker_actor.WorkerActor.__ray_metadata__.modified_class
    return plain(worker_id, EngineFactory(kv_blocks=512), RunClock(time.time()), _Scheduler())


class Pair:
    """A source and a thief; batches numbered per worker as the scheduler does."""

    def __init__(self) -> None:
        self.src, self.thief = worker("w0"), worker("w1")
        self.peer = _Peer()
        self.src.peers = {"w1": self.peer}
        self.seq = {"w0": 0, "w1": 0}

    async def apply(self, target: Any, *commands: Any) -> None:
        seq = self.seq[target.worker_id]
        self.seq[target.worker_id] += 1
        await target.apply(seq, wire.encode(cmd.Batch(list(commands))))

    async def hand_over(self, move: int) -> tuple:
        """The source applies its HandOver; returns its call to the thief (not sent)."""
        prefix = make_request("x", session=SESSION, tokens=256).prefix
        await self.apply(self.src, cmd.HandOver(SESSION, prefix, "w1", "nvlink", move))
        return self.peer.receive_kv.calls.pop()

    def running(self, request_id: str) -> bool:
        """The thief's engine has the call (it is not held)."""
        return request_id in self.thief._live


def test_kv_landing_before_the_expect_holds_nothing():
    """The copy lands first: the stolen call must run at once, not wait for a copy
    that already came until the Expect times out."""
    async def run() -> None:
        pair = Pair()
        call = make_request("r1", session=SESSION)
        landed = await pair.hand_over(move=1)
        await pair.thief.receive_kv(*landed)
        await pair.apply(pair.thief, cmd.Expect(SESSION, 1), cmd.Send([call]))
        assert pair.running("r1")

    asyncio.run(run())


def test_an_earlier_moves_timeout_does_not_release_a_later_moves_calls(monkeypatch):
    """The session came to the thief, left, and comes back: the first Expect's timeout
    fires while the second copy is still on its way, and must not run the call before
    its KV lands."""
    monkeypatch.setattr(worker_actor, "EXPECT_TIMEOUT_S", 0.5)

    async def run() -> None:
        pair = Pair()
        await pair.apply(pair.thief, cmd.Expect(SESSION, 1))
        await pair.thief.receive_kv(*await pair.hand_over(move=1))
        await asyncio.sleep(0.3)
        await pair.apply(pair.thief, cmd.Expect(SESSION, 2),
                         cmd.Send([make_request("r2", session=SESSION)]))
        second = await pair.hand_over(move=2)
        await asyncio.sleep(0.35)  # past the first Expect's timeout, before the second's
        assert not pair.running("r2")
        await pair.thief.receive_kv(*second)
        assert pair.running("r2")

    asyncio.run(run())


def test_a_copy_landing_after_its_timeout_does_not_release_the_next_move(monkeypatch):
    monkeypatch.setattr(worker_actor, "EXPECT_TIMEOUT_S", 0.05)

    async def run() -> None:
        pair = Pair()
        await pair.apply(pair.thief, cmd.Expect(SESSION, 1),
                         cmd.Send([make_request("r1", session=SESSION)]))
        late = await pair.hand_over(move=1)
        await asyncio.sleep(0.15)
        assert pair.running("r1")  # the timeout let it run without its KV
        await pair.thief.receive_kv(*late)
        await pair.apply(pair.thief, cmd.Expect(SESSION, 2),
                         cmd.Send([make_request("r2", session=SESSION)]))
        assert not pair.running("r2")
        await pair.thief.receive_kv(*await pair.hand_over(move=2))
        assert pair.running("r2")

    asyncio.run(run())


@pytest.mark.parametrize("kv_first", [False, True])
def test_an_aborted_held_call_never_runs(kv_first):
    async def run() -> None:
        pair = Pair()
        landed = await pair.hand_over(move=1)
        if kv_first:
            await pair.thief.receive_kv(*landed)
        await pair.apply(pair.thief, cmd.Expect(SESSION, 1),
                         cmd.Send([make_request("r1", session=SESSION)]), cmd.Abort("r1"))
        if not kv_first:
            await pair.thief.receive_kv(*landed)
        assert not pair.running("r1") and not pair.thief.engine.has_work()

    asyncio.run(run())
