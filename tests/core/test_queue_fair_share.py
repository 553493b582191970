"""Agent Fair Share: per-tenant slowdown, the most slowed tenant first, preemption."""
import pytest

from agentrt.runtime.core.queueing.registry import make_queue, make_queue_policy
from tests.core.builders import drain, ids, make_done, make_request, make_scheduler


def call(rid, tenant, program, program_arrival, arrival):
    return make_request(rid, program=program, tenant=tenant,
                        program_arrival=program_arrival, arrival=arrival)


def run_call(policy, request, dispatched, started, finished):
    policy.on_submit(request, request.arrival)
    policy.on_dispatch(request, dispatched)
    policy.on_done(make_done(request, "w0", started=started, at=finished), finished,
                   dispatched)


def test_slowdown_is_pooled_elapsed_over_elapsed_minus_waiting():
    policy = make_queue_policy("fair_share")
    # Program pa (arrival 0): a call that waited 4 s and ran 2 s, then one queued at 16.
    run_call(policy, call("a0", "t", "pa", 0.0, 0.0), dispatched=4.0, started=4.0,
             finished=6.0)
    policy.on_submit(call("a1", "t", "pa", 0.0, 16.0), 16.0)
    # Program pb (arrival 10): a call dispatched after 2 s, still running.
    b0 = call("b0", "t", "pb", 10.0, 10.0)
    policy.on_submit(b0, 10.0)
    policy.on_dispatch(b0, 12.0)
    # At 20: elapsed 20 + 10 = 30; waiting 4 + 2 + (20 - 16) = 10; 30 / 20.
    assert policy.slowdowns(20.0) == {"t": 1.5}
    policy.on_program_end("pb", 20.0)
    policy.on_program_end("pb", 20.0)  # idempotent
    assert policy.tenant_load("t").programs == 1


def two_tenant_queue():
    policy = make_queue_policy("fair_share")
    run_call(policy, call("a0", "A", "pa", 0.0, 0.0), 0.0, 0.0, 4.0)  # never waited
    run_call(policy, call("b0", "B", "pb", 0.0, 0.0), 3.0, 3.0, 6.0)  # waited 3 s
    queue = policy.new_queue()
    for request in [call("a1", "A", "pa", 0.0, 4.0), call("b1", "B", "pb", 0.0, 6.0)]:
        policy.on_submit(request, request.arrival)
        queue.push(request, request.arrival)
    return policy, queue


def test_the_tenant_most_above_the_mean_slowdown_goes_first():
    # At 8: A waited 0 + 4 of 8 s (slowdown 2); B waited 3 + 2 (8 / 3): B is above the
    # mean, so its call goes first although program FCFS would send a1 first.
    policy, queue = two_tenant_queue()
    assert policy.slowdowns(8.0) == pytest.approx({"A": 2.0, "B": 8 / 3})
    assert policy.deviation("B", 8.0) == pytest.approx(1 / 3)
    first = queue.pop(now=8.0)
    assert first.request_id == "b1"
    assert first.priority == pytest.approx((-8 / 3, 0.0, 6.0))
    assert drain(queue, now=8.0) == ["a1"]


def test_program_fcfs_would_order_the_same_calls_the_other_way():
    queue = make_queue("program_fcfs")
    for request in [call("a1", "A", "pa", 0.0, 4.0), call("b1", "B", "pb", 0.0, 6.0)]:
        queue.push(request)
    assert drain(queue) == ["a1", "b1"]


def test_the_scheduler_keeps_the_sums_through_dispatch_and_completion():
    s = make_scheduler(workers=("w0",), queue="fair_share", router="least_loaded",
                       dispatch_window=1)
    a, b = call("a", "A", "pa", 0.0, 0.0), call("b", "B", "pb", 0.0, 0.0)
    s.submit(a, 0.0)
    s.submit(b, 0.0)
    assert ids(s.take("w0", 0.0)) == ["a"]  # equal slowdowns: the earlier head
    s.on_event(make_done(a, "w0", started=0.0, at=2.0), 2.0)
    # A: 2 s, no wait (1.0); B: 2 s, all waiting (floored: 100).
    assert s.policy.slowdowns(2.0) == pytest.approx({"A": 1.0, "B": 100.0})
    s.submit(call("a2", "A", "pa", 0.0, 2.0), 2.0)
    assert ids(s.take("w0", 2.0)) == ["b"]
    s.program_finished("pb", 2.0)
    assert s.policy.slowdowns(3.0) == pytest.approx({"A": 3 / 2})


def test_a_tenant_far_above_the_mean_recalls_a_call_of_one_below_it():
    s = make_scheduler(workers=("w0",), queue="fair_share", router="least_loaded",
                       dispatch_window=1, queue_options={"delta": 0.5})
    s.submit(call("a0", "A", "pa", 0.0, 0.0), 0.0)
    s.take("w0", 0.0)
    s.submit(call("b0", "B", "pb", 0.0, 0.0), 0.0)
    # At 10: A never waited (1.0), B only waited (100); the mean is 50.5.
    assert s.preempt("w0", 10.0) == [("w0", "a0", "fair_share")]
    assert ids(s.take("w0", 10.0)) == ["b0"]
    assert s.counters.preempted == 1 and s.num_queued == 1


def test_no_preemption_within_delta_of_the_mean():
    s = make_scheduler(workers=("w0",), queue="fair_share", router="least_loaded",
                       dispatch_window=1, queue_options={"delta": 200.0})
    s.submit(call("a0", "A", "pa", 0.0, 0.0), 0.0)
    s.take("w0", 0.0)
    s.submit(call("b0", "B", "pb", 0.0, 0.0), 0.0)
    assert s.preempt("w0", 10.0) == []


def test_bad_options_name_the_problem():
    with pytest.raises(ValueError, match="delta"):
        make_queue_policy("fair_share", delta=-1.0)
    with pytest.raises(TypeError):
        make_queue_policy("program_fcfs", delta=1.0)
