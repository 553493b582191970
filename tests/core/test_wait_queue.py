"""The wait-queue mechanism shared by every policy: lazy deletion, re-keying, timers."""
import pytest

from agentrt.runtime.core.queueing.registry import QUEUE_POLICIES, WaitQueue, make_queue
from tests.core.builders import drain, ids, make_request


def by_tag(tags):
    """A key function reading each request's entry in `tags` (mutable in a test)."""
    return lambda request, now: (tags[request.request_id],)


@pytest.mark.parametrize("name", sorted(QUEUE_POLICIES))
def test_every_policy_queue_offers_the_same_operations(name):
    queue = make_queue(name)
    for i, program in enumerate(["a", "b", "c"]):
        queue.push(make_request(f"{program}1", program=program, program_arrival=i,
                                arrival=i))
    with pytest.raises(ValueError, match="already queued"):
        queue.push(make_request("a1", program="a"))
    assert len(queue) == 3 and "b1" in queue
    assert queue.remove("b1").request_id == "b1" and queue.remove("b1") is None
    assert queue.rekey("b1", 5.0) is False
    assert queue.peek().request_id == "a1"
    assert ids(queue) == ["a1", "c1"]
    assert drain(queue) == ["a1", "c1"] and queue.pop() is None and queue.peek() is None


def test_rekey_moves_a_request_and_keeps_push_order_among_equals():
    tags = {"x": 1, "y": 1, "z": 1}
    queue = WaitQueue(by_tag(tags))
    for rid in ["x", "y", "z"]:
        queue.push(make_request(rid))
    tags["x"] = 2
    assert queue.rekey("x", 0.0)
    tags["z"] = 0
    assert queue.rekey("z", 0.0)
    assert queue.peek().priority == (0,)
    tags["x"] = 1  # back to the tie: x was pushed before y, so it goes first again
    queue.rekey("x", 0.0)
    assert drain(queue) == ["z", "x", "y"]


def test_timers_rekey_requests_when_their_key_expires():
    # Level 1 until 10 s after arrival, then level 0: the shape of a starvation promotion.
    def key(r, now):
        return (0 if now >= r.arrival + 10 else 1, r.arrival)

    def expires(r, now):
        return r.arrival + 10 if now < r.arrival + 10 else float("inf")

    queue = WaitQueue(key, expires)
    queue.push(make_request("old", arrival=0.0), now=0.0)
    queue.push(make_request("new", arrival=5.0), now=5.0)
    queue.push(make_request("fresh", arrival=12.0), now=12.0)
    assert queue.peek().request_id == "old"  # no `now`: no timer fires
    assert [r.priority for r in queue] == [(1, 0.0), (1, 5.0), (1, 12.0)]
    assert queue.pop(now=16.0).request_id == "old"  # promoted at 10
    assert queue.peek(now=16.0).priority == (0, 5.0)
    assert drain(queue, now=16.0) == ["new", "fresh"]


def test_many_rekeys_compact_without_losing_requests():
    tags = {f"r{i}": i for i in range(10)}
    queue = WaitQueue(by_tag(tags))
    for rid in tags:
        queue.push(make_request(rid))
    for round_ in range(30):
        for rid in tags:
            tags[rid] = (tags[rid] * 7 + round_) % 11
            queue.rekey(rid, 0.0)
    assert len(queue._heap) <= 2 * len(queue) + 64 + 1
    expected = sorted(tags, key=lambda rid: (tags[rid], int(rid[1:])))
    assert drain(queue) == expected
