"""The cluster control's glue, rule by rule, on real simulated engines: what it decides
when a reply calls a tool, what it learns from tools and programs, when it prefetches,
releases, aborts, balances and admits."""
from __future__ import annotations

import math

import pytest

from agentrt.runtime.core import decisions as log
from agentrt.runtime.core.session_chain import reply_chain
from tests.core.control_builders import make_call, make_control, run_until_done


class Recording:
    """Wraps a TTL policy and records its feedback calls."""

    def __init__(self, policy) -> None:
        self.policy, self.delays, self.programs = policy, [], []

    def decide(self, request, durations):
        return self.policy.decide(request, durations)

    def on_queue_delay(self, delay, lost):
        self.delays.append((delay, lost))

    def on_program_finished(self, program_id, turns):
        self.programs.append((program_id, turns))


def test_a_reply_that_calls_a_tool_is_decided_once_on_the_worker_that_ran_it():
    control, transport = make_control(workers=2, duration_min_samples=3)
    for seconds in (1.0, 2.0, 3.0):
        control.tool_finished("p/other", "pytest", seconds, 0.0)
    request = make_call()
    control.submit(request, 0.0)
    [done], now = run_until_done(control, transport, 0.0)
    [(_, worker, session, decision)] = transport.named("retain")
    assert (worker, session, decision.action) == (done.worker_id, "p/s", "soft")
    note = done.kv_pin
    assert (note.action, note.tool, note.worker_id, note.decided_at) == (
        "soft", "pytest", done.worker_id, now)
    assert (note.duration_source, note.duration_samples, note.predicted_s) == (
        "observed", 3, 2.0)
    assert note.blocks == reply_chain(request.prefix, done).num_tokens // 16
    assert note.ttl_s == pytest.approx(decision.until - now)
    assert log.Retained(worker, "p/s", "pytest", "soft", decision.reason) in \
        control.scheduler.decisions
    assert transport.engines[worker].pins.get("p/s").blocks == note.blocks
    assert control.retention.decided == {"soft": 1}


def test_a_tools_declared_prior_predicts_it_until_it_has_observations():
    control, transport = make_control(duration_min_samples=4)
    control.tool_finished("p/x", "pytest", 4.0, 0.0, prior_s=10.0)
    control.tool_finished("p/x", "pytest", 2.0, 0.0, prior_s=99.0)  # the first prior holds
    durations = control.retention.durations
    assert durations.source("pytest") == "blended" and durations.count("pytest") == 2
    assert durations.mean("pytest") == pytest.approx(0.5 * 3.0 + 0.5 * 10.0)


def test_the_last_turn_of_a_session_keeps_nothing():
    control, transport = make_control()
    control.submit(make_call(last_turn=False, tool_hint=None), 0.0)
    [done], _ = run_until_done(control, transport, 0.0)
    assert done.kv_pin.action == "soft"
    control.submit(make_call("q/s", last_call=True), 0.0)
    [done], _ = run_until_done(control, transport, 0.0)
    assert (done.kv_pin.action, done.kv_pin.blocks) == ("drop", 0)
    assert done.kv_pin.reason == "last step: nobody comes back"


def test_without_a_ttl_policy_nothing_is_decided_but_eviction_still_hears_of_pauses():
    control, transport = make_control(ttl=None, eviction="workflow_aware")
    control.submit(make_call(), 0.0)
    [done], _ = run_until_done(control, transport, 0.0)
    assert done.kv_pin is None and transport.named("retain") == []
    [(_, worker, session, hint)] = transport.named("pause_hint")
    assert (worker, session, hint.tool, hint.agent, hint.p_reuse) == (
        done.worker_id, "p/s", "pytest", "coder", 0.9)
    assert hint.rebuild_s == pytest.approx(
        control.retention.cost.recompute_time(done.prompt_tokens + done.output_tokens))


