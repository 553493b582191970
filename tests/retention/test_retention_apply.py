"""apply_decision: each action reaches the right mechanism call."""
from __future__ import annotations

import math

from agentrt.kvcache.manager import KVCacheManager
from agentrt.kvcache.pins import PinSet

from agentrt.runtime.core.retention.apply import apply_decision
from agentrt.runtime.core.retention.decision import PinDecision, SurvivalWeight
from tests.retention.builders import finished_turn

BS = 4



def test_pin_and_soft_pin_hold_the_session_within_the_cap():
    kv = KVCacheManager(16, BS)
    pins = PinSet(kv, cap_fraction=0.125)  # 2 blocks
    prefix = finished_turn(kv, key="apply-test")
    applied = apply_decision(PinDecision.pin(5.0, "test", exclusive=True), pins, "s", prefix,
                             1.0, program_id="p")
    assert (applied.pin.status, applied.pin.blocks) == ("trimmed", 2)
    weight = SurvivalWeight.sampled(1.0, 2.0, 9.0, lambda t: 0.5)
    applied = apply_decision(PinDecision.soft(9.0, weight, 0.01, "test"), pins, "s", prefix, 1.0)
    assert pins.get("s").until == 9.0 and pins.weight("s", 3.0) == 0.5
    kv.check_integrity()


def test_offload_unpins_and_moves_the_chain_to_host():
    kv = KVCacheManager(16, BS, host_blocks=8)
    pins = PinSet(kv)
    prefix = finished_turn(kv, key="apply-test")
    apply_decision(PinDecision.pin(math.inf, "test"), pins, "s", prefix, 1.0)
    applied = apply_decision(PinDecision.offload(2.0, "test"), pins, "s", prefix, 2.0)
    assert "s" not in pins and (applied.offload.evicted, applied.offload.stored) == (3, 3)
    assert kv.match(prefix).host_blocks == 3
    kv.check_integrity()


def test_drop_releases_a_previous_pin_and_holds_nothing():
    kv = KVCacheManager(16, BS)
    pins = PinSet(kv)
    prefix = finished_turn(kv, key="apply-test")
    apply_decision(PinDecision.pin(9.0, "test"), pins, "s", prefix, 1.0)
    applied = apply_decision(PinDecision.drop(2.0, "test"), pins, "s", prefix, 2.0)
    assert (applied.pin, applied.offload, len(pins), kv.num_held_blocks) == (None, None, 0, 0)
    assert kv.match(prefix).blocks == 3  # still cached, just evictable
