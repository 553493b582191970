"""The size history (finished programs kept in a file) and the Gittins queue's warm start
from it: what a restarted scheduler learns, what a crash can cost, and the errors a bad
file gives."""
import json
import logging

import pytest

from agentrt.runtime.core.prediction.history import Finished, SizeHistory, SizeHistoryError
from agentrt.runtime.core.queueing.registry import make_queue_policy
from tests.core.builders import drain
from tests.core.test_queue_gittins import call, finish, queue_of

BUCKETS = dict(predictor="buckets", min_samples=4, min_tail=1)


def learn_kinds(policy) -> None:
    """Four short questions and four long refactors, finished."""
    for i in range(4):
        finish(policy, f"q{i}", 2, {"task_kind": "question"})
        finish(policy, f"r{i}", 30, {"task_kind": "refactor"})


def order_of_big_and_small(policy) -> list[str]:
    """The refactor arrived first: only what the policy knows puts the question ahead."""
    queue = queue_of(policy, call("big#0", "big", 1.0, features={"task_kind": "refactor"}),
                     call("small#0", "small", 2.0, features={"task_kind": "question"}))
    return drain(queue, now=2.0)


def test_a_restarted_queue_orders_as_the_one_that_learned(tmp_path):
    path = tmp_path / "sizes.jsonl"
    first = make_queue_policy("gittins", history=str(path), **BUCKETS)
    learn_kinds(first)
    first.history.close()
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(lines) == 8
    assert lines[0] == {"v": 1, "agent": "coder", "features": {"task_kind": "question"},
                        "calls": 2}
    assert [r["calls"] for r in lines] == [2, 30] * 4

    cold = make_queue_policy("gittins", **BUCKETS)
    assert order_of_big_and_small(cold) == ["big#0", "small#0"]  # cold: arrival order
    warm = make_queue_policy("gittins", history=str(path), **BUCKETS)
    assert warm.predictor.observed == 8
    assert order_of_big_and_small(warm) == ["small#0", "big#0"]
    # The same predictions as the queue that learned them, program by program.
    for features in ({"task_kind": "question"}, {"task_kind": "refactor"}, None):
        for attained in (0, 1, 5):
            keys_a = first.predictor.keys("coder", features)
            keys_b = warm.predictor.keys("coder", features)
            assert warm.predictor.predict(keys_b, attained) == \
                first.predictor.predict(keys_a, attained)


def test_the_warm_start_feeds_the_default_predictor_too(tmp_path):
    path = tmp_path / "sizes.jsonl"
    history = SizeHistory(path)
    for i in range(40):  # above loglinear's 30-program cold start
        history.append(Finished("coder", {"task_kind": "question"}, 2))
        history.append(Finished("coder", {"task_kind": "refactor"}, 40))
    history.close()
    warm = make_queue_policy("gittins", history=str(path))
    assert warm.predictor.observed == 80
    assert order_of_big_and_small(warm) == ["small#0", "big#0"]
    cold = make_queue_policy("gittins")
    assert order_of_big_and_small(cold) == ["big#0", "small#0"]


def test_it_learns_from_the_last_keep_programs(tmp_path):
    path = tmp_path / "sizes.jsonl"
    history = SizeHistory(path, keep=3)
    for calls in (7, 8, 9, 10, 11):
        history.append(Finished("a", None, calls))
    assert [r.calls for r in history.records] == [9, 10, 11]
    history.close()
    # 5 lines < 2 * keep: not compacted yet; a reader still takes the last 3.
    assert len(path.read_text().splitlines()) == 5
    assert [r.calls for r in SizeHistory(path, keep=3).records] == [9, 10, 11]
    policy = make_queue_policy("gittins", history=str(path), history_keep=3, **BUCKETS)
    assert policy.predictor.observed == 3


def test_the_file_is_compacted_at_twice_keep_and_appends_go_on(tmp_path):
    path = tmp_path / "sizes.jsonl"
    history = SizeHistory(path, keep=3)
    for calls in range(1, 7):  # the 6th record reaches 2 * keep: rewritten to 3
        history.append(Finished("a", None, calls))
    assert [json.loads(x)["calls"] for x in path.read_text().splitlines()] == [4, 5, 6]
    assert not path.with_name(path.name + ".tmp").exists()
    history.append(Finished("a", None, 7))  # into the new file, not the replaced one
    history.close()
    assert [json.loads(x)["calls"] for x in path.read_text().splitlines()] == [4, 5, 6, 7]


def test_two_writers_lose_nothing_to_each_others_compaction(tmp_path):
    path = tmp_path / "sizes.jsonl"
    a, b = SizeHistory(path, keep=3), SizeHistory(path, keep=3)
    b.append(Finished("b", None, 1))  # b holds the file open
    for calls in (2, 3, 4, 5):
        a.append(Finished("a", None, calls))
    b.append(Finished("b", None, 6))
    # Neither has counted 2 * keep lines of its own yet: all 6 are there.
    assert [json.loads(x)["calls"] for x in path.read_text().splitlines()] == [1, 2, 3, 4,
                                                                               5, 6]
    a.append(Finished("a", None, 7))
    a.append(Finished("a", None, 8))  # a's 6th: compacts what is on disk, b's lines too
    assert [json.loads(x)["calls"] for x in path.read_text().splitlines()] == [6, 7, 8]
    b.append(Finished("b", None, 9))  # b reopens the new file
    a.close(), b.close()
    assert [json.loads(x)["calls"] for x in path.read_text().splitlines()] == [6, 7, 8, 9]