def test_step_transitions_learned_from_sessions_set_the_reuse_odds():
    control, transport = make_control(ttl=None, eviction="workflow_aware")
    control.submit(make_call("a/s"), 0.0)
    _, now = run_until_done(control, transport, 0.0)
    control.session_ended("a/s", now)  # it never called again after pytest
    control.submit(make_call("b/s"), now)
    run_until_done(control, transport, now)
    hints = [h for *_, h in transport.named("pause_hint")]
    assert [h.p_reuse for h in hints] == [0.9, pytest.approx((0 + 0.9) / (1 + 1))]


def test_cache_lost_is_judged_against_the_context_the_caller_counted():
    control, transport = make_control()
    control.retention.policy = policy = Recording(control.retention.policy)
    first = make_call()
    control.submit(first, 0.0)
    [done], now = run_until_done(control, transport, 0.0)
    chain = reply_chain(first.prefix, done)
    control.submit(make_call(turn=1, prefix=chain), now)  # found cached: not lost
    _, now = run_until_done(control, transport, now)
    control.submit(make_call("p/t", context_before=10_000), now)  # told it had more
    run_until_done(control, transport, now)
    assert [lost for _, lost in policy.delays] == [False, False, True]
    assert all(delay >= 0.0 for delay, _ in policy.delays)


def long_tool_control():
    """A host tier, and `pytest` known to take 400 s: the agentrt policy offloads and
    plans a prefetch one reload time before the tool's end."""
    control, transport = make_control(host=True, duration_min_samples=3)
    for _ in range(3):
        control.tool_finished("p/other", "pytest", 400.0, 0.0)
    control.submit(make_call(), 0.0)
    [done], now = run_until_done(control, transport, 0.0)
    return control, transport, done, now


def test_a_long_tool_offloads_and_prefetches_one_reload_time_before_its_end():
    control, transport, done, now = long_tool_control()
    assert done.kv_pin.action == "offload"
    reload = control.retention.cost.reload_time(done.prompt_tokens + done.output_tokens)
    assert transport.wakes == [pytest.approx(now + 400.0 - reload)]
    assert control.next_timer() == transport.wakes[0]
    control.on_timer(transport.wakes[0] - 1e-6)
    assert transport.named("prefetch") == []  # not yet due
    control.on_timer(transport.wakes[0])
    assert transport.named("prefetch") == [("prefetch", done.worker_id, "p/s")]
    assert control.retention.prefetches == 1 and math.isinf(control.next_timer())


@pytest.mark.parametrize("first", ["tool_finished", "next_call", "session_ended"])
def test_no_prefetch_once_the_tool_returned_the_next_call_came_or_the_step_ended(first):
    control, transport, done, now = long_tool_control()
    if first == "tool_finished":
        control.tool_finished("p/s", "pytest", 10.0, now + 10)
    elif first == "next_call":
        control.submit(make_call(turn=1), now + 10)
    else:
        control.session_ended("p/s", now + 10)
    control.on_timer(transport.wakes[0])
    assert transport.named("prefetch") == []


def test_a_program_that_ends_releases_what_its_sessions_still_hold_and_reports_its_turns():
    control, transport = make_control(workers=2)
    control.retention.policy = policy = Recording(control.retention.policy)
    control.program_started("p", 0.0)
    control.submit(make_call("p/a"), 0.0)
    control.submit(make_call("p/b"), 0.0)
    dones, now = run_until_done(control, transport, 0.0)
    while len(dones) < 2:
        more, now = run_until_done(control, transport, now)
        dones += more
    control.session_ended("p/a", now)
    transport.calls.clear()
    control.program_ended("p", now)
    home = {d.session_id: d.worker_id for d in dones}
    assert transport.named("release") == [("release", home["p/b"], "p/b")]
    assert policy.programs == [("p", 2)]
    assert all(len(e.pins) == 0 for e in transport.engines.values())


