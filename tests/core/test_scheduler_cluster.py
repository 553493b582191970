"""The scheduler across workers: forks, workers joining and leaving, program ends."""
import pytest

from agentrt.runtime.core.messages import Evicted
from tests.core.builders import ids, make_done, make_request, make_scheduler


def forks(n, program="p0", step="solve"):
    return [make_request(f"{step}~{i}#0", program=program, session=f"{step}~{i}")
            for i in range(n)]


@pytest.mark.parametrize("router", ["round_robin", "sticky", "autellix", "dualmap"])
def test_forks_go_to_one_worker_and_are_sent_together(router):
    s = make_scheduler(workers=("w0", "w1", "w2"), router=router, dispatch_window=1)
    worker = s.submit_forks(forks(3), 0.0)
    assert {s.home_of(f"solve~{i}") for i in range(3)} == {worker}
    assert ids(s.take(worker, 0.0)) == ["solve~0#0", "solve~1#0", "solve~2#0"]


def test_forks_are_sent_past_the_dispatch_window_as_one_batch():
    s = make_scheduler(workers=("w0",), dispatch_window=1)
    s.submit_forks(forks(4), 0.0)
    assert ids(s.take("w0", 0.0)) == ["solve~0#0", "solve~1#0", "solve~2#0", "solve~3#0"]
    assert s.take("w0", 0.0) == []


def test_bad_fork_groups_name_the_problem():
    s = make_scheduler()
    with pytest.raises(ValueError, match="at least one"):
        s.submit_forks([], 0.0)
    with pytest.raises(ValueError, match="one program"):
        s.submit_forks([make_request("a", program="p0"), make_request("b", program="p1")],
                       0.0)
    with pytest.raises(ValueError, match="distinct"):
        s.submit_forks([make_request("a"), make_request("a")], 0.0)


def fill(s, n, now=0.0):
    requests = [make_request(f"p{i}#0", program=f"p{i}") for i in range(n)]
    for request in requests:
        s.submit(request, now)
    return requests


def test_removing_a_worker_moves_only_its_sessions_and_loses_no_call():
    s = make_scheduler(workers=("w0", "w1", "w2", "w3"), dispatch_window=2)
    fill(s, 40)
    for worker_id in s.worker_ids:
        s.take(worker_id, 0.0)  # two in flight on each worker, eight queued
    homes = dict(s.view.session_home)
    moved = s.remove_worker("w1", 1.0)
    assert len(moved) == 10 and s.counters.rerouted == 10
    assert {r.session_id for r in moved} == {x for x, w in homes.items() if w == "w1"}
    assert all(s.home_of(x) == w for x, w in homes.items() if w != "w1")
    assert s.num_queued + s.num_inflight == 40
    assert sorted(s.home_of(r.session_id) for r in moved) == ["w0"] * 4 + ["w2"] * 3 + [
        "w3"] * 3
    s.add_worker("w4")
    assert all(s.home_of(x) == w for x, w in homes.items() if w != "w1")
    assert s.submit(make_request("new#0", program="new"), 1.0) == "w4"


def test_a_fork_group_stays_together_when_its_worker_leaves():
    s = make_scheduler(workers=("w0", "w1"), router="round_robin")
    worker = s.submit_forks(forks(3), 0.0)
    s.remove_worker(worker, 1.0)
    [other] = s.worker_ids
    assert ids(s.take(other, 1.0)) == ["solve~0#0", "solve~1#0", "solve~2#0"]


def serve_all(s, now):
    while any(s.has_queued(w) for w in s.worker_ids):
        for worker_id in s.worker_ids:
            for request in s.take(worker_id, now):
                s.on_event(make_done(request, worker_id, at=now), now)


def test_dualmap_moves_only_sessions_whose_holder_left_their_pair():
    s = make_scheduler(workers=[f"w{i}" for i in range(8)], router="dualmap")
    fill(s, 300)
    serve_all(s, 1.0)
    homes = dict(s.view.session_home)
    s.add_worker("w8")
    turns = [make_request(f"p{i}#1", program=f"p{i}") for i in range(300)]
    placed = {r.session_id: s.submit(r, 2.0) for r in turns}
    moved = {x for x in homes if placed[x] != homes[x]}
    assert moved == {r.session_id for r in turns
                     if homes[r.session_id] not in s.router.candidates(r)}
    assert all("w8" in s.router.candidates(r) for r in turns if r.session_id in moved)
    assert len(moved) == 31


def test_a_last_call_ends_its_program_in_the_policy():
    s = make_scheduler(workers=("w0",), queue="plas", router="autellix")
    last = make_request("p#3", program="p")
    last.last_call = True
    s.submit(last, 0.0)
    s.take("w0", 0.0)
    s.on_event(make_done(last, "w0", started=0.0, at=4.0), 4.0)
    assert s.policy.attained_service("p") == 0.0  # forgotten
    assert "p" not in s.view.program_home


def test_evicted_blocks_shrink_what_a_session_holds():
    s = make_scheduler(workers=("w0",))
    call = make_request("p0#0", tokens=1000)
    s.submit(call, 0.0)
    s.take("w0", 0.0)
    s.on_event(make_done(call, "w0", output_tokens=24), 1.0)
    assert s.view.session_tokens["p0/s"] == 1024
    s.on_event(Evicted("p0/s", "w0", 2.0, blocks=10), 2.0)
    assert s.view.session_tokens["p0/s"] == 1024 - 160
