"""PinSet: deadlines, the cap on pinned memory, soft weights, per-program release; and
the pressure rules that pick what to give up."""
from __future__ import annotations

import math

import pytest

from agentrt.kvcache.pins import PinResult, PinSet, Released
from agentrt.kvcache.pressure import PressureAction, RunningRequest, pressure_action, preemption_victim

from .builders import chain, make_manager, run_turn


def session_chain(kv, name: str, tokens: int, now: float = 0.0):
    """A finished turn of `tokens` prompt tokens (no output): its blocks are free cached."""
    _, after = run_turn(kv, f"turn-{name}", chain((name, tokens)), ("out-" + name, 0), now)
    return after


@pytest.fixture
def kv():
    manager = make_manager(16)
    yield manager
    manager.check_integrity()


def test_a_pin_holds_the_cached_prefix_until_it_expires(kv):
    pins = PinSet(kv)
    a = session_chain(kv, "a", 12)  # 3 blocks
    assert pins.pin("a", a, until=5.0, now=1.0) == PinResult("held", 3, 3)
    assert kv.num_held_blocks == 3 and pins.next_deadline() == 5.0
    assert pins.expire(4.9) == []
    assert pins.expire(5.0) == [Released("a", "expired", 5.0, 3)]
    assert kv.num_held_blocks == 0 and pins.next_deadline() == math.inf


def test_expiry_spares_sessions_whose_next_request_waits(kv):
    pins = PinSet(kv)
    pins.pin("a", session_chain(kv, "a", 8), 2.0, 0.0)
    pins.pin("b", session_chain(kv, "b", 8), 3.0, 0.0)
    assert [r.session_id for r in pins.expire(10.0, waiting={"a"})] == ["b"]
    assert "a" in pins
    assert pins.unpin("a", 11.0) == Released("a", "unpinned", 2.0, 2)


def test_the_cap_trims_a_pin_to_the_prefix_that_fits(kv):
    pins = PinSet(kv, cap_fraction=0.5)  # 8 of 16 blocks
    pins.pin("a", session_chain(kv, "a", 20), 9.0, 0.0)  # 5 blocks
    result = pins.pin("b", session_chain(kv, "b", 24), 9.0, 0.0)  # 6 blocks asked
    assert result == PinResult("trimmed", 3, 6)
    assert kv.num_held_blocks == 8 == pins.cap_blocks
    assert pins.pin("c", session_chain(kv, "c", 4), 9.0, 0.0, trim=True).status == "refused"
    assert pins.violations() == []


def test_without_trim_a_pin_over_the_cap_is_refused_and_leaves_no_hold(kv):
    pins = PinSet(kv, cap_fraction=0.25)  # 4 blocks
    b = session_chain(kv, "b", 24)
    assert pins.pin("b", b, 9.0, 0.0, trim=False) == PinResult("refused", 0, 6)
    assert "b" not in pins and kv.num_held_blocks == 0


def test_shared_prefix_blocks_count_once_against_the_cap(kv):
    pins = PinSet(kv, cap_fraction=0.25)  # 4 blocks
    system = chain(("sys", 8))
    _, a = run_turn(kv, "ta", chain(("a", 4), base=system), ("oa", 0))
    _, b = run_turn(kv, "tb", chain(("b", 4), base=system), ("ob", 0))
    assert pins.pin("a", a, 9.0, 1.0).status == "held"  # 3 blocks
    assert pins.pin("b", b, 9.0, 1.0) == PinResult("held", 3, 3)  # adds only 1
    assert kv.num_held_blocks == 4


def test_nothing_cached_means_no_pin(kv):
    pins = PinSet(kv)
    assert pins.pin("x", chain(("never", 8)), 9.0, 0.0) == PinResult("nothing_cached", 0, 0)
    assert len(pins) == 0


def test_an_exclusive_pin_replaces_the_programs_other_pins(kv):
    pins = PinSet(kv)
    pins.pin("s1", session_chain(kv, "s1", 8), 9.0, 0.0, program_id="p")
    pins.pin("s2", session_chain(kv, "s2", 8), 9.0, 0.0, program_id="p")
    result = pins.pin("s3", session_chain(kv, "s3", 8), 9.0, 0.0, program_id="p",
                      exclusive=True)
    assert result.replaced == ("s1", "s2") and list(pins) == ["s3"]


