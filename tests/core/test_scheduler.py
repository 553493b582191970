import pytest

from agentrt.runtime.core.scheduler import Scheduler
from tests.core.builders import make_done, make_request, make_stats


def make_scheduler(workers=("w0", "w1"), **kwargs) -> Scheduler:
    scheduler = Scheduler(**kwargs)
    for worker_id in workers:
        scheduler.add_worker(worker_id)
    return scheduler


def test_new_sessions_go_to_the_least_loaded_worker():
    s = make_scheduler()
    placed = [s.submit(make_request(f"r{i}", program=f"p{i}"), now=0.0) for i in range(4)]
    assert placed == ["w0", "w1", "w0", "w1"]


def test_a_session_sticks_to_the_worker_that_holds_its_cache():
    s = make_scheduler()
    first = make_request("p0#1", program="p0")
    assert s.submit(first, 0.0) == "w0"
    s.submit(make_request("p1#1", program="p1"), 0.0)  # w1
    s.submit(make_request("p2#1", program="p2"), 0.0)  # w0 again: w0 now busier
    [sent] = s.take("w0", 0.0)[:1]
    s.on_event(make_done(sent, "w0"), 1.0)
    assert s.submit(make_request("p0#2", program="p0"), 1.0) == "w0"


def test_round_robin_ignores_affinity():
    s = make_scheduler(router="round_robin")
    places = [s.submit(make_request(f"p0#{i}", program="p0"), float(i)) for i in range(3)]
    assert places == ["w0", "w1", "w0"]


def test_take_sends_in_program_order_within_the_dispatch_window():
    s = make_scheduler(workers=("w0",), dispatch_window=2)
    for request_id, program_arrival in [("late", 9.0), ("early", 1.0), ("mid", 5.0)]:
        s.submit(make_request(request_id, program=request_id,
                              program_arrival=program_arrival), now=10.0)
    assert [r.request_id for r in s.take("w0", 10.0)] == ["early", "mid"]
    assert s.take("w0", 10.0) == []  # window full: two sent, none running yet
    s.on_stats("w0", make_stats("w0", running=2))
    assert [r.request_id for r in s.take("w0", 10.1)] == ["late"]


def test_completion_frees_the_window():
    s = make_scheduler(workers=("w0",), dispatch_window=1)
    a, b = make_request("a"), make_request("b", program="p1")
    s.submit(a, 0.0)
    s.submit(b, 0.0)
    assert s.take("w0", 0.0) == [a]
    s.on_event(make_done(a, "w0"), 1.0)
    assert s.take("w0", 1.0) == [b]
    assert s.counters.completed == 1 and s.num_inflight == 1


def test_abort_of_queued_and_inflight_calls():
    s = make_scheduler(workers=("w0",), dispatch_window=1)
    a, b = make_request("a"), make_request("b", program="p1")
    s.submit(a, 0.0)
    s.submit(b, 0.0)
    s.take("w0", 0.0)
    assert s.abort("b") is None  # only queued: nothing to tell the worker
    assert s.abort("a") == "w0"  # in flight: the driver aborts it on w0
    assert s.num_queued == 0 and s.num_inflight == 0


def test_removing_a_worker_reroutes_its_calls_and_forgets_homes():
    s = make_scheduler()
    a = make_request("a", program="p0")
    b = make_request("b", program="p1")
    s.submit(a, 0.0)
    s.submit(b, 0.0)
    s.take("w1", 0.0)
    moved = s.remove_worker("w1", 1.0)
    assert [r.request_id for r in moved] == ["b"]
    assert s.home_of("p1/s") == "w0"
    assert [r.request_id for r in s.take("w0", 1.0)] == ["a", "b"]


def test_bad_arguments_name_the_problem():
    with pytest.raises(ValueError, match="dispatch_window"):
        Scheduler(dispatch_window=0)
    with pytest.raises(ValueError, match="unknown router"):
        Scheduler(router="random")
    s = make_scheduler()
    s.submit(make_request("a"), 0.0)
    with pytest.raises(ValueError, match="already submitted"):
        s.submit(make_request("a"), 0.0)


def test_recording_logs_every_dispatch_in_order():
    s = make_scheduler(record=True)
    for i in range(3):
        s.submit(make_request(f"p{i}#0", program=f"p{i}"), now=0.0)
    s.take("w1", 0.0)
    s.take("w0", 0.0)
    assert s.dispatch_log == [("w1", "p1#0"), ("w0", "p0#0"), ("w0", "p2#0")]
    assert s.dispatch_log[0].worker_id == "w1"


def test_the_dispatch_log_stays_empty_unless_recording():
    s = make_scheduler()
    s.submit(make_request("p0#0"), now=0.0)
    s.take("w0", 0.0)
    assert s.dispatch_log == []
