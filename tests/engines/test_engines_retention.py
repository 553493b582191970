"""Retention inside the engine: pins through a tool call, expiry, the cap, the pressure
rules and the host tier's reload charge."""
from __future__ import annotations

import pytest

from agentrt.runtime.core.messages import PinExpired, Preempted, RequestDone
from agentrt.runtime.engines import FillerResponder
from agentrt.runtime.engines.simulated.perf_model import attention_pairs
from tests.engines.builders import (
    chain_after,
    drive,
    make_engine,
    make_request,
    synthetic_chain,
)


def first_turn(engine, session="s1", tokens=1000):
    t1 = make_request("t1", synthetic_chain("mine", tokens), hint=8, session=session)
    (d1,) = [e for e in drive(engine, [(0.0, t1)]) if isinstance(e, RequestDone)]
    return t1, d1, chain_after(t1, d1)


def next_turn(chain, rid="t2", session="s1", tokens=200):
    return make_request(rid, synthetic_chain(f"in-{rid}", tokens, chain), hint=8,
                        session=session)


def test_a_pin_keeps_the_prefix_through_traffic_and_passes_to_the_next_turn():
    engine = make_engine(kv_blocks=200, responder=FillerResponder())
    _, d1, mine = first_turn(engine)
    assert engine.pins.pin("s1", mine, 50.0, d1.finished_at).blocks == 62
    drive(engine, [(1.0 + i, make_request(f"o{i}", synthetic_chain(f"x{i}", 2000), 16))
                   for i in range(3)])
    events = drive(engine, [(10.0, next_turn(mine))])
    (d2,) = [e for e in events if isinstance(e, RequestDone)]
    assert d2.cached_tokens == 992  # the whole pinned prefix hit
    assert "s1" not in engine.pins and engine.stats().kv_pinned_blocks == 0  # passed on
    assert not [e for e in events if isinstance(e, PinExpired)]


def test_a_due_pin_stays_while_its_sessions_next_request_waits():
    engine = make_engine(kv_blocks=200, responder=FillerResponder(), max_num_seqs=1,
                         max_batched_tokens=512)
    _, d1, mine = first_turn(engine)
    engine.pins.pin("s1", mine, 5.0, d1.finished_at)
    engine.submit(make_request("busy", synthetic_chain("x", 400), 64), 4.0)
    engine.submit(next_turn(mine), 4.0)  # waits behind "busy" (one seat)
    result = engine.step(6.0)
    assert not [e for e in result.events if isinstance(e, PinExpired)]
    assert "s1" in engine.pins
    engine.abort("t2", 6.5)
    assert engine.step(7.0).events[0] == PinExpired("s1", "w0", 7.0)


def test_pinned_blocks_stay_within_the_cap():
    engine = make_engine(kv_blocks=200, responder=FillerResponder(), pin_cap_fraction=0.25)
    _, d1, mine = first_turn(engine)
    result = engine.pins.pin("s1", mine, 50.0, d1.finished_at)
    assert result.status == "trimmed" and result.blocks == 50
    engine.check_integrity()


@pytest.mark.parametrize("rule,given_up", [
    (None, Preempted("o1", "s-o1", "w0", 0.0, "kv_full")),  # two run: preempt the latest
    ("continuum", Preempted("o1", "s-o1", "w0", 0.0, "kv_full")),
    ("pins_first", PinExpired("s1", "w0", 0.0)),  # the pin goes before running work
])
def test_under_pressure_the_rule_picks_a_pin_or_a_running_request(rule, given_up):
    engine = make_engine(kv_blocks=130, responder=FillerResponder(), pressure_rule=rule)
    _, d1, mine = first_turn(engine)
    engine.pins.pin("s1", mine, 1e9, d1.finished_at)
    reqs = [(1.0, make_request(f"o{i}", synthetic_chain(f"x{i}", 300), 600, hint=600))
            for i in range(2)]
    events = [e for e in drive(engine, reqs) if not isinstance(e, RequestDone)]
    assert len(events) == 1 and type(events[0]) is type(given_up)
    assert events[0].session_id == given_up.session_id


def test_a_reload_from_the_host_tier_is_charged_and_not_prefilled():
    engine = make_engine(kv_blocks=200, responder=FillerResponder(), host_blocks=500)
    _, _, mine = first_turn(engine)
    assert engine.kv.offload(mine, 1.0).stored == 62
    assert engine.cached_prefix_tokens(mine) == 0
    request = next_turn(mine)
    engine.submit(request, 2.0)
    first = engine.step(2.0)
    new = request.prompt_tokens - 992
    perf = engine.perf
    assert first.duration == pytest.approx(
        perf.step_time_totals(new, attention_pairs(new, 992), 0, 0, 1) + perf.reload_time(992))
    (d2,) = [e for e in first.events + drive(engine) if isinstance(e, RequestDone)]
    assert d2.cached_tokens == 992 and d2.prefilled_tokens == new
    assert engine.kv.stats.reloaded_tokens == 992
    engine.check_integrity()
