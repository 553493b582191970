"""The Ray runtime's retention plumbing without Ray: a worker's `WorkerRetention`
decides with the shared policy code when its engine's call ends in a tool call, on the
engine's clock, and the scheduler's `FeedLog` hands every worker each fact once."""
from __future__ import annotations

import pytest

from agentrt.kvcache.prefix import TokenChain
from agentrt.runtime import wire
from agentrt.runtime.cluster.retention import (
    FeedLog, ProgramEnded, ToolTiming, WorkerRetention, reply_chain,
)
from agentrt.runtime.core.messages import LLMRequest, RequestDone
from agentrt.runtime.core.retention import ModelClock
from agentrt.runtime.engines.factory import EngineFactory
from agentrt.runtime.engines.simulated.responder import ScriptedResponder
from agentrt.runtime.engines.tokenizer import SimpleTokenizer

SCALE = 0.5  # wall seconds per model second
ORIGIN = 100.0


def calls_tool(request: LLMRequest, rng) -> dict:
    return {"text": "", "tool_calls": [{"name": "pytest", "arguments": {}}]}


def make_worker(ttl: str = "agentrt") -> WorkerRetention:
    engine = EngineFactory(responder=ScriptedResponder(calls_tool), ttl=ttl)("w0")
    return WorkerRetention(ttl, engine, ModelClock(ORIGIN, SCALE), min_samples=3)


def make_call(turn: int = 0, words: int = 300) -> LLMRequest:
    messages = [{"role": "user", "content": " ".join(["word"] * words)}]
    tokens = SimpleTokenizer().encode_prompt(messages, None)
    return LLMRequest(request_id=f"p/s#{turn}", program_id="p", session_id="p/s",
                      model="llama-3.1-8b", prefix=TokenChain.from_tokens(tokens, 16),
                      max_tokens=64, arrival=ORIGIN, program_arrival=ORIGIN,
                      messages=messages, tools=[{"type": "function"}])


def run_call(worker: WorkerRetention, request: LLMRequest,
             now: float) -> tuple[RequestDone, float]:
    """Submit `request`, step the engine until it is done, decide as the worker does."""
    engine = worker.engine
    engine.submit(request, now)
    worker.submitted(request)
    while True:
        result = engine.step(now)
        now += result.duration * SCALE
        worker.step_finished(result.events, now)
        done = [e for e in result.events if isinstance(e, RequestDone)]
        if done:
            return done[0], now


def timings(*samples: tuple[str, float, float | None]) -> list[bytes]:
    return [wire.encode(ToolTiming(*s)) for s in samples]


def test_timings_are_learned_on_the_model_clock_with_the_tools_prior():
    worker = make_worker()
    worker.learn(timings(("pytest", 0.5, 2.0), ("pytest", 1.0, 2.0)))
    durations = worker.durations
    assert durations.empirical("pytest").sorted_samples == [1.0, 2.0]
    assert durations.source("pytest") == "blended"
    worker.learn(timings(("pytest", 1.5, 2.0)))
    assert durations.source("pytest") == "observed"
    assert durations.quantile("pytest", 0.5) == 2.0
    worker.learn([wire.encode(ProgramEnded("p", 4))])
    with pytest.raises(ValueError, match="unexpected retention feed entry"):
        worker.learn([wire.encode(make_call())])


def test_a_call_ending_in_a_tool_call_pins_its_session_on_the_engine_clock():
    worker = make_worker()
    worker.learn(timings(("pytest", 0.5, None), ("pytest", 1.0, None), ("pytest", 1.5, None)))
    request = make_call()
    done, now = run_call(worker, request, ORIGIN + 1.0)
    note = done.kv_pin
    assert (note.action, note.tool, note.status) == ("soft", "pytest", "held")
    assert (note.duration_source, note.duration_samples) == ("observed", 3)
    assert note.predicted_s == 2.0  # model seconds: the median of 1, 2, 3
    assert note.decided_at == now
    pin = worker.engine.pins.get("p/s")
    # The policy's deadline in model seconds, on the engine's clock.
    assert pin.until == pytest.approx(now + note.ttl_s * SCALE)
    assert pin.blocks == note.blocks == reply_chain(request.prefix, done).num_tokens // 16
    assert worker.decisions == {"soft": 1}
    worker.engine.check_integrity()


