"""Prompts sent as deltas on what the receiver holds (`runtime.cluster.session_sync`):
what crosses is the new part, the receiver rebuilds exactly what was sent, a base it
does not hold is refused and answered whole, a session that moves reaches its new
worker whole, and a session's state goes when it ends."""
from __future__ import annotations

import asyncio

import pytest

from agentrt.kvcache.prefix import TokenChain, stable_hash
from agentrt.runtime import wire
from agentrt.runtime.cluster import commands as cmd
from agentrt.runtime.cluster.clock import RunClock
from agentrt.runtime.cluster.scheduler_actor import ActorTransport
from agentrt.runtime.cluster.session_sync import (
    ChainDelta, MessagesDelta, Mismatch, SessionReceiver, SessionSender, Whole,
)
from agentrt.runtime.cluster.worker_actor import WorkerActor
from agentrt.runtime.core.messages import EngineStats, LLMRequest
from agentrt.runtime.core.session_chain import SessionChain
from agentrt.runtime.core.stealing import SessionMove


def turns(session: str, n: int, block_size: int = 16):
    """A session's prompt at each of its first `n` calls, with its messages."""
    chain = SessionChain(session, block_size, "sys", 2000)
    messages = [{"role": "system", "content": "you fix bugs"}]
    for turn in range(n):
        messages = [*messages, {"role": "user", "content": f"step {turn}"}]
        prompt = chain.add_input(turn, 400)
        yield LLMRequest(f"{session}#{turn}", "p0", session, "m", prompt, 64,
                         messages=list(messages))
        chain.chain.extend_synthetic(stable_hash("out", session, turn), 150)
        messages = [*messages, {"role": "assistant", "content": f"reply {turn}"}]


def cross(request: LLMRequest) -> LLMRequest:
    return wire.decode(wire.encode(request))


def test_a_growing_session_sends_only_its_new_part_and_is_rebuilt_exactly():
    sender, receiver = SessionSender(), SessionReceiver()
    sizes = []
    for request in turns("s", 30):
        sent = sender.request(request)
        data = wire.encode(sent)
        sizes.append((len(data), len(wire.encode(request))))
        back = receiver.request(wire.decode(data))
        assert back.prefix == request.prefix and back.messages == request.messages
    first, last = sizes[0], sizes[-1]
    assert first[0] == pytest.approx(first[1], rel=0.05)  # nothing held: whole
    assert last[1] > 8 * last[0]  # turn 30 whole is many times its delta
    # the delta's size does not grow with the session's length
    assert max(s for s, _ in sizes[1:]) < 1.5 * min(s for s, _ in sizes[1:])


def test_a_rewritten_conversation_is_sent_from_where_it_differs():
    sender, receiver = SessionSender(), SessionReceiver()
    requests = list(turns("s", 3))
    for request in requests:
        receiver.request(cross(sender.request(request)))
    messages = requests[-1].messages
    messages[1] = {"role": "user", "content": "step 0, summarized"}  # edited in place
    chain = TokenChain(16)
    chain.extend_synthetic(stable_hash("compacted"), 700)
    request = LLMRequest("s#3", "p0", "s", "m", chain, 64, messages=messages)
    sent = sender.request(request)
    assert sent.prefix is chain  # no block in common: whole
    assert sent.messages.base == 1  # the system message still holds
    back = receiver.request(cross(sent))
    assert back.messages == messages and back.prefix == chain


def test_a_base_the_receiver_lacks_is_refused_and_answered_whole():
    sender = SessionSender()
    requests = list(turns("s", 3))
    sender.request(requests[0])
    sent = cross(sender.request(requests[1]))
    assert isinstance(sent.prefix, ChainDelta) and isinstance(sent.messages, MessagesDelta)
    fresh = SessionReceiver()  # lost its state: holds nothing of the session
    with pytest.raises(Mismatch) as miss:
        fresh.request(sent)
    assert miss.value.kind == "chain"
    # a receiver holding another prompt of the session refuses it too
    other = SessionReceiver()
    other.request(cross(SessionSender().request(next(turns("s2", 1)))))
    other.chain("s", next(turns("s3", 1)).prefix)
    with pytest.raises(Mismatch):
        other.chain("s", sent.prefix)
    # the sender answers with the whole value, which the receiver takes as its own
    whole = sender.whole("s", "chain", miss.value.delta)
    assert whole == requests[1].prefix
    fresh.set_whole("s", "chain", whole)
    messages = sender.whole("s", "messages", sent.messages)
    assert messages == requests[1].messages
    fresh.set_whole("s", "messages", messages)
    back = fresh.request(cross(sender.request(requests[2])))  # and deltas work again
    assert back.prefix == requests[2].prefix and back.messages == requests[2].messages


def test_a_forgotten_session_goes_whole_again():
    sender, receiver = SessionSender(), SessionReceiver()
    requests = list(turns("s", 2))
    receiver.request(cross(sender.request(requests[0])))
    receiver.forget("s")
    with pytest.raises(Mismatch):
        receiver.request(cross(sender.request(requests[1])))
    sender.forget("s")  # the runner's answer to SyncMismatch
    sent = sender.request(requests[1])
    assert isinstance(sent.prefix, TokenChain) and sent.messages.base == 0
    assert receiver.request(cross(sent)).prefix == requests[1].prefix


def test_a_session_or_program_end_frees_its_state():
    sender, receiver = SessionSender(), SessionReceiver()
    for session, program in (("a", "p0"), ("b", "p0"), ("c", "p1")):
        request = next(turns(session, 1))
        request.program_id = program
        receiver.request(cross(sender.request(request)))
    receiver.forget("a")
    sender.forget("a")
    assert sorted(receiver.forget_program("p0")) == ["b"]
    assert sorted(sender.forget_program("p0")) == ["b"]
    assert receiver.sessions() == sender.sessions() == ["c"]
    receiver.forget_program("p1"), sender.forget_program("p1")
    assert len(receiver) == len(sender) == 0


