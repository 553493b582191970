"""ModelClock carries a model-clock decision onto an engine's clock; pin_note shows a
decision as the trace records it."""
from __future__ import annotations

import math

import pytest

from agentrt.kvcache.manager import KVCacheManager
from agentrt.kvcache.pins import PinSet
from agentrt.runtime.core.retention import (
    AgentRTTTL, ModelClock, PinDecision, SurvivalWeight, apply_decision, pin_note,
)
from agentrt.runtime.core.retention.apply import Applied
from agentrt.runtime.core.retention.decision import PinRequest, ProgramFacts
from tests.retention.builders import finished_turn, make_durations

BS = 4


def test_model_clock_maps_both_ways_from_its_origin():
    clock = ModelClock(origin=1000.0, scale=0.5)
    assert clock.to_model(1000.0) == 0.0 and clock.to_model(1002.0) == 4.0
    assert clock.to_engine(4.0) == 1002.0 and clock.to_engine(math.inf) == math.inf
    with pytest.raises(ValueError, match="scale"):
        ModelClock(scale=0.0)


def test_a_soft_pin_keeps_its_shape_on_the_engine_clock():
    clock = ModelClock(origin=1000.0, scale=0.5)
    weight = SurvivalWeight(start=10.0, full_until=12.0, until=20.0,
                            survival=lambda t: 1.0 - t / 10.0)
    engine = clock.on_engine(PinDecision.soft(20.0, weight, 0.25, "test"))
    assert engine.until == 1010.0  # model 20 s
    assert (engine.action, engine.value, engine.reason) == ("soft", 0.25, "test")
    for model_t in (10.0, 13.0, 16.0, 20.0):
        assert engine.weight(clock.to_engine(model_t)) == weight(model_t)


def test_hard_pins_drops_and_the_identity_clock():
    clock = ModelClock(origin=50.0, scale=2.0)
    assert clock.on_engine(PinDecision.pin(math.inf, "until next turn")).until == math.inf
    assert clock.on_engine(PinDecision.drop(3.0, "x")).weight is None
    decision = PinDecision.pin(7.0, "x", exclusive=True)
    assert ModelClock().on_engine(decision) == decision
    prefetch = clock.on_engine(PinDecision.offload(3.0, "x").with_prefetch(10.0))
    assert (prefetch.until, prefetch.prefetch_at) == (56.0, 70.0)



def test_the_note_of_a_soft_pin_shows_ttl_prediction_and_what_was_held():
    kv = KVCacheManager(16, BS)
    prefix = finished_turn(kv, key="note-test")
    durations = make_durations({"pytest": [1.0, 2.0, 3.0, 4.0]}, min_samples=4)
    request = PinRequest("s", "pytest", prefix.num_tokens, 10.0, ProgramFacts("p"))
    decision = AgentRTTTL().decide(request, durations)
    applied = apply_decision(decision, PinSet(kv), "s", prefix, 10.0, "p")
    note = pin_note(applied, "pytest", 10.0, durations, decided_at=1234.5)
    assert (note.action, note.tool, note.status, note.blocks) == ("soft", "pytest", "held", 3)
    assert note.ttl_s == decision.until - 10.0 > note.predicted_s == 2.0
    assert (note.duration_source, note.duration_samples) == ("observed", 4)
    assert note.reason == decision.reason and note.decided_at == 1234.5


def test_notes_of_drops_offloads_and_unknown_tools():
    durations = make_durations()
    drop = pin_note(Applied(PinDecision.drop(5.0, "last step")), "bash", 5.0, durations)
    assert (drop.action, drop.ttl_s, drop.blocks, drop.status) == ("drop", 0.0, 0, "")
    assert (drop.duration_source, drop.predicted_s, drop.decided_at) == ("none", 0.0, 5.0)
    kv = KVCacheManager(16, BS, host_blocks=8)
    prefix = finished_turn(kv, key="note-test")
    applied = apply_decision(PinDecision.offload(5.0, "reload"), PinSet(kv), "s", prefix, 5.0)
    note = pin_note(applied, "bash", 5.0, make_durations(bash=2.0))
    assert (note.action, note.status, note.blocks) == ("offload", "offloaded", 3)
    assert note.duration_source == "prior"
    assert note.predicted_s == pytest.approx(2 * math.log(2))  # the exponential's median
