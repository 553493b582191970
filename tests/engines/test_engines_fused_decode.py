"""Fused decode steps: `step(now, horizon)` equals stepping one iteration at a time."""
from __future__ import annotations

import dataclasses
import math
import random

import pytest

from agentrt.runtime.core.messages import PinExpired, Preempted, RequestDone
from agentrt.runtime.engines import FillerResponder
from agentrt.runtime.engines.simulated.decode_batch import DecodeBatch
from agentrt.runtime.engines.simulated.decode_cost import DecodeCost
from agentrt.runtime.engines.simulated.sequence import Seq
from tests.engines import decode_bench
from tests.engines.builders import (
    chain_after, drive, make_engine, make_perf, make_request, synthetic_chain,
)


def pinned_sessions(engine, seed: int, sessions: int = 30, turns: int = 6):
    """Multi-turn sessions over two shared system prompts; after each turn the session
    pins its chain for a while (sometimes past its next turn, sometimes not) and its
    next turn arrives after a tool call. Returns (first arrivals, on_done)."""
    rng = random.Random(seed)
    systems = [synthetic_chain(f"sys{i}", rng.randint(300, 900)) for i in range(2)]
    sent, turns_left = {}, {}

    def request(rid, session, prefix):
        sent[rid] = make_request(rid, prefix, 400, session=session, hint=rng.randint(1, 300))
        return sent[rid]

    arrivals = []
    for s in range(sessions):
        prefix = synthetic_chain(f"task{s}", rng.randint(1, 200), base=rng.choice(systems))
        turns_left[f"s{s}"] = rng.randint(1, turns)
        arrivals.append((rng.uniform(0, 3), request(f"s{s}-t0", f"s{s}", prefix)))

    def on_done(done, now):
        turns_left[done.session_id] -= 1
        chain = chain_after(sent[done.request_id], done)
        if not turns_left[done.session_id]:
            engine.release(done.session_id, now)
            return []
        engine.pin(done.session_id, chain, until=now + rng.uniform(0.05, 3.0), now=now)
        turn = int(done.request_id.rsplit("-t", 1)[1]) + 1
        chain.extend_synthetic(rng.getrandbits(62), rng.randint(1, 300))  # tool result
        rid = f"{done.session_id}-t{turn}"
        return [(now + rng.expovariate(1.0), request(rid, done.session_id, chain))]

    return arrivals, on_done


def run(kv_blocks: int, seed: int, fused: bool, **engine_kwargs):
    """Drive `pinned_sessions` to the end; returns the engine, its events and the
    number of step calls it took."""
    engine = make_engine(kv_blocks=kv_blocks, responder=FillerResponder(), **engine_kwargs)
    arrivals, on_done = pinned_sessions(engine, seed)
    calls, step = [], engine.step

    def counted_step(now, horizon=None):
        calls.append(now)
        return step(now, horizon)

    engine.step = counted_step
    events = drive(engine, arrivals, on_done, kv_check_every=50, fused=fused)
    return engine, events, len(calls)


def assert_same_event(a, b) -> None:
    assert type(a) is type(b)
    for f in dataclasses.fields(a):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, float):
            assert y == pytest.approx(x, rel=1e-9, abs=1e-12), (f.name, a, b)
        else:
            assert x == y, (f.name, a, b)


def pool_state(engine):
    """Every block's references and content, and the pool's counters."""
    blocks = engine.kv.pool.blocks
    return [(b.ref_count, b.hash, b.parent_id, b.in_use) for b in blocks], engine.kv.stats


# kv_blocks: roomy, tight (preemptions, pins given up), tiny (preemptions all along);
# 4 seats: requests wait for a seat while the others decode.
@pytest.mark.parametrize("kv_blocks,seed,seats", [
    (4000, 1, 256), (700, 2, 256), (260, 3, 256), (260, 4, 256), (4000, 5, 4), (700, 6, 4),
])
def test_fused_steps_give_the_event_stream_of_single_steps(kv_blocks, seed, seats):
    single, single_events, _ = run(kv_blocks, seed, fused=False, max_num_seqs=seats)
    fused, fused_events, calls = run(kv_blocks, seed, fused=True, max_num_seqs=seats)
    assert calls < fused.steps / 3  # most iterations ran fused
    assert len(fused_events) == len(single_events)
    for a, b in zip(single_events, fused_events):
        assert_same_event(a, b)
    s, f = single.stats(), fused.stats()
    assert dataclasses.replace(f, busy_time=s.busy_time) == s  # steps count iterations
    assert f.busy_time == pytest.approx(s.busy_time, rel=1e-9)
    assert pool_state(fused) == pool_state(single)
    kinds = {type(e) for e in single_events}
    assert {RequestDone, PinExpired} <= kinds
    if kv_blocks < 300:
        assert Preempted in kinds


def test_fusing_covers_many_iterations_per_call():
    engine = make_engine(responder=FillerResponder(), max_num_seqs=64)
    work = decode_bench.Workload(sessions=16, turns=3)
    result = decode_bench.run_sessions(engine, work, fused=True)
    single = decode_bench.run_sessions(
        make_engine(responder=FillerResponder(), max_num_seqs=64), work, fused=False)
    assert result.output_tokens == single.output_tokens == 16 * 3 * 200
    assert result.iterations == single.iterations == single.calls
    assert result.virtual_s == pytest.approx(single.virtual_s, rel=1e-9)
    assert result.calls < result.iterations / 5