def test_release_program_drops_all_its_pins_in_session_order(kv):
    pins = PinSet(kv)
    for s in ("s2", "s1"):
        pins.pin(s, session_chain(kv, s, 8), 9.0, 0.0, program_id="p")
    pins.pin("other", session_chain(kv, "other", 8), 9.0, 0.0, program_id="q")
    released = pins.release_program("p", 1.0)
    assert [(r.session_id, r.reason) for r in released] == [("s1", "program_end"),
                                                            ("s2", "program_end")]
    assert list(pins) == ["other"] and pins.violations() == []


def test_latest_and_weakest_pick_what_to_give_up(kv):
    pins = PinSet(kv)
    pins.pin("hard", session_chain(kv, "hard", 8), 4.0, 0.0)
    pins.pin("fading", session_chain(kv, "fading", 8), 3.0, 0.0,
             weight=lambda t: 1.0 if t < 1.0 else 0.2)
    pins.pin("late", session_chain(kv, "late", 8), 8.0, 0.0, weight=lambda t: 0.9)
    assert pins.latest() == "late"
    assert pins.weakest(0.5) == "late"  # 0.9 < 1.0 = fading, hard
    assert pins.weakest(2.0) == "fading"
    assert pins.weight("fading", 2.0) == 0.2 and pins.weight("nobody", 2.0) == 0.0


def test_weakest_ties_go_to_the_latest_deadline_then_greatest_id(kv):
    pins = PinSet(kv)
    for s, until in (("a", 5.0), ("b", 5.0), ("c", 4.0)):
        pins.pin(s, session_chain(kv, s, 4), until, 0.0)
    assert pins.weakest(1.0) == "b"


def test_cap_fraction_is_validated(kv):
    with pytest.raises(ValueError, match="cap_fraction"):
        PinSet(kv, cap_fraction=0.0)


# -- pressure rules ---------------------------------------------------------------------


RUNNING = [
    RunningRequest("old#1", program_arrival=0.0, admit_order=3),
    RunningRequest("new#1", program_arrival=5.0, admit_order=1),
    RunningRequest("newest-last#1", program_arrival=9.0, admit_order=2, last_step=True),
]


def test_preemption_takes_the_most_recently_arrived_program_not_a_last_step():
    assert preemption_victim(RUNNING).request_id == "new#1"
    assert preemption_victim(RUNNING[2:]).request_id == "newest-last#1"
    assert preemption_victim([]) is None


def test_continuum_releases_the_latest_pin_only_with_at_most_one_running(kv):
    pins = PinSet(kv)
    pins.pin("a", session_chain(kv, "a", 8), 3.0, 0.0)
    pins.pin("b", session_chain(kv, "b", 8), 7.0, 0.0)
    assert pressure_action(pins, RUNNING[:1], 1.0) == PressureAction(
        "release_pin", "b", "continuum: latest-expiring pin")
    assert pressure_action(pins, RUNNING, 1.0).kind == "preempt"


def test_pins_first_releases_the_weakest_pin_before_preempting(kv):
    pins = PinSet(kv)
    pins.pin("a", session_chain(kv, "a", 8), 3.0, 0.0, weight=lambda t: 0.1)
    pins.pin("b", session_chain(kv, "b", 8), 7.0, 0.0)
    action = pressure_action(pins, RUNNING, 1.0, rule="pins_first")
    assert (action.kind, action.target) == ("release_pin", "a")
    pins.unpin("a", 1.0)
    pins.unpin("b", 1.0)
    assert pressure_action(pins, RUNNING, 1.0, "pins_first").target == "new#1"
    assert pressure_action(pins, [], 1.0, "pins_first").kind == "none"


def test_unknown_pressure_rule_lists_the_valid_ones(kv):
    with pytest.raises(ValueError, match="continuum, pins_first"):
        pressure_action(PinSet(kv), [], 0.0, rule="random")