def test_a_line_cut_off_by_a_crash_is_the_only_loss(tmp_path, caplog):
    path = tmp_path / "sizes.jsonl"
    good = '{"v":1,"agent":"a","features":null,"calls":3}\n'
    path.write_text(good * 2 + '{"v":1,"agent":"a","feat')
    with caplog.at_level(logging.WARNING):
        history = SizeHistory(path)
    assert [r.calls for r in history.records] == [3, 3]
    assert "interrupted write" in caplog.text
    assert path.read_text() == good * 2  # the torn tail is gone, so appends start clean
    history.append(Finished("a", None, 4))
    history.close()
    assert [json.loads(x)["calls"] for x in path.read_text().splitlines()] == [3, 3, 4]


def test_a_whole_last_record_without_its_newline_is_kept(tmp_path):
    path = tmp_path / "sizes.jsonl"
    path.write_text('{"v":1,"agent":"a","features":null,"calls":3}')
    history = SizeHistory(path)
    history.append(Finished("a", None, 5))
    history.close()
    assert [json.loads(x)["calls"] for x in path.read_text().splitlines()] == [3, 5]


@pytest.mark.parametrize("line, problem", [
    ("not json", "line 2: not JSON"),
    ("[1, 2]", "line 2: expected an object, got list"),
    ('{"v":2,"agent":"a","features":null,"calls":3}', "line 2: field 'v' is 2"),
    ('{"v":1,"agent":"","features":null,"calls":3}', "line 2: field 'agent'"),
    ('{"v":1,"agent":"a","features":null,"calls":0}', "line 2: field 'calls' must be"),
    ('{"v":1,"agent":"a","features":null,"calls":2.5}', "line 2: field 'calls' must be"),
    ('{"v":1,"agent":"a","features":[1],"calls":3}', "line 2: field 'features' must be"),
    ('{"v":1,"agent":"a","features":{"k":true},"calls":3}', "field 'features.k' must be"),
    ('{"v":1,"agent":"a","features":{"k":[1]},"calls":3}', "field 'features.k' must be"),
    ('{"v":1,"agent":"a","features":null,"calls":3,"x":1}', "unknown field(s) ['x']"),
])
def test_a_bad_line_names_the_file_the_line_and_the_fix(tmp_path, line, problem):
    path = tmp_path / "sizes.jsonl"
    path.write_text('{"v":1,"agent":"a","features":null,"calls":3}\n' + line + "\n"
                    '{"v":1,"agent":"a","features":null,"calls":3}\n')
    with pytest.raises(SizeHistoryError) as e:
        SizeHistory(path)
    assert str(path) in str(e.value) and problem in str(e.value)
    assert "fix or delete that line" in str(e.value)
    with pytest.raises(ValueError, match="line 2"):  # the queue refuses it the same way
        make_queue_policy("gittins", history=str(path))


def test_a_missing_file_starts_cold_and_is_created_with_its_folder(tmp_path):
    path = tmp_path / "deep" / "er" / "sizes.jsonl"
    policy = make_queue_policy("gittins", history=str(path), **BUCKETS)
    assert policy.predictor.observed == 0 and not path.exists()
    finish(policy, "p", 3)
    policy.history.close()
    assert json.loads(path.read_text())["calls"] == 3


def test_an_unreadable_or_unwritable_history_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")  # a file where the history's folder should be
    with pytest.raises(SizeHistoryError, match="cannot read.*point the queue's `history`"):
        SizeHistory(blocker / "sizes.jsonl")
    history = SizeHistory(tmp_path / "later" / "sizes.jsonl")
    (tmp_path / "later").write_text("")  # the folder became a file after the start
    with pytest.raises(SizeHistoryError, match="cannot write.*point the queue's `history`"):
        history.append(Finished("a", None, 1))
    assert history.records == []  # a record not written is not counted as learned


def test_keep_must_be_positive(tmp_path):
    with pytest.raises(ValueError, match="keep must be >= 1"):
        SizeHistory(tmp_path / "x.jsonl", keep=0)


def test_a_history_that_stops_being_writable_costs_the_warm_start_not_the_run(
        tmp_path, caplog):
    folder = tmp_path / "later"
    policy = make_queue_policy("gittins", history=str(folder / "sizes.jsonl"), **BUCKETS)
    folder.write_text("")  # the folder became a file after the start: no write works
    with caplog.at_level(logging.ERROR):
        learn_kinds(policy)  # 8 programs end: each append fails
    assert policy.predictor.observed == 8  # still learned here
    assert order_of_big_and_small(policy) == ["small#0", "big#0"]
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "cannot write" in errors[0].getMessage()
    assert "not kept for the next scheduler" in errors[0].getMessage()
