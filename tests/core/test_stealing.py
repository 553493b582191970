"""Work stealing: a worker short of work takes queued calls from the busiest one."""
import pytest

from agentrt.runtime.core.stealing import SessionMove, StealConfig
from tests.core.builders import ids, make_done, make_request, make_scheduler, make_stats


def backlog(s, sessions, kv_tokens, call_s=10.0):
    """Queue one call per (session, kv) on w0, the only worker so far: sessions with
    kv > 0 first finish a call of that size there, taking `call_s` seconds."""
    for session, kv in zip(sessions, kv_tokens):
        if kv:
            first = make_request(f"{session}#0", program=session, session=session,
                                 tokens=kv - 4)
            s.submit(first, 0.0)
            s.take("w0", 0.0)
            s.on_event(make_done(first, "w0", started=0.0, at=call_s), call_s)
    for i, (session, kv) in enumerate(zip(sessions, kv_tokens)):
        s.submit(make_request(f"{session}#1", program=session, session=session,
                              program_arrival=float(i), tokens=kv + 64), call_s)


def make_stealer(**config):
    s = make_scheduler(workers=("w0",), stealing=StealConfig(**config))
    return s


def test_an_idle_worker_steals_new_sessions_first_from_the_back_of_the_queue():
    s = make_stealer(low_mark=1, high_mark=2)
    sessions = ["hot0", "hot1", "small", "new3", "new4", "new5"]
    backlog(s, sessions, [10_000, 10_000, 100, 0, 0, 0])
    s.add_worker("w1")
    assert s.thieves() == ["w1"]
    # 6 queued on w0, none on w1: take half the difference, new sessions first.
    assert ids(s.take("w1", 10.0)) == ["new3#1", "new4#1", "new5#1"]
    assert s.counters.stolen == 3 and s.take_moves() == []
    assert [s.home_of(x) for x in sessions] == ["w0"] * 3 + ["w1"] * 3


def test_small_sessions_move_before_hot_ones():
    s = make_stealer(low_mark=1, high_mark=2, max_steal=1)
    backlog(s, ["hot0", "hot1", "small", "hot3"], [10_000, 10_000, 100, 10_000])
    s.add_worker("w1")
    assert ids(s.take("w1", 10.0)) == ["small#1"]
    assert s.take_moves() == [SessionMove("small", "w0", "w1", 100)]


def test_a_hot_session_moves_only_when_its_kv_costs_less_than_the_wait_it_saves():
    # w0 runs one call at a time, 10 s each: position k in its queue waits 10k s.
    # Recomputing 10,000 tokens takes 0.25 s: every call but the head is worth moving.
    s = make_stealer(low_mark=1, high_mark=2)
    sessions = [f"hot{i}" for i in range(6)]
    backlog(s, sessions, [10_000] * 6)
    s.on_stats("w0", make_stats("w0", running=1))
    s.add_worker("w1")
    assert ids(s.take("w1", 10.0)) == ["hot3#1", "hot4#1", "hot5#1"]
    assert s.take_moves() == [SessionMove(f"hot{i}", "w0", "w1", 10_000)
                              for i in (5, 4, 3)]


def test_a_hot_session_stays_when_moving_it_costs_more():
    s = make_stealer(low_mark=1, high_mark=2)
    backlog(s, [f"hot{i}" for i in range(6)], [10_000] * 6, call_s=0.01)
    s.add_worker("w1")
    assert s.take("w1", 10.0) == [] and s.counters.stolen == 0


@pytest.mark.parametrize("kv_move, moved", [("recompute", 0), ("transfer", 10_000)])
def test_kv_moves_with_the_session_only_when_transferred(kv_move, moved):
    s = make_stealer(low_mark=1, high_mark=2, kv_move=kv_move, max_steal=1)
    backlog(s, [f"hot{i}" for i in range(6)], [10_000] * 6)
    s.add_worker("w1")
    s.take("w1", 10.0)
    assert s.view.session_tokens.get("hot5", 0) == moved


def test_no_stealing_below_the_high_mark_or_when_off():
    s = make_stealer(low_mark=1, high_mark=6)
    backlog(s, [f"new{i}" for i in range(6)], [0] * 6)
    s.add_worker("w1")
    assert s.thieves() == [] and s.take("w1", 10.0) == []
    off = make_scheduler(workers=("w0",))
    backlog(off, [f"new{i}" for i in range(6)], [0] * 6)
    off.add_worker("w1")
    assert off.thieves() == [] and off.take("w1", 10.0) == []


def test_fork_groups_are_not_split_by_stealing():
    s = make_stealer(low_mark=1, high_mark=1)
    s.submit_forks([make_request(f"f~{i}#0", session=f"f~{i}") for i in range(4)], 0.0)
    s.add_worker("w1")
    assert s.take("w1", 0.0) == []
    assert len(s.take("w0", 0.0)) == 4


def test_steal_config_is_validated_and_frozen():
    with pytest.raises(ValueError, match="low_mark"):
        StealConfig(low_mark=0)
    with pytest.raises(ValueError, match="extra"):
        StealConfig(lowmark=1)
