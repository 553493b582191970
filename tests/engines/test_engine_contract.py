"""The Engine contract (runtime/engines/base.py), checked on every engine: the
simulated engine (stepped, virtual clock) and the inline engine (realtime, asyncio).
Each test runs a scenario through a driver of the engine's kind, the way the worker
actor drives it."""
from __future__ import annotations

import asyncio

import pytest

from agentrt.kvcache.prefix import TokenChain
from agentrt.runtime.core.messages import LLMRequest, RequestDone
from agentrt.runtime.core.session_chain import reply_chain
from agentrt.runtime.engines.base import (
    Engine, EngineRefused, RealtimeEngine, SteppedEngine,
)
from agentrt.runtime.engines.inline import InlineEngine
from agentrt.runtime.engines.simulated.engine import SimulatedEngine
from agentrt.runtime.engines.simulated.responder import ScriptedResponder
from agentrt.runtime.engines.tokenizer import SimpleTokenizer

TIMEOUT_S = 10.0  # only reached if an engine under test is broken


def script(request: LLMRequest, rng) -> dict:
    words = request.messages[-1]["content"].split()
    if words and words[0] == "tool":
        return {"text": "", "tool_calls": [{"name": "grep", "arguments": {"q": "x"}}]}
    return {"text": "ok " * 5}


def simulated() -> SimulatedEngine:
    return SimulatedEngine.from_names("w0", responder=ScriptedResponder(script),
                                      kv_blocks=512)


def inline() -> InlineEngine:
    return InlineEngine("w0", responder=ScriptedResponder(script), kv_blocks=512,
                        max_context=8192)


ENGINES = {"simulated": simulated, "inline": inline}


class Run:
    """Drive an engine through `act(engine, now)` calls and collect its events."""

    def __init__(self, engine: Engine) -> None:
        self.engine, self.events = engine, []

    def __call__(self, *acts) -> list:
        if isinstance(self.engine, SteppedEngine):
            return self._stepped(acts)
        return asyncio.run(asyncio.wait_for(self._realtime(acts), TIMEOUT_S))

    def _stepped(self, acts) -> list:
        engine, now = self.engine, 0.0
        for act in acts:
            act(engine, now)
            while engine.has_work():
                result = engine.step(now)
                now += result.duration
                self.events += result.events
        return self.events

    async def _realtime(self, acts) -> list:
        engine = self.engine
        await engine.start(self.events.extend)
        try:
            for act in acts:
                act(engine, 0.0)
                while engine.stats().running or engine.stats().waiting:
                    await asyncio.sleep(0.001)
        finally:
            await engine.stop()
        return self.events


def call(rid: str, words: int = 40, first: str = "hi", prefix: TokenChain | None = None,
         max_tokens: int = 64, session: str = "p/s") -> LLMRequest:
    messages = [{"role": "user", "content": " ".join([first] + ["w"] * words)}]
    tokens = SimpleTokenizer().encode_prompt(messages, None)
    return LLMRequest(request_id=rid, program_id="p", session_id=session, model="m",
                      prefix=prefix or TokenChain.from_tokens(tokens, 16),
                      max_tokens=max_tokens, messages=messages)


def submit(*requests):
    return lambda engine, now: [engine.submit(r, now) for r in requests]


def dones(events) -> dict[str, RequestDone]:
    return {e.request_id: e for e in events if isinstance(e, RequestDone)}


@pytest.fixture(params=sorted(ENGINES))
def engine(request) -> Engine:
    return ENGINES[request.param]()


def test_the_engine_declares_its_kind_and_geometry(engine):
    info = engine.info
    kind = RealtimeEngine if info.capabilities.clock == "realtime" else SteppedEngine
    assert isinstance(engine, kind) and isinstance(engine, Engine)
    assert info.worker_id == engine.worker_id == "w0" and info.block_size == 16
    assert info.kv_capacity_blocks == 512 and info.kv_capacity_tokens == 512 * 16
    assert info.capabilities.kv_state == "exact"


def test_each_call_finishes_once_with_consistent_usage(engine):
    requests = [call(f"p/s{i}#0", words=30 + 10 * i, session=f"p/s{i}") for i in range(3)]
    events = Run(engine)(submit(*requests))
    finished = dones(events)
    assert sorted(finished) == sorted(r.request_id for r in requests)
    assert len([e for e in events if isinstance(e, RequestDone)]) == 3
    for r in requests:
        d = finished[r.request_id]
        assert d.prompt_tokens == r.prompt_tokens
        assert d.prompt_tokens == d.cached_tokens + d.prefilled_tokens - d.recomputed_tokens
        assert 1 <= d.output_tokens <= r.max_tokens and d.text.startswith("ok")
        assert d.finish_reason == "stop" and d.worker_id == "w0"
        assert d.finished_at >= d.first_scheduled_at >= d.dispatched_at
    engine.check_integrity()


def test_a_reply_that_calls_a_tool_carries_the_call(engine):
    [done] = dones(Run(engine)(submit(call("p/s#0", first="tool")))).values()
    assert done.finish_reason == "tool_calls"
    assert [(c.name, c.arguments) for c in done.tool_calls] == [("grep", '{"q":"x"}')]


def test_the_next_turn_finds_the_previous_one_cached(engine):
    first = call("p/s#0", words=100)
    out = {}

    def next_turn(engine, now):
        prefix = reply_chain(first.prefix, dones(run.events)["p/s#0"])
        out["second"] = call("p/s#1", prefix=prefix)
        engine.submit(out["second"], now)

    run = Run(engine)
    finished = dones(run(submit(first), next_turn))
    second = finished["p/s#1"]
    assert second.cached_tokens >= (out["second"].prompt_tokens - 16) // 16 * 16 - 16
    assert second.cached_tokens > first.prompt_tokens // 2


def test_an_aborted_call_never_finishes_and_frees_what_it_held(engine):
    def abort(engine, now):
        assert engine.abort("p/a#0", now) is True
        assert engine.abort("p/a#0", now) is False and engine.abort("nope", now) is False

    both = submit(call("p/a#0", session="p/a"), call("p/b#0", session="p/b"))
    finished = dones(Run(engine)(lambda e, now: (both(e, now), abort(e, now))))
    assert sorted(finished) == ["p/b#0"]
    stats = engine.stats()
    assert stats.running == stats.waiting == 0 and stats.kv_used_blocks == 0
    engine.check_integrity()


def test_a_call_that_can_never_fit_is_refused_naming_the_limit(engine):
    def refused(engine, now):
        with pytest.raises(EngineRefused, match="can never fit worker 'w0'") as info:
            engine.submit(call("p/big#0", max_tokens=10 ** 6), now)
        assert info.value.request_id == "p/big#0" and info.value.limit_tokens
        with pytest.raises(EngineRefused, match="max_tokens >= 1"):
            engine.submit(call("p/zero#0", max_tokens=0), now)

    assert Run(engine)(refused) == []
    stats = engine.stats()
    assert stats.running == stats.waiting == 0


def test_a_request_id_is_submitted_once(engine):
    def twice(engine, now):
        engine.submit(call("p/s#0"), now)
        with pytest.raises(ValueError, match="already queued or running"):
            engine.submit(call("p/s#0"), now)

    assert sorted(dones(Run(engine)(twice))) == ["p/s#0"]


def test_releasing_a_session_it_never_saw_changes_nothing(engine):
    Run(engine)(lambda e, now: e.release("p/unknown", now))
    assert engine.stats().kv_used_blocks == 0
    engine.check_integrity()