class _Handle:
    """A worker handle that keeps the batches sent to it, decoded."""

    def __init__(self) -> None:
        self.batches: list[list] = []
        self.apply = self

    def remote(self, seq: int, batch: bytes) -> None:
        self.batches.append(wire.decode(batch).commands)


def transport(*workers: str) -> ActorTransport:
    t = ActorTransport(lambda at: None)
    t.handles = {w: _Handle() for w in workers}
    return t


def test_a_moved_session_reaches_its_thief_whole_and_leaves_its_source():
    t = transport("w0", "w1")
    first, second, third = turns("s", 3)
    t.send("w0", [first])
    t.send("w1", [first])  # w1 held the session once (an earlier turn ran there)
    t.flush()
    t.send("w0", [second])
    t.move(SessionMove("s", "w0", "w1", 2000, third.prefix, "network"))
    t.send("w1", [third])
    t.flush()
    src, dst = t.handles["w0"].batches[-1], t.handles["w1"].batches[-1]
    assert isinstance(src[0].requests[0].prefix, ChainDelta)
    hand_over = src[1]
    assert type(hand_over) is cmd.HandOver and isinstance(hand_over.prefix, ChainDelta)
    assert [type(c) for c in dst] == [cmd.Forget, cmd.Expect, cmd.Send]
    assert dst[2].requests[0].prefix == third.prefix  # whole, not a delta
    assert dst[2].requests[0].messages.base == 0
    assert not t.senders["w0"].holds("s")  # the source dropped it with the hand-over
    # a move that recomputes releases the session at the source
    t.move(SessionMove("s", "w1", "w0", 2000, None))
    t.flush()
    assert [type(c) for c in t.handles["w1"].batches[-1]] == [cmd.Release]
    assert not t.senders["w1"].holds("s")


def test_a_session_end_tells_every_worker_holding_it_to_forget_it():
    t = transport("w0", "w1", "w2")
    request = next(turns("s", 1))
    t.send("w0", [request])
    t.send("w1", [request])
    t.flush()
    t.release("w0", "s")  # its home: the control releases it there
    t.session_over("s")
    t.flush()
    assert [type(c) for c in t.handles["w0"].batches[-1]] == [cmd.Release]
    assert [type(c) for c in t.handles["w1"].batches[-1]] == [cmd.Forget]
    assert len(t.handles["w2"].batches) == 0
    assert not any(len(s) for s in t.senders.values())


# -- a worker that lacks a base asks the scheduler ----------------------------------
class _Engine:
    worker_id = "w0"

    def __init__(self, worker_id: str) -> None:
        self.submitted: list[LLMRequest] = []

    def submit(self, request: LLMRequest, now: float) -> None:
        self.submitted.append(request)

    def stats(self) -> EngineStats:
        return EngineStats("w0", 0, len(self.submitted), 100, 0, 0, 0, 16, 0, 0, 0.0, 0)


class _Remote:
    def __init__(self, answer) -> None:
        self.answer, self.calls = answer, []

    def remote(self, *args):
        self.calls.append(args)
        future = asyncio.get_running_loop().create_future()
        future.set_result(self.answer(*args))
        return future


def worker(scheduler_sender: SessionSender | None):
    """The worker actor's class, unwrapped, with a recording engine; its scheduler
    answers resend requests from `scheduler_sender` (None: it keeps nothing)."""
    cls = WorkerActor.__ray_metadata__.modified_class.__mro__[1]
    scheduler = type("Scheduler", (), {})()

    def resend(worker_id, session_id, kind, delta):
        value = (scheduler_sender.whole(session_id, kind, wire.decode(delta))
                 if scheduler_sender is not None else None)
        return wire.encode(Whole(chain=value) if kind == "chain" else Whole(messages=value))

    scheduler.resend = _Remote(resend)
    scheduler.report = _Remote(lambda *args: None)
    return cls("w0", _Engine, RunClock(0.0), scheduler), scheduler


def batch(*commands) -> bytes:
    return wire.encode(cmd.Batch(list(commands)))


def test_a_worker_missing_a_base_asks_the_scheduler_and_runs_the_call_whole():
    sender = SessionSender()
    first, second = turns("s", 2)
    sender.request(first)  # sent to this worker, which then lost it (state reset)
    delta = sender.request(second)
    assert isinstance(delta.prefix, ChainDelta)
    actor, scheduler = worker(sender)

    async def go():
        await actor.apply(0, batch(cmd.Send([delta])))

    asyncio.run(go())
    [ran] = actor.engine.submitted
    assert ran.prefix == second.prefix and ran.messages == second.messages
    assert [c[2] for c in scheduler.resend.calls] == ["chain", "messages"]
    assert len(actor._sync) == 1  # and it now holds the session


def test_a_call_whose_prompt_the_scheduler_no_longer_has_fails_with_the_reason():
    sender = SessionSender()
    first, second = turns("s", 2)
    sender.request(first)
    delta = sender.request(second)
    actor, scheduler = worker(None)

    async def go():
        await actor.apply(0, batch(cmd.Send([delta])))
        await asyncio.sleep(0)  # the error reply goes out on the next turn of the loop

    asyncio.run(go())
    assert actor.engine.submitted == []
    [(_, events, _, _)] = scheduler.report.calls
    [failed] = [wire.decode(e) for e in events]
    assert failed.finish_reason == "error" and "lost the prompt" in failed.error
