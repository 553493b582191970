"""The gittins queue (learned remaining size, aging bound) and the oracle_srpt
reference: exact orders on small scenarios, each decided by the rule under test."""
import pytest

from agentrt.runtime.core.queueing.registry import make_queue_policy
from tests.core.builders import drain, make_done, make_request


def call(rid: str, program: str, arrival: float, *, agent: str = "coder",
         features: dict | None = None, calls: int | None = None):
    request = make_request(rid, program=program, arrival=arrival)
    request.agent, request.features, request.program_calls_hint = agent, features, calls
    return request


def finish(policy, program: str, calls: int, features: dict | None = None,
           agent: str = "coder") -> None:
    """A whole program of `calls` calls through the hooks, then its end."""
    for k in range(calls):
        request = call(f"{program}#{k}", program, 0.0, agent=agent, features=features)
        policy.on_submit(request, 0.0)
        policy.on_dispatch(request, 0.0)
        policy.on_done(make_done(request, "w0"), 0.0, 0.0)
    policy.on_program_end(program, 0.0)
    policy.on_program_end(program, 0.0)  # idempotent: learned once


def queue_of(policy, *calls, now: float = 0.0):
    queue = policy.new_queue()
    for request in calls:
        policy.on_submit(request, request.arrival)
        queue.push(request, now=request.arrival)
    return queue


def test_cold_start_serves_least_attained_calls_first():
    policy = make_queue_policy("gittins")
    old = call("old#0", "old", 0.0)
    policy.on_submit(old, 0.0)
    for _ in range(3):  # `old` has finished calls, `new` none
        policy.on_done(make_done(old, "w0"), 0.0, 0.0)
    queue = queue_of(policy, call("old#3", "old", 1.0), call("new#0", "new", 2.0))
    assert drain(queue, now=2.0) == ["new#0", "old#3"]


def test_a_program_whose_features_say_short_goes_first():
    policy = make_queue_policy("gittins", predictor="buckets", min_samples=4, min_tail=1)
    for i in range(4):
        finish(policy, f"q{i}", 2, {"task_kind": "question"})
        finish(policy, f"r{i}", 30, {"task_kind": "refactor"})
    queue = queue_of(policy, call("big#0", "big", 1.0, features={"task_kind": "refactor"}),
                     call("small#0", "small", 2.0, features={"task_kind": "question"}))
    assert drain(queue, now=2.0) == ["small#0", "big#0"]
    assert policy.predictor.observed == 8


def test_a_program_that_outran_the_short_ones_drops_behind_a_fresh_one():
    # Half the programs take 2 calls, half 20: a fresh one may be short (index 1/2);
    # one with 2 calls finished is a long one (18 more: index 1/18).
    policy = make_queue_policy("gittins", predictor="buckets", min_samples=4, min_tail=1)
    for i in range(4):
        finish(policy, f"s{i}", 2)
        finish(policy, f"l{i}", 20)
    running = call("run#0", "run", 0.0)
    policy.on_submit(running, 0.0)
    for _ in range(2):
        policy.on_done(make_done(running, "w0"), 0.0, 0.0)
    assert policy.index_of("run") == pytest.approx(1 / 18)
    queue = queue_of(policy, call("run#2", "run", 1.0), call("fresh#0", "fresh", 2.0))
    assert drain(queue, now=2.0) == ["fresh#0", "run#2"]


def test_a_call_that_waited_max_wait_goes_ahead_in_arrival_order():
    policy = make_queue_policy("gittins", max_wait_s=10.0, predictor="buckets", min_samples=4,
                               min_tail=1)
    for i in range(4):
        finish(policy, f"q{i}", 2, {"task_kind": "question"})
        finish(policy, f"r{i}", 30, {"task_kind": "refactor"})
    big = call("big#0", "big", 0.0, features={"task_kind": "refactor"})
    small = [call(f"s{i}#0", f"s{i}", 5.0 + i, features={"task_kind": "question"})
             for i in range(2)]
    queue = queue_of(policy, big, *small)
    assert queue.peek(now=9.9).request_id == "s0#0"
    assert drain(queue, now=10.0) == ["big#0", "s0#0", "s1#0"]  # big starved at 10


def test_a_recalled_call_waits_max_wait_again_from_its_recall():
    policy = make_queue_policy("gittins", max_wait_s=10.0)
    early = call("a#0", "a", 0.0)
    policy.on_submit(early, 0.0)
    policy.on_requeue(early, 8.0, 2.0)
    assert policy.expires(early, 8.0) == 18.0
    assert policy.key(early, 12.0)[0] == 1 and policy.key(early, 18.0) == (0, 0.0, 0.0)


def test_the_oracle_serves_fewest_calls_left_first():
    policy = make_queue_policy("oracle_srpt")
    first = call("long#0", "long", 0.0, calls=10)
    policy.on_submit(first, 0.0)
    for _ in range(8):  # 2 left
        policy.on_done(make_done(first, "w0"), 0.0, 0.0)
    queue = queue_of(policy, call("long#8", "long", 3.0, calls=10),
                     call("mid#0", "mid", 1.0, calls=3), call("unknown#0", "u", 0.5),
                     call("tie#0", "tie", 2.0, calls=2))
    assert drain(queue, now=3.0) == ["tie#0", "long#8", "mid#0", "unknown#0"]
