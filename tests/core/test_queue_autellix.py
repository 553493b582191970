"""PLAS and ATLAS: least attained service by levels, promotion, demotion."""
import pytest

from agentrt.runtime.core.queueing.registry import LevelBins, make_queue_policy
from tests.core.builders import drain, ids, make_done, make_request, make_scheduler

BINS = {"first_s": 1.0, "ratio": 2.0, "levels": 4}  # levels: [0,1) [1,2) [2,4) [4,inf)


def attain(policy, program: str, seconds: float) -> None:
    """Give `program` a finished call that ran `seconds`, through the hooks."""
    call = make_request(f"{program}/history", program=program)
    policy.on_submit(call, 0.0)
    policy.on_dispatch(call, 0.0)
    policy.on_done(make_done(call, "w0", started=0.0, at=seconds), seconds, 0.0)


def test_level_bins_are_half_open_and_geometric():
    bins = LevelBins(**{"first": 1.0, "ratio": 2.0, "levels": 4})
    levels = [bins.level(s) for s in [0.0, 0.99, 1.0, 1.99, 2.0, 3.99, 4.0, 1e9]]
    assert levels == [0, 0, 1, 1, 2, 2, 3, 3]
    with pytest.raises(ValueError, match="ratio > 1"):
        LevelBins(1.0, 1.0, 4)


def make_plas_queue():
    policy = make_queue_policy("plas", **BINS)
    attain(policy, "a", 5.0)  # level 3
    attain(policy, "b", 1.5)  # level 1
    queue = policy.new_queue()  # c: no service, level 0
    for rid, arrival in [("a1", 10.0), ("b1", 11.0), ("c1", 12.0), ("a2", 9.0)]:
        request = make_request(rid, program=rid[0], arrival=arrival)
        policy.on_submit(request, arrival)
        queue.push(request, now=arrival)
    return policy, queue


def test_plas_serves_least_attained_service_first_fifo_within_a_level():
    _, queue = make_plas_queue()
    assert [r.priority for r in queue] == [(0, 12.0), (1, 11.0), (3, 9.0), (3, 10.0)]
    assert drain(queue, now=12.0) == ["c1", "b1", "a2", "a1"]


def test_plas_promotes_a_call_that_waited_beta_times_its_service():
    # beta = 8: b1 (service 1.5) is promoted at 11 + 12 = 23, a2 (5 s) at 9 + 40 = 49,
    # a1 at 50.
    _, queue = make_plas_queue()
    assert drain(queue, now=49.5) == ["a2", "b1", "c1", "a1"]


def test_plas_rekeys_queued_calls_when_their_program_gains_service():
    s = make_scheduler(workers=("w0",), queue="plas", router="least_loaded",
                       dispatch_window=1, queue_options=BINS)
    first = make_request("p#0", program="p")
    s.submit(first, 0.0)
    assert ids(s.take("w0", 0.0)) == ["p#0"]
    s.submit(make_request("p/b#0", program="p", session="p/b"), 0.0)
    s.submit(make_request("q#0", program="q"), 0.0)
    s.on_event(make_done(first, "w0", started=0.0, at=3.0), 3.0)  # p: 3 s, level 2
    [sent] = s.take("w0", 3.0)
    assert sent.request_id == "q#0"
    s.on_event(make_done(sent, "w0", started=3.0, at=3.5), 3.5)
    [sent] = s.take("w0", 3.5)
    assert (sent.request_id, sent.priority) == ("p/b#0", (2, 0.0))


@pytest.mark.parametrize("name, attained", [("atlas", 5.0), ("plas", 6.0)])
def test_atlas_counts_the_critical_path_and_plas_the_sum(name, attained):
    # History 2 s, then two parallel calls of 3 s and 1 s: ATLAS 5, PLAS 6.
    s = make_scheduler(workers=("w0",), queue=name, router="least_loaded")
    history = make_request("p#0", program="p")
    s.submit(history, 0.0)
    s.take("w0", 0.0)
    s.on_event(make_done(history, "w0", started=0.0, at=2.0), 2.0)
    long = make_request("p/long#0", program="p", session="p/long")
    short = make_request("p/short#0", program="p", session="p/short")
    s.submit(long, 2.0)
    s.submit(short, 2.0)
    assert ids(s.take("w0", 2.0)) == ["p/long#0", "p/short#0"]
    assert long.priority == short.priority == (2, 2.0)  # 2 s attained: level 2
    s.on_event(make_done(short, "w0", started=2.0, at=3.0), 3.0)
    s.on_event(make_done(long, "w0", started=2.0, at=5.0), 5.0)
    assert s.policy.attained_service("p") == attained


def test_atlas_queued_calls_keep_the_snapshot_they_arrived_with():
    s = make_scheduler(workers=("w0",), queue="atlas", router="least_loaded",
                       dispatch_window=1, queue_options=BINS)
    a = make_request("p/a#0", program="p", session="p/a")
    s.submit(a, 0.0)
    s.take("w0", 0.0)
    s.submit(make_request("p/b#0", program="p", session="p/b"), 0.5)  # h = 0
    s.on_event(make_done(a, "w0", started=0.0, at=6.0), 6.0)  # max path 6
    [b] = s.take("w0", 6.0)
    assert b.priority == (0, 0.5)
    assert s.policy.attained_service("p") == 6.0


@pytest.mark.parametrize("name", ["plas", "atlas"])
def test_a_call_past_its_quantum_is_recalled_for_a_higher_level_call(name):
    s = make_scheduler(workers=("w0",), queue=name, router="least_loaded",
                       dispatch_window=1, queue_options=BINS)
    long = make_request("long#0", program="long")
    s.submit(long, 0.0)
    s.take("w0", 0.0)
    s.submit(make_request("short#0", program="short"), 0.5)
    assert s.preempt("w0", 0.5) == []  # 0.5 s run: still within level 0's quantum
    assert s.preempt("w0", 1.5) == [("w0", "long#0", "quantum_exhausted")]
    [short] = s.take("w0", 1.5)
    assert short.request_id == "short#0"
    s.on_event(make_done(short, "w0", started=1.5, at=1.7), 1.7)
    [again] = s.take("w0", 1.7)
    assert (again.request_id, again.priority) == ("long#0", (1, 0.0))  # demoted
    assert s.counters.preempted == 1 and s.num_inflight == 1


def test_fcfs_policies_never_preempt():
    s = make_scheduler(workers=("w0",), queue="program_fcfs", dispatch_window=1)
    s.submit(make_request("a", program="a"), 0.0)
    s.take("w0", 0.0)
    s.submit(make_request("b", program="b"), 0.0)
    assert s.preempt("w0", 100.0) == []


def test_a_recalled_call_waits_beta_times_its_service_again_before_promotion():
    s = make_scheduler(workers=("w0",), queue="plas", router="least_loaded",
                       dispatch_window=1, queue_options=BINS)
    s.submit(make_request("long#0", program="long"), 0.0)
    s.take("w0", 0.0)
    s.submit(make_request("short#0", program="short"), 0.5)
    s.preempt("w0", 1.5)  # recalled at 1.5 having run 1.5 s: promoted at 1.5 + 8 x 1.5
    s.take("w0", 1.5)
    queue = s.placements.queues["w0"]
    assert queue.peek(now=13.0).priority == (1, 0.0)
    assert queue.peek(now=13.5).priority == (0, 0.0)