def test_the_pin_ends_with_the_step_and_without_retention_nothing_is_held():
    worker = make_worker()
    run_call(worker, make_call(), ORIGIN)
    worker.engine.release("p/s", ORIGIN + 5.0)
    worker.released("p/s")
    assert worker.engine.pins.get("p/s") is None
    none = make_worker("none")
    done, _ = run_call(none, make_call(), ORIGIN)
    assert (done.kv_pin.action, done.kv_pin.ttl_s, done.kv_pin.blocks) == ("drop", 0.0, 0)
    assert none.engine.pins.get("p/s") is None


def test_the_next_turn_finds_its_context_cached():
    worker = make_worker()
    first, now = run_call(worker, make_call(0), ORIGIN)
    second = make_call(1)
    second.prefix = reply_chain(make_call(0).prefix, first)
    done, _ = run_call(worker, second, now + 0.2)
    assert done.cached_tokens >= second.prompt_tokens - 16


def test_the_feed_gives_every_worker_each_fact_once_and_forgets_what_all_have():
    feed = FeedLog()
    feed.COMPACT_AT = 2
    feed.add_worker("w0")
    feed.add_worker("w1")
    feed.append(b"a")
    feed.append(b"b")
    assert feed.take("w0") == [b"a", b"b"] and feed.take("w0") == []
    assert len(feed) == 2  # w1 has not had them
    feed.append(b"c")
    assert feed.take("w1") == [b"a", b"b", b"c"]
    assert len(feed) == 1 and feed.take("w0") == [b"c"]


def test_with_a_host_tier_a_long_tool_offloads_and_prefetches_on_the_engine_clock():
    engine = EngineFactory(responder=ScriptedResponder(calls_tool), ttl="agentrt",
                           host_fraction=0.5)("w0")
    worker = WorkerRetention("agentrt", engine, ModelClock(ORIGIN, SCALE), min_samples=3)
    worker.learn(timings(*[("pytest", 400.0 * SCALE, None)] * 3))  # 400 model seconds
    request = make_call()
    done, now = run_call(worker, request, ORIGIN + 1.0)
    assert done.kv_pin.action == "offload" and engine.kv.host is not None
    ((at, session, chain),) = worker.take_prefetches()
    reload_s = engine.perf.reload_time(chain.num_tokens)
    model_now = (now - ORIGIN) / SCALE
    assert session == "p/s" and at == pytest.approx(ORIGIN + (model_now + 400.0 - reload_s)
                                                     * SCALE)
    assert worker.take_prefetches() == []
    assert engine.cached_prefix_tokens(chain) < chain.num_tokens  # in host memory now
    assert worker.prefetch(session, chain, at) > 0
    assert engine.cached_prefix_tokens(chain) >= chain.num_tokens - 16
    assert worker.prefetched == 1
    engine.check_integrity()


def test_no_prefetch_once_the_next_call_came_or_the_step_ended():
    engine = EngineFactory(responder=ScriptedResponder(calls_tool), ttl="agentrt",
                           host_fraction=0.5)("w0")
    worker = WorkerRetention("agentrt", engine, ModelClock(ORIGIN, SCALE), min_samples=3)
    worker.learn(timings(*[("pytest", 400.0 * SCALE, None)] * 3))
    first, now = run_call(worker, make_call(0), ORIGIN)
    ((at, session, chain),) = worker.take_prefetches()
    second = make_call(1)
    second.prefix = chain
    engine.submit(second, now + 1.0)
    worker.submitted(second)
    assert worker.prefetch(session, chain, now + 2.0) == 0  # the turn reloads itself
    worker.aborted(second.request_id)
    worker.released(session)
    assert worker.prefetch(session, chain, now + 3.0) == 0