def test_calls_are_aborted_where_they_are():
    control, transport = make_control(workers=1, dispatch_window=1, ttl=None)
    calls = [make_call(f"p{i}/s") for i in range(4)]
    for call in calls:
        control.submit(call, 0.0)
    sent = [rid for _, _, rids in transport.named("send") for rid in rids]
    queued = [c.request_id for c in calls if c.request_id not in sent]
    assert queued  # the window keeps some in the scheduler
    control.abort(queued[0], 0.0)
    control.abort(sent[0], 0.0)
    assert transport.named("abort") == [("abort", "w0", sent[0])]


def test_idle_workers_steal_once_when_the_batch_ends():
    control, transport = make_control(workers=2, ttl=None, dispatch_window=1,
                                      stealing=_steal())
    with control.batch(0.0):
        for i in range(6):  # all routed to w0 by sticky homes
            control.scheduler.view.session_home[f"p{i}/s"] = "w0"
            control.submit(make_call(f"p{i}/s"), 0.0)
        assert control.scheduler.counters.stolen == 0  # not inside the batch
    assert control.scheduler.counters.stolen > 0
    steals = [d for d in control.scheduler.decisions if type(d) is log.Steal]
    assert steals and all((s.thief, s.victim) == ("w1", "w0") for s in steals)


def _steal():
    from agentrt.runtime.core.stealing import StealConfig
    return StealConfig(high_mark=0)


def test_thunderagent_admission_holds_a_new_program_until_a_tick_admits_it():
    control, transport = make_control(workers=1, ttl="thunderagent", admission_interval_s=2.0)
    control.submit(make_call("p/s"), 0.5)
    assert transport.named("send") == [] and transport.wakes == [0.5]
    control.abort("nope", 0.6)  # unknown ids are no-ops
    control.on_timer(0.5)
    assert transport.named("send") == [("send", "w0", ["p/s#0"])]
    assert log.Admitted("p", "admit", "w0") in control.scheduler.decisions
    assert control.next_timer() == 2.5  # ticks go on while programs are tracked


def test_a_held_call_can_be_aborted_before_admission():
    control, transport = make_control(workers=1, ttl="thunderagent")
    control.submit(make_call("p/s"), 0.0)
    control.abort("p/s#0", 0.1)
    control.on_timer(0.0)
    assert transport.named("send") == []


def test_an_lru_engine_hears_no_hints_and_nothing_is_built_for_them():
    control, transport = make_control(ttl=None)
    control.submit(make_call(), 0.0)
    [done], _ = run_until_done(control, transport, 0.0)
    assert transport.named("pause_hint") == [] and done.kv_pin is None


def test_calls_left_with_no_worker_of_their_model_fail_with_the_reason():
    control, transport = make_control(workers=1, dispatch_window=1, ttl=None)
    for i in range(2):
        control.submit(make_call(f"p{i}/s"), 0.0)  # one in flight, one queued
    assert control.take_stranded(0.0) == []
    assert control.remove_worker("w0", 1.0) == []
    failed = control.take_stranded(1.0)
    assert [(d.request_id, d.finish_reason, d.finished_at) for d in failed] == [
        ("p0/s#0", "error", 1.0), ("p1/s#0", "error", 1.0)]
    assert all("no worker serves model" in d.error and "left the cluster" in d.error
               for d in failed)
    assert control.take_stranded(1.0) == []  # handed over once
    from agentrt.runtime.core.pools import NoWorkerError
    with pytest.raises(NoWorkerError):
        control.submit(make_call("p2/s"), 2.0)
    assert "p2" not in control._sessions  # refused before anything was taken


def test_a_call_held_by_admission_when_its_pool_leaves_is_stranded():
    control, transport = make_control(workers=2, ttl="thunderagent")
    control.submit(make_call("p/s"), 0.0)  # held until a tick admits it
    control.remove_worker("w0", 0.1)
    assert control.take_stranded(0.1) == []  # w1 serves its model still
    control.remove_worker("w1", 0.2)
    [failed] = control.take_stranded(0.2)
    assert failed.request_id == "p/s#0" and "left the cluster" in failed.error
    control.on_timer(0.2)
    assert transport.named("send") == [] and control.take_stranded(0.2) == []
