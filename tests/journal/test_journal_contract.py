"""The JournalStore contract, on SQLite and on PostgreSQL alike."""
from __future__ import annotations

import threading

import pytest

from agentrt.runtime.journal import (
    JournalConfigError, JournalUnavailableError, ToolKey, open_store, parse_journal_url,
)

KEY = ToolKey("prog-1", "solve", 2, "call_abc")


@pytest.fixture
def store(journal_url):
    s = open_store(journal_url)
    yield s
    s.close()


def test_a_run_keeps_the_meta_of_its_first_opening(store, run_id):
    assert store.run_meta(run_id) is None
    assert store.open_run(run_id, {"programs": 3}) == {"programs": 3}
    assert store.open_run(run_id, {"programs": 9}) == {"programs": 3}
    assert store.run_meta(run_id) == {"programs": 3}


def test_attempts_count_up_and_the_first_trace_stays(store, run_id):
    first = store.start_program(run_id, "p0", "agent", b"in", "t1", "s1")
    assert (first.attempts, first.first_trace_id, first.first_span_id) == (1, "t1", "s1")
    assert first.status is None and not first.final
    again = store.start_program(run_id, "p0", "agent", b"in", "t2", "s2")
    assert (again.attempts, again.first_trace_id, again.first_span_id) == (2, "t1", "s1")
    assert list(store.programs(run_id)) == ["p0"]


def test_the_last_outcome_stands_and_says_whether_it_is_final(store, run_id):
    store.start_program(run_id, "p0", "agent", b"in", "t", "s")
    store.finish_program(run_id, "p0", "failed", b"doubt", final=False)
    record = store.programs(run_id)["p0"]
    assert (record.status, record.final, record.outcome) == ("failed", False, b"doubt")
    store.finish_program(run_id, "p0", "succeeded", b"done", final=True)
    record = store.programs(run_id)["p0"]
    assert (record.status, record.final, record.outcome) == ("succeeded", True, b"done")


def test_a_step_result_is_written_once(store, run_id):
    store.record_step(run_id, "p0", "plan", b"first")
    store.record_step(run_id, "p0", "plan", b"second")
    store.record_step(run_id, "p0", "write", b"w")
    assert store.steps(run_id, "p0") == {"plan": b"first", "write": b"w"}
    assert store.steps(run_id, "other") == {}


def test_claiming_a_call_is_atomic_and_its_first_result_stays(store, run_id):
    assert store.claim_tool(run_id, KEY, "send_mail", "d1") is None
    marker = store.claim_tool(run_id, KEY, "send_mail", "d1")
    assert marker is not None and not marker.done and marker.tool == "send_mail"
    assert [r.key for r in store.in_doubt(run_id)] == [KEY]
    store.record_tool(run_id, KEY, "send_mail", "d1", b"sent")
    store.record_tool(run_id, KEY, "send_mail", "d1", b"sent again")
    done = store.claim_tool(run_id, KEY, "send_mail", "d1")
    assert done.done and done.result == b"sent" and done.digest == "d1"
    assert store.in_doubt(run_id) == []
    assert store.tool_calls(run_id, "prog-1") == {KEY: done}


def test_a_call_without_a_marker_is_journaled_done(store, run_id):
    store.record_tool(run_id, KEY, "search", "d", b"hits")
    [record] = store.tool_calls(run_id, "prog-1").values()
    assert record.done and record.result == b"hits"


def test_forget_removes_a_marker_never_a_result(store, run_id):
    other = ToolKey("prog-1", "solve", 3, "call_def")
    store.claim_tool(run_id, KEY, "send_mail", "d")
    store.record_tool(run_id, other, "send_mail", "d", b"sent")
    assert store.forget_tool(run_id, KEY) is True
    assert store.forget_tool(run_id, KEY) is False
    assert store.forget_tool(run_id, other) is False
    assert store.claim_tool(run_id, KEY, "send_mail", "d") is None  # may run again
    assert store.tool_calls(run_id, "prog-1")[other].done


def test_runs_do_not_see_each_other(store, run_id):
    store.record_step(run_id, "p0", "plan", b"a")
    store.record_step(run_id + "-other", "p0", "plan", b"b")
    assert store.steps(run_id, "p0") == {"plan": b"a"}


def test_concurrent_writers_claim_a_key_exactly_once(journal_url, run_id):
    """Eight connections race for one key (as runners of two attempts would): one wins,
    the others see its marker."""
    stores = [open_store(journal_url) for _ in range(8)]
    barrier, outcomes = threading.Barrier(len(stores)), []

    def claim(s):
        barrier.wait()
        outcomes.append(s.claim_tool(run_id, KEY, "charge_card", "d"))

    threads = [threading.Thread(target=claim, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    for s in stores:
        s.close()
    assert len(outcomes) == 8
    assert sum(o is None for o in outcomes) == 1
    assert all(not o.done for o in outcomes if o is not None)


def test_bad_urls_name_the_value_and_the_fix():
    with pytest.raises(JournalConfigError, match=r"journal_url='mysql://x/y'.*postgresql://"):
        parse_journal_url("mysql://x/y")
    with pytest.raises(JournalConfigError, match="not an absolute SQLite file path"):
        parse_journal_url("sqlite://relative/journal.sqlite")
    with pytest.raises(JournalConfigError, match="synchronous=full"):
        parse_journal_url("sqlite:///tmp/j.sqlite?synchronous=off")
    assert parse_journal_url("sqlite:///tmp/j.sqlite?synchronous=normal").synchronous == "normal"


def test_a_sqlite_journal_in_a_missing_folder_is_refused(tmp_path):
    with pytest.raises(JournalUnavailableError, match="does not exist on this machine.*PostgreSQL"):
        open_store(f"sqlite://{tmp_path}/nowhere/journal.sqlite")


def test_an_unreachable_postgres_server_is_a_clear_error():
    pytest.importorskip("psycopg")
    with pytest.raises(JournalUnavailableError, match=r"cannot open the journal at "
                                                      r"postgresql://agentrt:\*\*\*@127\.0\.0\.1:1/"):
        open_store("postgresql://agentrt:secret@127.0.0.1:1/journal")