def decoding_engine(batch: int = 8, outputs: int = 100, **kwargs):
    """An engine whose `batch` requests have just finished prefill (all decoding)."""
    engine = make_engine(responder=FillerResponder(), **kwargs)
    for i in range(batch):
        engine.submit(make_request(f"r{i}", synthetic_chain(f"p{i}", 100 + i), hint=outputs), 0)
    now = 0.0
    while engine.stats().waiting or engine._sched.prefilling:
        now += engine.step(now).duration
    return engine, now


def single_step_starts(engine, now: float, count: int) -> list[float]:
    starts = []
    for _ in range(count):
        starts.append(now)
        now += engine.step(now).duration
    return starts


def test_a_fused_run_stops_at_the_first_finish_with_its_timestamp():
    engine, now = decoding_engine(outputs=40)
    reference, _ = decoding_engine(outputs=40)
    t, single = now, []
    while reference.has_work():
        single.append(reference.step(t))
        t += single[-1].duration
    result = engine.step(now, horizon=math.inf)
    assert result.iterations == len(single) == 39  # the first token came with the prefill
    assert result.decode_tokens == 8 * 39 and not engine.has_work()
    done = [e for e in result.events if isinstance(e, RequestDone)]
    assert done == [dataclasses.replace(e, finished_at=done[0].finished_at)
                    for e in single[-1].events]
    assert done[0].finished_at == pytest.approx(single[-1].events[0].finished_at, rel=1e-12)
    assert done[0].finished_at == pytest.approx(now + result.duration, rel=1e-12)


@pytest.mark.parametrize("k", [1, 2, 7, 20])
@pytest.mark.parametrize("at_boundary", [False, True])
def test_every_fused_iteration_starts_before_the_horizon(k, at_boundary):
    engine, now = decoding_engine()
    reference, _ = decoding_engine()
    starts = single_step_starts(reference, now, k + 1)
    # Iteration k - 1 starts before the horizon, iteration k at or after it.
    horizon = starts[k] if at_boundary else (starts[k - 1] + starts[k]) / 2
    result = engine.step(now, horizon)
    assert result.iterations == k
    assert now + result.duration == pytest.approx(starts[k], rel=1e-12)
    assert engine.step(starts[k], horizon=starts[k]).iterations == 1  # the first always runs


def test_without_a_horizon_a_step_is_one_iteration():
    engine, now = decoding_engine()
    result = engine.step(now)
    assert (result.iterations, result.decode_tokens) == (1, 8)
    assert engine.step(now + result.duration, None).iterations == 1


def test_a_run_stops_before_a_pin_expires():
    engine, now = decoding_engine()
    reference, _ = decoding_engine()
    for e in (engine, reference):
        e.pin("other", synthetic_chain("p0", 100), until=now + 0.05, now=now)
    starts = single_step_starts(reference, now, 40)
    result = engine.step(now, horizon=math.inf)
    assert starts[result.iterations - 1] < now + 0.05 <= starts[result.iterations]
    expired = engine.step(now + result.duration, math.inf).events
    assert expired[0] == PinExpired("other", "w0", now + result.duration)


def test_a_run_stops_where_the_free_blocks_run_out():
    # 8 x ~108 tokens in 7-block sequences; 4 free blocks last until the 5th growth.
    engine, now = decoding_engine(kv_blocks=8 * 7 + 4, outputs=200)
    free = engine.kv.num_free_blocks
    result = engine.step(now, math.inf)
    assert engine.kv.num_free_blocks == 0 and free > 0
    assert not [e for e in result.events if isinstance(e, Preempted)]
    nxt = engine.step(now + result.duration, math.inf)  # needs a preemption: one iteration
    assert nxt.iterations == 1 and any(isinstance(e, Preempted) for e in nxt.events)


def test_a_waiting_request_that_fits_stops_fusing():
    engine, now = decoding_engine()
    engine.submit(make_request("late", synthetic_chain("q", 50), hint=5), now)
    result = engine.step(now, math.inf)
    assert result.iterations == 1 and result.prefill_tokens == 50


def test_iterations_within_free_blocks_matches_counting_tick_by_tick():
    rng = random.Random(5)
    for _ in range(200):
        bs = rng.choice([1, 4, 16])
        batch = DecodeBatch(bs)
        phases = [rng.randrange(bs) for _ in range(rng.randint(1, 12))]
        for i, phase in enumerate(phases):  # file sequences `phase` ticks from growing
            seq = Seq(make_request(f"r{i}", synthetic_chain("p", 1)), i, 0.0, None)
            seq.synced = seq.kv0 = bs - phase
            seq.finish_tick = 10**9
            batch.file_growth(seq)
        free, grown, k = rng.randint(0, 60), 0, 0
        while True:  # k: iterations whose growth fits; the next tick's would not
            grown += sum(1 for p in phases if k >= p and (k - p) % bs == 0)
            if grown > free:
                break
            k += 1
        assert batch.iterations_within(free) == k


@pytest.mark.parametrize("model,gpu,tp", [
    ("Llama-3.1-8B", "H100-SXM", 1), ("Llama-3.1-70B", "H100-SXM", 4),
    ("Llama-3.1-70B", "A100-SXM-80G", 8),
])
def test_decode_cost_is_the_perf_models_step_time_bit_for_bit(model, gpu, tp):
    perf, rng = make_perf(model, gpu, tp), random.Random(7)
    for _ in range(2000):
        size = rng.randint(1, 256)
        context = rng.randint(size, 10**7)
        expected = perf.step_time_totals(0, 0, size, context, size)
        assert DecodeCost.of(perf, size).step_time(context) == expected
