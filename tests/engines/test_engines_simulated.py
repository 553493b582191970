"""SimulatedEngine: batching, prefix reuse, chunked prefill, preemption, pins."""
from __future__ import annotations

import math
import random
import time

import pytest

from agentrt.kvcache.prefix import TokenChain
from agentrt.runtime.core.messages import PinExpired, Preempted, RequestDone
from agentrt.runtime.engines import Engine, FillerResponder, ScriptedResponder, SimpleTokenizer
from tests.engines.builders import (
    assert_token_identity, chain_after, drive, make_engine, make_perf, make_request,
    synthetic_chain,
)


def agent_workload(seed: int, sessions: int = 40, turns: int = 5):
    """Multi-turn sessions over three shared system prompts; each turn's prompt is the
    previous prompt + reply + a tool result. Returns (first arrivals, on_done, sent)."""
    rng = random.Random(seed)
    systems = [synthetic_chain(f"sys{i}", rng.randint(800, 3000)) for i in range(3)]
    sent, turns_left = {}, {}

    def request(rid, session, prefix):
        req = make_request(rid, prefix, rng.choice([64, 128, 512]), session=session)
        sent[rid] = req
        return req

    arrivals = []
    for s in range(sessions):
        prefix = synthetic_chain(f"task{s}", rng.randint(20, 600), base=rng.choice(systems))
        turns_left[f"s{s}"] = rng.randint(1, turns)
        arrivals.append((rng.uniform(0, 5), request(f"s{s}-t0", f"s{s}", prefix)))

    def on_done(done, now):
        turns_left[done.session_id] -= 1
        if not turns_left[done.session_id]:
            return []
        turn = int(done.request_id.rsplit("-t", 1)[1]) + 1
        prefix = chain_after(sent[done.request_id], done)
        prefix.extend_synthetic(rng.getrandbits(62), rng.randint(20, 800))  # tool result
        rid = f"{done.session_id}-t{turn}"
        return [(now + rng.expovariate(1.0), request(rid, done.session_id, prefix))]

    return arrivals, on_done, sent


# kv_blocks: roomy (eviction only), then tight (preemptions too).
@pytest.mark.parametrize("kv_blocks", [8000, 1500])
def test_every_request_finishes_once_and_tokens_are_conserved(kv_blocks):
    arrivals, on_done, sent = agent_workload(seed=1, sessions=60, turns=6)
    engine = make_engine(kv_blocks=kv_blocks, responder=FillerResponder(200))
    # Engine bookkeeping after every step; the full KV pool walk every 10th step.
    events = drive(engine, arrivals, on_done, kv_check_every=10)
    done = [e for e in events if isinstance(e, RequestDone)]
    assert sorted(d.request_id for d in done) == sorted(sent) and len(sent) > 200
    for d in done:
        assert_token_identity(d)
        assert d.prompt_tokens == sent[d.request_id].prompt_tokens
        assert d.dispatched_at <= d.first_scheduled_at < d.first_token_at <= d.finished_at
    assert sum(d.cached_tokens for d in done) > 0.3 * sum(d.prompt_tokens for d in done)
    if kv_blocks < 2000:
        assert any(d.preemptions for d in done) and any(d.recomputed_tokens for d in done)
    assert engine.stats().kv_used_blocks == 0 and not engine.has_work()


# Turn 1 leaves its prompt and output in full blocks, except the last sampled token,
# which is never fed back: with 1000 + 104 = 69 x 16 tokens the 69th block stays partial.
@pytest.mark.parametrize("output,kept", [(101, 1088), (104, 1088), (105, 1104)])
def test_turn_two_prefills_only_the_new_tokens(output, kept):
    engine = make_engine(kv_blocks=1000, responder=FillerResponder())
    t1 = make_request("t1", synthetic_chain("conv", 1000), hint=output, session="s")
    (d1,) = [e for e in drive(engine, [(0.0, t1)]) if isinstance(e, RequestDone)]
    assert (d1.cached_tokens, d1.prefilled_tokens, d1.output_tokens) == (0, 1000, output)
    prefix = chain_after(t1, d1)
    prefix.extend_synthetic(99, 300)  # the tool result
    t2 = make_request("t2", prefix, session="s")
    assert engine.cached_prefix_tokens(prefix) == kept
    (d2,) = [e for e in drive(engine, [(9.0, t2)]) if isinstance(e, RequestDone)]
    assert (d2.cached_tokens, d2.prefilled_tokens) == (kept, 1000 + output + 300 - kept)


