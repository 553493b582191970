import pytest

from agentrt.runtime.core.queueing.registry import make_queue
from tests.core.builders import make_request


def submit_all(queue, specs):
    for request_id, program_arrival, arrival in specs:
        request = make_request(request_id, program=request_id[0],
                               program_arrival=program_arrival)
        request.arrival = arrival
        queue.push(request)


def drain(queue):
    out = []
    while (request := queue.pop()) is not None:
        out.append(request.request_id)
    return out


# (request id, program arrival, request arrival): program "a" started first but its
# second turn arrives after program "b"'s first call.
SPECS = [("b1", 5.0, 5.0), ("a2", 0.0, 6.0), ("c1", 7.0, 7.0), ("b2", 5.0, 8.0)]


def test_request_fcfs_orders_by_request_arrival():
    queue = make_queue("request_fcfs")
    submit_all(queue, SPECS)
    assert drain(queue) == ["b1", "a2", "c1", "b2"]


def test_program_fcfs_orders_by_program_arrival_then_request_arrival():
    queue = make_queue("program_fcfs")
    submit_all(queue, SPECS)
    assert drain(queue) == ["a2", "b1", "b2", "c1"]


def test_ties_keep_push_order_and_priority_is_stamped():
    queue = make_queue("program_fcfs")
    submit_all(queue, [("x1", 1.0, 1.0), ("y1", 1.0, 1.0)])
    assert queue.peek().priority == (1.0, 1.0)
    assert drain(queue) == ["x1", "y1"]


def test_remove_peek_and_len():
    queue = make_queue("request_fcfs")
    submit_all(queue, SPECS)
    assert queue.remove("b1").request_id == "b1"
    assert queue.remove("b1") is None
    assert len(queue) == 3 and "b1" not in queue
    assert queue.peek().request_id == "a2"
    assert [r.request_id for r in queue] == ["a2", "c1", "b2"]


def test_duplicate_push_is_rejected():
    queue = make_queue("request_fcfs")
    submit_all(queue, SPECS[:1])
    with pytest.raises(ValueError, match="already queued"):
        submit_all(queue, SPECS[:1])


def test_unknown_policy_lists_valid_names():
    with pytest.raises(ValueError, match="program_fcfs.*request_fcfs"):
        make_queue("lifo")
