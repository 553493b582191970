"""Prefetching a paused session's context from the host tier: the copy runs on the
host link while the GPU computes, and the next turn waits only for what is still on
the link."""
from __future__ import annotations

import pytest

from agentrt.runtime.core.messages import RequestDone
from agentrt.runtime.engines import FillerResponder
from agentrt.runtime.engines.simulated.perf_model import attention_pairs
from tests.engines.builders import drive, make_engine
from tests.engines.test_engines_retention import first_turn, next_turn


def offloaded_session():
    engine = make_engine(kv_blocks=200, responder=FillerResponder(), host_blocks=500)
    _, _, mine = first_turn(engine)
    assert engine.kv.offload(mine, 1.0).stored == 62
    return engine, mine


def prefill_time(engine, request, cached=992):
    new = request.prompt_tokens - cached
    return engine.perf.step_time_totals(new, attention_pairs(new, cached), 0, 0, 1)


def test_a_prefetch_that_has_landed_costs_the_next_turn_nothing():
    engine, mine = offloaded_session()
    assert engine.prefetch("s1", mine, 2.0) == 62
    assert engine.cached_prefix_tokens(mine) == 992  # back on the GPU, as free blocks
    landed = 2.0 + engine.perf.reload_time(992)
    request = next_turn(mine)
    engine.submit(request, landed + 1.0)
    first = engine.step(landed + 1.0)
    assert first.duration == pytest.approx(prefill_time(engine, request))
    (done,) = [e for e in first.events + drive(engine) if isinstance(e, RequestDone)]
    assert done.cached_tokens == 992 and engine.prefetched_tokens == 992
    engine.check_integrity()


def test_a_turn_back_before_its_prefetch_lands_waits_only_for_the_rest():
    engine, mine = offloaded_session()
    engine.prefetch("s1", mine, 2.0)
    reload = engine.perf.reload_time(992)
    request = next_turn(mine)
    early = 2.0 + reload / 4
    engine.submit(request, early)
    first = engine.step(early)
    assert first.duration == pytest.approx(prefill_time(engine, request) + 0.75 * reload)


def test_a_reload_at_admission_queues_behind_a_prefetch_on_the_link():
    engine, mine = offloaded_session()
    engine.prefetch("s9", mine, 2.0)  # a copy occupies the link until 2.0 + reload
    assert engine.kv.offload(mine, 2.0).stored == 62  # out again: the turn must reload
    reload = engine.perf.reload_time(992)
    request = next_turn(mine)
    engine.submit(request, 2.0)
    first = engine.step(2.0)
    assert first.duration == pytest.approx(prefill_time(engine, request) + 2 * reload)


def test_nothing_to_prefetch_without_a_host_tier_or_host_blocks():
    engine = make_engine(kv_blocks=200, responder=FillerResponder())
    _, _, mine = first_turn(engine)
    assert engine.prefetch("s1", mine, 2.0) == 0
    engine, mine = offloaded_session()
    engine.prefetch("s1", mine, 2.0)
    assert engine.prefetch("s1", mine, 3.0) == 0  # already back
    engine.release("s1", 3.0)  # the step ended: no wait left for its next admission
    assert engine.prefetched_tokens == 992


# -- a session moving in from a peer worker with its KV --------------------------------


def test_movable_blocks_count_the_gpu_and_the_host_tier():
    engine, mine = offloaded_session()
    assert engine.movable_blocks(mine) == 62 and engine.cached_prefix_tokens(mine) == 0
    engine.prefetch("s1", mine, 2.0)
    assert engine.movable_blocks(mine) == 62


def test_a_received_session_hits_its_kv_after_the_copy_over_the_peer_link():
    source, mine = offloaded_session()
    dest = make_engine(kv_blocks=200, responder=FillerResponder())
    tokens = dest.receive("s1", mine, source.movable_blocks(mine), 2.0, "network")
    assert tokens == 992 and dest.received_tokens == 992
    copy = dest.perf.transfer_time(992, "network")
    assert copy > dest.perf.transfer_time(992, "nvlink") > 0
    request = next_turn(mine)
    dest.submit(request, 2.0)
    first = dest.step(2.0)  # the admission waits for the copy
    assert first.duration == pytest.approx(prefill_time(dest, request) + copy)
    (done,) = [e for e in first.events + drive(dest) if isinstance(e, RequestDone)]
    assert done.cached_tokens == 992
    dest.check_integrity()


def test_copies_in_from_peers_run_one_after_another():
    source, mine = offloaded_session()
    dest = make_engine(kv_blocks=200, responder=FillerResponder())
    dest.receive("s0", mine, 30, 2.0)
    dest.receive("s1", mine, 62, 2.0)  # 32 more blocks, behind the first copy
    assert dest._sched.prefetch_ready["s1"] == pytest.approx(
        2.0 + dest.perf.transfer_time(62 * 16))


# -- the free-reload bound (evaluation only) --------------------------------------------


def test_with_free_reload_an_offloaded_turn_is_admitted_without_waiting_for_the_link():
    from agentrt.runtime.engines.simulated.perf_model import FreeReloadPerfModel

    engine = make_engine(perf=FreeReloadPerfModel("llama-3.1-8b", "h100"), kv_blocks=200,
                         responder=FillerResponder(), host_blocks=500)
    _, _, mine = first_turn(engine)
    assert engine.kv.offload(mine, 1.0).stored == 62
    request = next_turn(mine)
    engine.submit(request, 2.0)
    first = engine.step(2.0)
    # the same as a prefetch that has landed: only the new tokens' prefill
    assert first.duration == pytest.approx(prefill_time(engine, request))
    (done,) = [e for e in first.events + drive(engine) if isinstance(e, RequestDone)]
    assert done.cached_tokens == 992


def test_free_reload_reaches_the_engines_and_the_cores_cost_model_and_nothing_else():
    from agentrt.runtime.engines.factory import EngineFactory
    from agentrt.runtime.sim.config import SimConfig

    free = EngineFactory.for_config(SimConfig(free_reload=True))
    real = EngineFactory.for_config(SimConfig())
    assert free.cost().reload_time(8192) == 0.0 and free("w0").perf.reload_time(8192) == 0.0
    assert real.cost().reload_time(8192) > 0.0 and real("w0").perf.reload_time(8192) > 0.0
    assert free.cost().recompute_time(8192) == real.cost().recompute_time(8192)
    assert free.host_fraction == real.host_fraction > 0  # host tier auto: on in both