def test_replies_with_token_ids_are_reused_as_well():
    tok = SimpleTokenizer()
    messages = [{"role": "user", "content": "Fix the parser, please."}]
    engine = make_engine(kv_blocks=1000, responder=FillerResponder(tokenizer=tok))
    prompt = tok.encode_prompt(messages)
    t1 = make_request("t1", TokenChain.from_tokens(prompt), hint=60, messages=messages)
    (d1,) = [e for e in drive(engine, [(0.0, t1)]) if isinstance(e, RequestDone)]
    assert d1.output_token_ids == tok.encode_reply(d1.text) and d1.output_synthetic_key is None
    messages += [{"role": "assistant", "content": d1.text}, {"role": "user", "content": "Thanks"}]
    follow = TokenChain.from_tokens(tok.encode_prompt(messages))
    assert chain_after(t1, d1).hashes == follow.hashes[: len(chain_after(t1, d1).hashes)]
    assert engine.cached_prefix_tokens(follow) == (len(prompt) + 60 - 1) // 16 * 16


def test_a_long_prompt_is_prefilled_in_chunks_while_decodes_go_on():
    engine = make_engine(responder=FillerResponder())
    engine.submit(make_request("short", synthetic_chain("a", 100), hint=50), 0.0)
    now = engine.step(0.0).duration  # short: prefilled, first token out
    engine.submit(make_request("long", synthetic_chain("b", 20_000), hint=5), now)
    steps = []
    while "long" not in {e.request_id for s in steps for e in s.events}:
        steps.append(engine.step(now))
        now += steps[-1].duration
    prefill_steps = [s for s in steps if s.prefill_tokens]
    assert len(prefill_steps) == math.ceil(20_000 / (8192 - 1))  # one decode shares each step
    assert [s.decode_tokens for s in prefill_steps] == [1, 1, 1]
    assert sum(s.prefill_tokens for s in prefill_steps) == 20_000


def test_preemption_under_a_tiny_cache_still_finishes_everything():
    engine = make_engine(kv_blocks=64, responder=FillerResponder(), max_num_seqs=8)
    reqs = [(0.0, make_request(f"r{i}", synthetic_chain(f"p{i}", 150), 300, hint=250))
            for i in range(8)]
    events = drive(engine, reqs)
    done = [e for e in events if isinstance(e, RequestDone)]
    assert len(done) == 8 and all(d.output_tokens == 250 for d in done)
    preempted = [e for e in events if isinstance(e, Preempted)]
    assert preempted and sum(d.preemptions for d in done) == len(preempted)
    assert sum(d.recomputed_tokens for d in done) > 0
    for d in done:
        assert_token_identity(d)


def test_step_time_is_the_perf_models_for_the_batch():
    perf, durations = make_perf(), []
    for batch in (1, 8, 64, 256):
        prompt = min(500, 8192 // batch)  # the whole batch prefills in one step
        engine = make_engine(perf=perf, responder=FillerResponder())
        for i in range(batch):
            engine.submit(make_request(f"r{i}", synthetic_chain(f"p{i}", prompt), hint=10), 0.0)
        first = engine.step(0.0)
        chunks = [(prompt, 0)] * batch
        assert first.prefill_tokens == prompt * batch and first.decode_tokens == 0
        assert first.duration == pytest.approx(perf.step_time(chunks, []), rel=1e-9)
        decode = engine.step(first.duration)
        assert decode.decode_tokens == batch and decode.prefill_tokens == 0
        assert decode.duration == pytest.approx(perf.step_time([], [prompt + 1] * batch), rel=1e-9)
        durations.append(perf.step_time([], [500 + 1] * batch))
    assert durations == sorted(durations) and durations[-1] > 2 * durations[0]


def test_two_identical_runs_give_identical_event_streams():
    runs = []
    for _ in range(2):
        arrivals, on_done, _ = agent_workload(seed=3, sessions=15)
        runs.append(repr(drive(make_engine(kv_blocks=800), arrivals, on_done, check=False)))
    assert runs[0] == runs[1]


def test_replies_do_not_depend_on_batching_order():
    def replies(order):  # same requests, submitted in opposite orders
        engine = make_engine(kv_blocks=600, responder=FillerResponder(), seed=11)
        reqs = [(0.1 * k, make_request(f"r{i}", synthetic_chain(f"p{i}", 300)))
                for k, i in enumerate(order)]
        events = drive(engine, reqs)
        return {e.request_id: e.output_tokens for e in events if isinstance(e, RequestDone)}
    assert replies(range(12)) == replies(reversed(range(12)))


def test_scripted_tool_calls_come_back_in_request_done():
    responder = ScriptedResponder(lambda req, rng: {
        "text": "Checking.", "tool_calls": [{"name": "grep", "arguments": {"q": "bug"}}]})
    engine = make_engine(kv_blocks=100, responder=responder)
    req = make_request("r", synthetic_chain("p", 64), messages=[{"role": "user", "content": "go"}])
    (done,) = [e for e in drive(engine, [(0.0, req)]) if isinstance(e, RequestDone)]
    assert done.finish_reason == "tool_calls" and done.tool_calls[0].name == "grep"


def test_requests_that_can_never_fit_are_refused():
    engine = make_engine(kv_blocks=100)
    with pytest.raises(ValueError, match="can never fit"):
        engine.submit(make_request("big", synthetic_chain("p", 1500), max_tokens=200), 0.0)
    engine.submit(make_request("ok", synthetic_chain("p", 1400), max_tokens=200), 0.0)
    with pytest.raises(ValueError, match="already queued"):
        engine.submit(make_request("ok", synthetic_chain("p", 10)), 0.0)


def test_pins_keep_a_sessions_prefix_until_they_expire():
    engine = make_engine(kv_blocks=200, responder=FillerResponder())
    t1 = make_request("t1", synthetic_chain("mine", 1000), hint=8, session="s1")
    (d1,) = [e for e in drive(engine, [(0.0, t1)]) if isinstance(e, RequestDone)]
    mine = chain_after(t1, d1)
    assert engine.pin("s1", mine, until=50.0, now=d1.finished_at) == 62
    assert engine.stats().kv_pinned_blocks == 62
    others = [(1.0 + i, make_request(f"o{i}", synthetic_chain(f"x{i}", 2000), 16))
              for i in range(3)]
    events = drive(engine, others)
    assert engine.cached_prefix_tokens(mine) == 992  # survived 3 x 2000 tokens of traffic
    assert not [e for e in events if isinstance(e, PinExpired)]
    result = engine.step(60.0)
    assert result.events == [PinExpired("s1", "w0", 60.0)] and result.duration == 0.0
    assert engine.stats().kv_pinned_blocks == 0


def test_a_pin_gives_way_when_nothing_else_can_run():
    engine = make_engine(kv_blocks=100, responder=FillerResponder())
    t1 = make_request("t1", synthetic_chain("mine", 1000), hint=8, session="s1")
    (d1,) = [e for e in drive(engine, [(0.0, t1)]) if isinstance(e, RequestDone)]
    engine.pin("s1", chain_after(t1, d1), until=1e9, now=1.0)
    events = drive(engine, [(2.0, make_request("big", synthetic_chain("x", 1200), 16))])
    assert PinExpired("s1", "w0", 2.0) in events
    assert any(isinstance(e, RequestDone) for e in events)


def test_abort_frees_blocks_and_forgets_the_request():
    engine = make_engine()
    engine.submit(make_request("a", synthetic_chain("p", 5000)), 0.0)
    engine.submit(make_request("b", synthetic_chain("q", 100)), 0.0)
    engine.step(0.0)
    assert engine.abort("a", 0.1) and engine.abort("b", 0.1) and not engine.abort("a", 0.1)
    engine.check_integrity()
    assert engine.stats().kv_used_blocks == 0 and not engine.has_work()


def test_engine_satisfies_the_protocol_and_reports_stats():
    engine = make_engine()
    assert isinstance(engine, Engine)
    assert engine.step(0.0).duration == 0.0
    stats = engine.stats()
    assert stats.kv_capacity_blocks == make_perf().kv_capacity_tokens() // 16
    assert (stats.running, stats.waiting, stats.steps) == (0, 0, 0)


def test_a_step_with_256_decodes_is_cheap_in_python():
    engine = make_engine(responder=FillerResponder(), max_num_seqs=256)
    for i in range(256):
        engine.submit(make_request(f"r{i}", synthetic_chain(f"p{i}", 200), 2000, hint=2000), 0.0)
    while engine.step(0.0).prefill_tokens or engine.stats().waiting:
        pass  # admit and prefill everyone
    start, steps = time.perf_counter(), 400
    for k in range(steps):
        assert engine.step(1.0 + k).decode_tokens == 256
    per_step = (time.perf_counter() - start) / steps
    assert per_step < 200e-6, f"{per_step * 1e6:.0f} us per step"
